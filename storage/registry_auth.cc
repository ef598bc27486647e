#include "storage/registry_auth.h"

#include "common/base64.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "storage/digest.h"

namespace berth::storage {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

// Short printable excerpt of an unexpected body for an error message.
std::string excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 200)) out.push_back(c >= 0x20 && c < 0x7f ? c : ' ');
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::vector<AuthChallenge> parse_www_authenticate(const std::vector<std::string>& values) {
  std::vector<AuthChallenge> out;
  for (const std::string& value : values) {
    size_t pos = 0;
    const size_t n = value.size();
    AuthChallenge* current = nullptr;
    while (pos < n) {
      while (pos < n && (is_space(value[pos]) || value[pos] == ',')) ++pos;
      if (pos >= n) break;
      size_t start = pos;
      while (pos < n && !is_space(value[pos]) && value[pos] != ',' && value[pos] != '=' && value[pos] != '"') ++pos;
      std::string token = value.substr(start, pos - start);
      if (token.empty()) {  // a stray '=' or quote: skip it
        ++pos;
        continue;
      }
      size_t after = pos;
      while (after < n && is_space(value[after])) ++after;
      if (after < n && value[after] == '=') {
        pos = after + 1;
        // token68 ("Negotiate abc==") rather than name=value: only '=' padding follows.
        if (pos >= n || value[pos] == '=' || value[pos] == ',') {
          while (pos < n && value[pos] == '=') ++pos;
          continue;
        }
        while (pos < n && is_space(value[pos])) ++pos;
        std::string param;
        if (pos < n && value[pos] == '"') {
          ++pos;
          while (pos < n && value[pos] != '"') {
            if (value[pos] == '\\' && pos + 1 < n) ++pos;
            param.push_back(value[pos++]);
          }
          if (pos < n) ++pos;  // closing quote
        } else {
          size_t vstart = pos;
          while (pos < n && value[pos] != ',' && !is_space(value[pos])) ++pos;
          param = value.substr(vstart, pos - vstart);
        }
        if (current) current->params[lower(token)] = std::move(param);
      } else {
        out.push_back(AuthChallenge{lower(token), {}});
        current = &out.back();
      }
    }
  }
  return out;
}

std::string basic_authorization(const std::string& username, const std::string& password) {
  return "Basic " + base64_encode(username + ":" + password);
}

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

std::string registry_error_message(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string msg;
  if (j.is_object()) {
    if (auto errors = j.find("errors"); errors != j.end() && errors->is_array()) {
      for (const auto& e : *errors) {
        if (!e.is_object()) continue;
        std::string part = e.value("message", std::string());
        if (part.empty()) part = lower(e.value("code", std::string()));
        if (!part.empty()) msg += (msg.empty() ? "" : "; ") + part;
      }
    }
    for (const char* field : {"details", "error_description", "error", "message"}) {
      if (!msg.empty()) break;
      if (auto f = j.find(field); f != j.end() && f->is_string()) msg = f->get<std::string>();
    }
  }
  if (msg.empty()) msg = excerpt(body);
  return excerpt(msg);
}

Result<TokenReply> parse_token_reply(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return fail(EPROTO, "token server reply is not a JSON object: " + excerpt(body));
  TokenReply reply;
  reply.token = j.value("token", std::string());
  if (reply.token.empty()) reply.token = j.value("access_token", std::string());
  if (reply.token.empty()) return fail(EPROTO, "token server reply holds no token");
  if (reply.token.find_first_of("\r\n") != std::string::npos)
    return fail(EPROTO, "token server sent a malformed token");
  if (auto e = j.find("expires_in"); e != j.end() && e->is_number()) {
    reply.expires_in = std::max(std::chrono::seconds(e->get<int64_t>()), std::chrono::seconds(60));
  }
  reply.refresh_token = j.value("refresh_token", std::string());
  return reply;
}

std::string RegistryAuthenticator::cache_key(const std::string& endpoint, const std::string& repository,
                                             const RegistryCredentials& creds) {
  // Different credentials may see different repositories: never share their tokens.
  std::string secret = creds.password + '\0' + creds.identity_token + '\0' + creds.registry_token;
  return endpoint + '\n' + repository + '\n' + creds.username + '\n' + sha256_of(secret).hex.substr(0, 16);
}

std::string RegistryAuthenticator::authorization_for(const std::string& endpoint, const std::string& repository,
                                                     const RegistryCredentials& creds) {
  if (!creds.registry_token.empty()) return "Bearer " + creds.registry_token;
  std::string key = cache_key(endpoint, repository, creds);
  std::lock_guard lock(mu_);
  if (auto it = tokens_.find(key); it != tokens_.end()) {
    if (now_() < it->second.expires) return it->second.authorization;
    tokens_.erase(it);
  }
  if (!creds.username.empty() && basic_.contains(cache_key(endpoint, "", creds))) {
    return basic_authorization(creds.username, creds.password);
  }
  return {};
}

Result<std::string> RegistryAuthenticator::answer_challenge(const std::string& endpoint, const std::string& repository,
                                                            const std::vector<std::string>& www_authenticate,
                                                            const RegistryCredentials& creds,
                                                            const AuthTransport& transport) {
  std::string key = cache_key(endpoint, repository, creds);
  {
    std::lock_guard lock(mu_);
    tokens_.erase(key);
  }
  auto challenges = parse_www_authenticate(www_authenticate);
  const AuthChallenge* bearer = nullptr;
  const AuthChallenge* basic = nullptr;
  for (const auto& c : challenges) {
    if (c.scheme == "bearer" && c.params.contains("realm") && !bearer) bearer = &c;
    if (c.scheme == "basic" && !basic) basic = &c;
  }
  if (bearer) {
    if (!creds.registry_token.empty()) return fail(EACCES, endpoint + " refused the registry token");
    std::vector<std::string> scopes{"repository:" + repository + ":pull"};
    if (auto s = bearer->params.find("scope"); s != bearer->params.end()) {
      for (const auto& scope : split(s->second, ' ')) {
        if (std::find(scopes.begin(), scopes.end(), scope) == scopes.end()) scopes.push_back(scope);
      }
    }
    TokenReply reply = BERTH_TRY(fetch_token(bearer->params, scopes, creds, transport));
    std::string authorization = "Bearer " + reply.token;
    // Renew a little early so a token does not expire between check and use.
    auto slack = std::min<std::chrono::seconds>(std::chrono::seconds(10), reply.expires_in / 10);
    std::lock_guard lock(mu_);
    tokens_[key] = CachedToken{authorization, now_() + reply.expires_in - slack};
    return authorization;
  }
  if (basic) {
    if (creds.username.empty()) {
      return fail(EACCES, endpoint + " asks for a user name and password and none were given");
    }
    std::lock_guard lock(mu_);
    basic_[cache_key(endpoint, "", creds)] = true;
    return basic_authorization(creds.username, creds.password);
  }
  if (challenges.empty()) return fail(EACCES, endpoint + " answered 401 without a WWW-Authenticate challenge");
  return fail(EACCES, endpoint + " asks for unsupported authentication '" + challenges.front().scheme + "'");
}

Result<TokenReply> RegistryAuthenticator::fetch_token(const std::map<std::string, std::string>& challenge,
                                                      const std::vector<std::string>& scopes,
                                                      const RegistryCredentials& creds,
                                                      const AuthTransport& transport) {
  const std::string& realm = challenge.at("realm");
  if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
    return fail(EPROTO, "token realm '" + excerpt(realm) + "' is not an http(s) URL");
  }
  std::string service;
  if (auto s = challenge.find("service"); s != challenge.end()) service = s->second;

  auto refused = [&](const AuthHttpReply& reply) {
    int code = reply.status == 401 || reply.status == 403 ? EACCES : EIO;
    return fail(code, "token server " + realm + " answered HTTP " + std::to_string(reply.status) + ": " +
                          registry_error_message(reply.body));
  };

  if (!creds.identity_token.empty()) {
    // OAuth2 refresh-token grant (Docker token spec, oauth.md); scopes are space-separated.
    std::string joined;
    for (const auto& s : scopes) joined += (joined.empty() ? "" : " ") + s;
    AuthHttpRequest req{"POST", realm, {"Content-Type: application/x-www-form-urlencoded"}, {}};
    req.body = "grant_type=refresh_token&client_id=berth&refresh_token=" + url_encode(creds.identity_token) +
               "&scope=" + url_encode(joined);
    if (!service.empty()) req.body += "&service=" + url_encode(service);
    AuthHttpReply reply = BERTH_TRY(transport(req));
    if (reply.status == 200) return parse_token_reply(reply.body);
    // Token servers without the OAuth2 endpoint: fall through to the plain GET.
    if (reply.status != 404 && reply.status != 405) return refused(reply);
  }

  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  bool first = true;
  auto add = [&](const std::string& name, const std::string& value) {
    url += (first ? "" : "&") + name + "=" + url_encode(value);
    first = false;
  };
  if (!service.empty()) add("service", service);
  for (const auto& s : scopes) add("scope", s);
  AuthHttpRequest req{"GET", {}, {}, {}};
  if (!creds.username.empty()) {
    add("account", creds.username);
    req.headers.push_back("Authorization: " + basic_authorization(creds.username, creds.password));
  }
  req.url = url;
  AuthHttpReply reply = BERTH_TRY(transport(req));
  if (reply.status != 200) return refused(reply);
  return parse_token_reply(reply.body);
}

}  // namespace berth::storage

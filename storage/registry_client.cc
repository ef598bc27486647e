#include "storage/registry_client.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <expected>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/file_util.h"

namespace berth::storage {

namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;  // names lower-case, in arrival order

constexpr const char* kAcceptManifests =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

constexpr size_t kMaxErrorBody = 64 << 10;
constexpr int kMaxRedirects = 10;

// A failed HTTP exchange, and whether trying the same endpoint again may help.
struct HttpError {
  Error error;
  bool retryable = false;
  bool unreachable = false;  // never connected: the next endpoint is the better bet
};
template <typename T = void>
using HttpResult = std::expected<T, HttpError>;

std::unexpected<HttpError> fatal(int code, std::string msg) {
  return std::unexpected(HttpError{Error{code, std::move(msg)}, false, false});
}
std::unexpected<HttpError> transient(int code, std::string msg) {
  return std::unexpected(HttpError{Error{code, std::move(msg)}, true, false});
}

struct HttpReply {
  long status = 0;
  Headers headers;
  std::string body;  // the body when no sink took it (2xx without sink, or any error status)
  std::string redirect_url;
  std::string url;

  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return {};
  }
  std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers)
      if (k == name) out.push_back(v);
    return out;
  }
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  size_t max_body = 4 << 20;  // for 2xx bodies kept in memory
  // Sink for 2xx bodies: begin() once with the status and headers, then chunks.
  std::function<HttpResult<>(long status, const HttpReply&)> begin;
  std::function<HttpResult<>(std::string_view)> data;
};

struct TlsSettings {
  bool skip_verify = false;
  std::vector<std::string> ca_files;
  std::vector<std::pair<std::string, std::string>> client_certs;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// "scheme://host:port" of a URL, lower-cased, to tell whether a redirect leaves the host.
std::string origin_of(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return lower(url);
  auto path = url.find_first_of("/?#", scheme_end + 3);
  return lower(url.substr(0, path));
}

std::string host_of(const std::string& url) {
  std::string origin = origin_of(url);
  auto scheme_end = origin.find("://");
  return scheme_end == std::string::npos ? origin : origin.substr(scheme_end + 3);
}

// ---- libcurl plumbing ----

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One live transfer: the callbacks' view of the request and what has arrived.
struct Transfer {
  CURL* curl = nullptr;
  const HttpRequest* req = nullptr;
  HttpReply reply;
  bool started = false;
  std::optional<HttpError> sink_error;
  std::chrono::milliseconds stall{0};
  Clock::time_point last_activity = Clock::now();
  curl_off_t last_dl = 0, last_ul = 0;
  bool stalled = false;
};

size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  t->last_activity = Clock::now();
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t->reply.headers.clear();  // a new response (after 100 Continue or a proxy's answer)
    return n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos && colon > 0) {
    t->reply.headers.emplace_back(lower(std::string(trim_ws(line.substr(0, colon)))),
                                  std::string(trim_ws(line.substr(colon + 1))));
  }
  return n;
}

size_t on_data(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  t->last_activity = Clock::now();
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  std::string_view chunk(data, n);
  if (status < 200 || status >= 300) {
    size_t room = kMaxErrorBody - std::min(kMaxErrorBody, t->reply.body.size());
    t->reply.body.append(chunk.substr(0, room));
    return n;
  }
  if (!t->req->data) {
    if (t->reply.body.size() + n > t->req->max_body) {
      t->sink_error =
          fatal(EFBIG, "response body exceeds the " + std::to_string(t->req->max_body) + "-byte limit").error();
      return 0;
    }
    t->reply.body.append(chunk);
    return n;
  }
  if (!t->started) {
    t->started = true;
    t->reply.status = status;
    if (t->req->begin) {
      if (auto r = t->req->begin(status, t->reply); !r) {
        t->sink_error = std::move(r.error());
        return 0;
      }
    }
  }
  if (auto r = t->req->data(chunk); !r) {
    t->sink_error = std::move(r.error());
    return 0;
  }
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  auto now = Clock::now();
  if (dlnow != t->last_dl || ulnow != t->last_ul) {
    t->last_dl = dlnow;
    t->last_ul = ulnow;
    t->last_activity = now;
  }
  if (t->stall.count() > 0 && now - t->last_activity > t->stall) {
    t->stalled = true;
    return 1;
  }
  return 0;
}

// Adds the endpoint's CA files to the store libcurl filled with the system CAs, so a
// private CA extends trust rather than replacing it (as containerd does).
CURLcode on_ssl_ctx(CURL*, void* ssl_ctx, void* user) {
  const auto* tls = static_cast<const TlsSettings*>(user);
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  for (const auto& file : tls->ca_files) {
    if (SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != 1) return CURLE_SSL_CACERT_BADFILE;
  }
  return CURLE_OK;
}

struct CurlShare {
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  CurlShare() {
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &CurlShare::lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &CurlShare::unlock);
    curl_share_setopt(share, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  }
  ~CurlShare() { curl_share_cleanup(share); }
  CurlShare(const CurlShare&) = delete;
  CurlShare& operator=(const CurlShare&) = delete;

  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<CurlShare*>(user)->locks[static_cast<size_t>(data)].lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<CurlShare*>(user)->locks[static_cast<size_t>(data)].unlock();
  }
};

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct HeaderList {
  curl_slist* head = nullptr;
  HeaderList() = default;
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList() { curl_slist_free_all(head); }
  bool add(const std::string& line) {
    curl_slist* next = curl_slist_append(head, line.c_str());
    if (!next) return false;
    head = next;
    return true;
  }
};

std::unexpected<HttpError> curl_failure(CURLcode code, const Transfer& t, const char* errbuf, const HttpRequest& req) {
  std::string what = req.method + " " + req.url + ": ";
  std::string detail = curl_easy_strerror(code);
  if (errbuf[0]) detail += " (" + std::string(errbuf) + ")";
  if (t.sink_error) return std::unexpected(*t.sink_error);
  if (t.stalled) {
    return transient(ETIMEDOUT, what + "no data received for " + std::to_string(t.stall.count()) + " ms");
  }
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return transient(ETIMEDOUT, what + detail);
    case CURLE_COULDNT_CONNECT:
      return std::unexpected(HttpError{Error{ECONNREFUSED, what + detail}, true, true});
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return std::unexpected(HttpError{Error{EHOSTUNREACH, what + detail}, true, true});
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
      return transient(ECONNRESET, what + detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_ENGINE_INITFAILED:
      return std::unexpected(HttpError{Error{EPROTO, what + "TLS: " + detail}, false, true});
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return fatal(EINVAL, what + detail);
    default:
      return transient(EIO, what + detail);
  }
}

// Upper-case HTTP_PROXY for http URLs: libcurl reads only the lower-case name there.
std::optional<std::string> upper_case_http_proxy(const std::string& url) {
  if (!url.starts_with("http://")) return std::nullopt;
  if (std::getenv("http_proxy") || std::getenv("REQUEST_METHOD")) return std::nullopt;
  const char* proxy = std::getenv("HTTP_PROXY");
  if (!proxy || !*proxy) return std::nullopt;
  return std::string(proxy);
}

}  // namespace

// ---- request validation ----

Result<> validate_repository(const std::string& repository) {
  if (repository.empty() || repository.size() > 255)
    return invalid("repository name '" + repository + "' is not valid");
  for (const auto& part : split(repository, '/', false)) {
    bool ok = !part.empty() && std::isalnum(static_cast<unsigned char>(part.front())) &&
              std::isalnum(static_cast<unsigned char>(part.back()));
    for (char c : part) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
    }
    if (!ok) return invalid("repository name '" + repository + "' is not valid (lower-case a-z, 0-9, . _ - and /)");
  }
  return {};
}

Result<> validate_reference(const std::string& reference) {
  if (reference.find(':') != std::string::npos) {
    BERTH_TRY_VOID(Digest::parse(reference));
    return {};
  }
  bool ok = !reference.empty() && reference.size() <= 128 && reference.front() != '.' && reference.front() != '-';
  for (char c : reference) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  if (!ok) return invalid("tag '" + reference + "' is not valid");
  return {};
}

// ---- the client ----

struct RegistryClient::Impl {
  RegistryHosts hosts;
  RegistryClientOptions options;
  RegistryAuthenticator auth;
  // Connections and TLS sessions are shared only between transfers with the same TLS
  // settings: libcurl cannot tell CA sets added through the SSL_CTX callback apart, and
  // a resumed session or reused connection must not skip a stricter verification.
  std::mutex shares_mu;
  std::map<std::string, std::unique_ptr<CurlShare>> shares;

  Impl(RegistryHosts h, RegistryClientOptions o) : hosts(std::move(h)), options(std::move(o)) {}

  static TlsSettings tls_of(const RegistryEndpoint& ep) { return {ep.skip_verify, ep.ca_files, ep.client_certs}; }

  CURLSH* share_for(const TlsSettings& tls) {
    std::string key = tls.skip_verify ? "skip\n" : "verify\n";
    for (const auto& f : tls.ca_files) key += "ca " + f + "\n";
    for (const auto& [cert, k] : tls.client_certs) key += "client " + cert + " " + k + "\n";
    std::lock_guard lock(shares_mu);
    auto& share = shares[key];
    if (!share) share = std::make_unique<CurlShare>();
    return share->share;
  }

  // One HTTP exchange, no auth or redirect handling.
  HttpResult<HttpReply> perform(const TlsSettings& tls, const HttpRequest& req) {
    std::unique_ptr<CURL, EasyDeleter> curl(curl_easy_init());
    if (!curl) return fatal(ENOMEM, "curl_easy_init failed");
    CURL* c = curl.get();
    Transfer t;
    t.curl = c;
    t.req = &req;
    t.stall = options.stall_timeout;
    t.reply.url = req.url;
    char errbuf[CURL_ERROR_SIZE] = {};

    HeaderList headers;
    for (const auto& h : req.headers) {
      if (!headers.add(h)) return fatal(ENOMEM, "curl_slist_append failed");
    }
    // libcurl adds "Expect: 100-continue" to POSTs; token servers need no such round trip.
    if (req.method == "POST" && !headers.add("Expect:")) return fatal(ENOMEM, "curl_slist_append failed");

    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_SHARE, share_for(tls));
    curl_easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.head);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    // Backstop for the progress check, in whole seconds.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count() / 1000 + 2));
    if (req.method == "POST") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.c_str());
    } else if (req.method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    // CURLOPT_PROXY stays unset so libcurl applies the proxy environment variables.
    std::optional<std::string> proxy = upper_case_http_proxy(req.url);
    if (proxy) curl_easy_setopt(c, CURLOPT_PROXY, proxy->c_str());

    if (tls.skip_verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!tls.ca_files.empty()) {
      for (const auto& f : tls.ca_files) {
        if (::access(f.c_str(), R_OK) != 0) {
          int err = errno;
          return fatal(err, req.method + " " + req.url + ": CA file " + f + ": " + std::strerror(err));
        }
      }
      curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, &on_ssl_ctx);
      curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, &tls);
      // The cached CA store is shared between transfers; ours is amended per endpoint.
      curl_easy_setopt(c, CURLOPT_CA_CACHE_TIMEOUT, 0L);
    }
    if (!tls.client_certs.empty()) {
      // libcurl presents one certificate: the first pair configured.
      const auto& [cert, key] = tls.client_certs.front();
      curl_easy_setopt(c, CURLOPT_SSLCERT, cert.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY, key.empty() ? cert.c_str() : key.c_str());
    }

    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.reply.status);
    if (rc != CURLE_OK) return curl_failure(rc, t, errbuf, req);
    if (t.reply.status >= 300 && t.reply.status < 400) {
      char* location = nullptr;
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
      if (location) t.reply.redirect_url = location;
    }
    // An empty 2xx body never reached on_data: the sink still hears the answer.
    if (t.reply.status >= 200 && t.reply.status < 300 && req.data && !t.started && req.begin) {
      if (auto r = req.begin(t.reply.status, t.reply); !r) return std::unexpected(std::move(r.error()));
    }
    return std::move(t.reply);
  }

  AuthTransport auth_transport(const RegistryEndpoint& ep) {
    return [this, tls = tls_of(ep)](const AuthHttpRequest& ar) -> Result<AuthHttpReply> {
      HttpRequest req;
      req.method = ar.method;
      req.url = ar.url;
      req.headers = ar.headers;
      req.body = ar.body;
      req.max_body = 1 << 20;
      auto reply = perform(tls, req);
      if (!reply) return std::unexpected(reply.error().error);
      return AuthHttpReply{reply->status, std::move(reply->body)};
    };
  }

  // A request to an endpoint with auth (one challenge answered per request) and
  // redirects followed by hand.
  HttpResult<HttpReply> request(const RegistryEndpoint& ep, const std::string& repository, HttpRequest req,
                                const RegistryCredentials& creds) {
    const TlsSettings tls = tls_of(ep);
    const std::string ep_origin = origin_of(ep.url);
    const std::vector<std::string> base_headers = req.headers;
    std::string authorization = auth.authorization_for(ep.url, repository, creds);
    bool answered = false;
    for (int redirects = 0;;) {
      bool same_host = origin_of(req.url) == ep_origin;
      req.headers = base_headers;
      for (const auto& [name, value] : ep.headers) {
        if (!authorization.empty() && lower(name) == "authorization") continue;
        req.headers.push_back(name + ": " + value);
      }
      if (same_host && !authorization.empty()) req.headers.push_back("Authorization: " + authorization);
      auto reply = perform(tls, req);
      if (!reply) return reply;
      if (reply->status == 401 && same_host && !answered) {
        answered = true;
        auto answer =
            auth.answer_challenge(ep.url, repository, reply->all("www-authenticate"), creds, auth_transport(ep));
        if (!answer) {
          Error e = answer.error();
          bool final = e.code == EACCES || e.code == EPROTO || e.code == EINVAL;
          std::string said = reply->body.empty() ? std::string() : registry_error_message(reply->body);
          e.message = (said.empty() ? "" : said + ": ") + e.message + " (" + req.method + " " + req.url + ": HTTP 401)";
          return std::unexpected(HttpError{std::move(e), !final, false});
        }
        authorization = std::move(*answer);
        continue;
      }
      if (reply->status == 301 || reply->status == 302 || reply->status == 303 || reply->status == 307 ||
          reply->status == 308) {
        if (reply->redirect_url.empty())
          return fatal(EPROTO, req.method + " " + req.url + ": redirect without Location");
        if (++redirects > kMaxRedirects) return fatal(EPROTO, req.method + " " + req.url + ": too many redirects");
        req.url = reply->redirect_url;
        if (reply->status == 303) req.method = "GET";
        continue;
      }
      return reply;
    }
  }

  std::chrono::milliseconds backoff(int attempt, const HttpReply* reply) const {
    auto delay = options.backoff_base * (1LL << std::min(attempt - 1, 20));
    if (reply) {
      // Retry-After in seconds (the HTTP-date form is rare from registries).
      std::string after = reply->header("retry-after");
      if (!after.empty() && std::all_of(after.begin(), after.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
          after.size() < 7) {
        delay = std::max<std::chrono::milliseconds>(delay, std::chrono::seconds(std::stoll(after)));
      }
    }
    return std::min<std::chrono::milliseconds>(delay, options.backoff_cap);
  }

  // The query that tells a mirror which registry a request is meant for.
  static std::string ns_query(const RegistryEndpoint& ep, const std::string& registry) {
    std::string host = host_of(ep.url);
    if (host == lower(registry)) return {};
    if (registry == "docker.io" && host == "registry-1.docker.io") return {};
    return "?ns=" + url_encode(registry);
  }

  static Error status_error(const std::string& what, const std::string& unknown, const HttpReply& reply,
                            const std::string& method) {
    std::string where = " (" + method + " " + reply.url + ": HTTP " + std::to_string(reply.status) + ")";
    std::string msg = reply.body.empty() ? std::string() : registry_error_message(reply.body);
    auto with = [&](const std::string& kind) { return kind + (msg.empty() ? "" : ": " + msg) + where; };
    if (reply.status == 401 || reply.status == 403) return Error{EACCES, what + ": " + with("unauthorized")};
    if (reply.status == 404) return Error{ENOENT, what + ": " + with(unknown)};
    if (reply.status == 429) return Error{EAGAIN, what + ": " + with("too many requests")};
    if (reply.status >= 500) return Error{EIO, what + ": " + with("server error")};
    return Error{EPROTO, what + ": " + with("unexpected answer")};
  }

  static bool retryable_status(long status) { return status == 429 || status >= 500; }

  // Runs `attempt_fn` against each endpoint in turn with retries; returns the first
  // success or the last error. attempt_fn returns the reply of a finished exchange
  // (any status) or an HttpError; `accept` turns a 2xx reply into the result.
  template <typename T>
  Result<T> across_endpoints(const std::vector<RegistryEndpoint>& endpoints, const std::string& what,
                             const std::string& unknown, const std::string& method,
                             const std::function<HttpResult<HttpReply>(const RegistryEndpoint&)>& attempt_fn,
                             const std::function<HttpResult<T>(const RegistryEndpoint&, HttpReply&)>& accept) {
    Error last{EIO, what + ": no endpoint to try"};
    for (size_t i = 0; i < endpoints.size(); ++i) {
      const auto& ep = endpoints[i];
      bool last_endpoint = i + 1 == endpoints.size();
      for (int attempt = 1;; ++attempt) {
        bool can_retry = attempt < std::max(1, options.max_attempts);
        auto reply = attempt_fn(ep);
        if (!reply) {
          HttpError& e = reply.error();
          last =
              e.error.code == EACCES ? Error{EACCES, what + ": unauthorized: " + e.error.message} : e.error.wrap(what);
          if (!e.retryable || !can_retry || (e.unreachable && !last_endpoint)) break;
          std::this_thread::sleep_for(backoff(attempt, nullptr));
          continue;
        }
        if (reply->status >= 200 && reply->status < 300) {
          auto result = accept(ep, *reply);
          if (result) return std::move(*result);
          last = result.error().error.wrap(what);
          if (!result.error().retryable || !can_retry) break;
          std::this_thread::sleep_for(backoff(attempt, nullptr));
          continue;
        }
        last = status_error(what, unknown, *reply, method);
        if (!retryable_status(reply->status) || !can_retry) {
          if (retryable_status(reply->status) && attempt > 1) {
            last.message += " after " + std::to_string(attempt) + " attempts";
          }
          break;
        }
        std::this_thread::sleep_for(backoff(attempt, &*reply));
      }
    }
    return std::unexpected(last);
  }
};

RegistryClient::RegistryClient(RegistryHosts hosts, RegistryClientOptions options) {
  global_init();
  impl_ = std::make_unique<Impl>(std::move(hosts), std::move(options));
}
RegistryClient::~RegistryClient() = default;
RegistryClient::RegistryClient(RegistryClient&&) noexcept = default;
RegistryClient& RegistryClient::operator=(RegistryClient&&) noexcept = default;

namespace {

bool is_manifest_type(std::string_view t) {
  return t == "application/vnd.oci.image.manifest.v1+json" || t == "application/vnd.oci.image.index.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.v2+json" ||
         t == "application/vnd.docker.distribution.manifest.list.v2+json" ||
         t == "application/vnd.docker.distribution.manifest.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

std::string media_type_of(const std::string& content_type, const std::string& body) {
  std::string type = lower(std::string(trim_ws(std::string_view(content_type).substr(0, content_type.find(';')))));
  if (is_manifest_type(type)) return type;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto m = j.find("mediaType"); m != j.end() && m->is_string() && !m->get<std::string>().empty()) {
      return m->get<std::string>();
    }
    // OCI allows mediaType to be absent: tell index from manifest by shape.
    if (j.contains("manifests")) return "application/vnd.oci.image.index.v1+json";
    if (j.contains("config") && j.contains("layers")) return "application/vnd.oci.image.manifest.v1+json";
  }
  return type;
}

}  // namespace

Result<ManifestResponse> RegistryClient::fetch_manifest(const std::string& registry, const std::string& repository,
                                                        const std::string& reference,
                                                        const RegistryCredentials& creds) {
  bool by_digest = reference.find(':') != std::string::npos;
  std::string what = "pull " + registry + "/" + repository + (by_digest ? "@" : ":") + reference;
  if (auto r = validate_repository(repository); !r) return std::unexpected(r.error().wrap(what));
  if (auto r = validate_reference(reference); !r) return std::unexpected(r.error().wrap(what));
  std::optional<Digest> expected;
  if (by_digest) expected = *Digest::parse(reference);
  auto all = impl_->hosts.endpoints_for(registry);
  if (!all) return std::unexpected(all.error().wrap(what));
  std::vector<RegistryEndpoint> endpoints;
  for (auto& ep : *all) {
    if (by_digest ? ep.can_pull : ep.can_resolve) endpoints.push_back(std::move(ep));
  }
  if (endpoints.empty()) {
    return fail(ENOENT,
                what + ": no endpoint configured for " + registry + " may " + (by_digest ? "pull" : "resolve tags"));
  }
  const int64_t limit = impl_->options.max_manifest_size;
  auto attempt = [&](const RegistryEndpoint& ep) {
    HttpRequest req;
    req.url = ep.url + ep.path_prefix + "/" + repository + "/manifests/" + reference + Impl::ns_query(ep, registry);
    req.headers = {kAcceptManifests};
    req.max_body = static_cast<size_t>(limit);
    return impl_->request(ep, repository, std::move(req), creds);
  };
  auto accept = [&](const RegistryEndpoint&, HttpReply& reply) -> HttpResult<ManifestResponse> {
    ManifestResponse m;
    m.digest = sha256_of(reply.body);
    if (expected && m.digest != *expected) {
      return transient(EIO, "GET " + reply.url + ": manifest digest mismatch: got " + m.digest.str());
    }
    m.media_type = media_type_of(reply.header("content-type"), reply.body);
    m.body = std::move(reply.body);
    return m;
  };
  return impl_->across_endpoints<ManifestResponse>(endpoints, what, "manifest unknown", "GET", attempt, accept);
}

Result<> RegistryClient::fetch_blob(const std::string& registry, const std::string& repository, const Digest& digest,
                                    int64_t size, BlobWriter& writer, const RegistryCredentials& creds,
                                    const BlobProgressFn& progress) {
  std::string what = "pull " + registry + "/" + repository + "@" + digest.str();
  if (auto r = validate_repository(repository); !r) return std::unexpected(r.error().wrap(what));
  if (digest.algorithm != "sha256" || digest.hex.size() != 64) return invalid(what + ": not a sha256 digest");
  auto all = impl_->hosts.endpoints_for(registry);
  if (!all) return std::unexpected(all.error().wrap(what));
  std::vector<RegistryEndpoint> endpoints;
  for (auto& ep : *all) {
    if (ep.can_pull) endpoints.push_back(std::move(ep));
  }
  if (endpoints.empty()) return fail(ENOENT, what + ": no endpoint configured for " + registry + " may pull");

  constexpr int64_t kProgressStep = 1 << 20;
  int64_t reported = -1;
  // Reports at the start of each response, every MiB, and at the end; never the same
  // count twice in a row.
  auto report = [&](bool force) {
    if (!progress) return;
    int64_t done = writer.written();
    if (done == reported) return;
    if (!force && reported >= 0 && done - reported < kProgressStep && done != size) return;
    reported = done;
    progress(BlobProgress{digest, done, size});
  };

  auto attempt = [&](const RegistryEndpoint& ep) -> HttpResult<HttpReply> {
    HttpRequest req;
    req.url = ep.url + ep.path_prefix + "/" + repository + "/blobs/" + digest.str() + Impl::ns_query(ep, registry);
    const int64_t offset = writer.written();
    if (size >= 0 && offset == size && offset > 0) {
      // Everything arrived before the connection failed: nothing left to ask for.
      HttpReply done;
      done.status = 200;
      done.url = req.url;
      return done;
    }
    if (offset > 0) req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
    req.begin = [&, offset](long status, const HttpReply& reply) -> HttpResult<> {
      std::string where = "GET " + reply.url + ": ";
      if (status == 206) {
        // Content-Range: bytes <first>-<last>/<total>
        std::string range = reply.header("content-range");
        long long first = -1, last = -1, total = -1;
        if (std::sscanf(range.c_str(), "bytes %lld-%lld/%lld", &first, &last, &total) < 2) {
          return fatal(EPROTO, where + "malformed Content-Range '" + range + "'");
        }
        if (total >= 0 && size >= 0 && total != size) {
          return fatal(EIO, where + "blob is " + std::to_string(total) + " bytes, expected " + std::to_string(size));
        }
        if (first != offset) {
          if (auto r = writer.reset(); !r) return fatal(r.error().code, r.error().message);
          return transient(
              EPROTO, where + "range starts at " + std::to_string(first) + ", asked for " + std::to_string(offset));
        }
      } else {
        if (writer.written() > 0) {  // the server ignored Range: start over
          if (auto r = writer.reset(); !r) return fatal(r.error().code, r.error().message);
        }
        std::string length = reply.header("content-length");
        if (size >= 0 && !length.empty() && length != std::to_string(size)) {
          return fatal(EIO, where + "blob is " + length + " bytes, expected " + std::to_string(size));
        }
      }
      report(true);
      return {};
    };
    req.data = [&](std::string_view chunk) -> HttpResult<> {
      if (auto r = writer.write(chunk); !r) return fatal(r.error().code, r.error().message);
      report(false);
      return {};
    };
    return impl_->request(ep, repository, std::move(req), creds);
  };
  auto accept = [&](const RegistryEndpoint&, HttpReply& reply) -> HttpResult<bool> {
    if (size >= 0 && writer.written() != size) {
      return transient(EIO, "GET " + reply.url + ": body ended after " + std::to_string(writer.written()) + " of " +
                                std::to_string(size) + " bytes");
    }
    report(true);
    return true;
  };
  auto r = impl_->across_endpoints<bool>(endpoints, what, "blob unknown", "GET", attempt, accept);
  if (!r) return std::unexpected(r.error());
  return {};
}

}  // namespace berth::storage

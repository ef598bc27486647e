// Registry authentication: WWW-Authenticate challenges, the Docker token protocol
// (GET <realm>?service=..&scope=.. with optional Basic credentials, or the OAuth2
// refresh-token POST when an identity token is given), a token cache keyed by
// endpoint, scope and credentials, and Basic auth for registries that ask for it.
// HTTP goes through a transport callback so the registry client keeps one
// connection and TLS setup for everything, and tests can stand in a fake server.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace berth::storage {

// The CRI AuthConfig fields (the caller decodes `auth`, base64 "user:pass").
struct RegistryCredentials {
  std::string username, password, identity_token, registry_token;
};

struct AuthChallenge {
  std::string scheme;                         // lower-case: "bearer", "basic", ...
  std::map<std::string, std::string> params;  // names lower-case, values unquoted
};

// Parses WWW-Authenticate values (RFC 9110 section 11.6.1): each value may hold several
// challenges; parameter values may be quoted and hold commas and backslash escapes.
// Malformed parts are skipped rather than failing the whole header.
std::vector<AuthChallenge> parse_www_authenticate(const std::vector<std::string>& values);

std::string basic_authorization(const std::string& username, const std::string& password);  // "Basic ..."
// Percent-encodes everything but RFC 3986 unreserved characters (query values, form fields).
std::string url_encode(std::string_view s);

// The message a registry or token server put in an error body: the OCI `errors[]`
// messages joined, else `details`/`error_description`, else a printable excerpt.
std::string registry_error_message(std::string_view body);

struct TokenReply {
  std::string token;
  std::chrono::seconds expires_in{60};  // the spec's default and minimum
  std::string refresh_token;
};
// Reads a token server's JSON reply: `token`, or OAuth2's `access_token`.
Result<TokenReply> parse_token_reply(std::string_view body);

struct AuthHttpRequest {
  std::string method;  // GET or POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST form body
};
struct AuthHttpReply {
  long status = 0;
  std::string body;
};
// Errors from the transport are network failures; HTTP statuses come back as replies.
using AuthTransport = std::function<Result<AuthHttpReply>(const AuthHttpRequest&)>;

// Thread-safe: one per registry client, shared by every pull.
class RegistryAuthenticator {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RegistryAuthenticator(std::function<Clock::time_point()> now = &Clock::now) : now_(std::move(now)) {}

  // The Authorization value to send up front to `endpoint` (scheme://host[:port]) for
  // pulling `repository`: the registry token, a cached unexpired token, or Basic when the
  // endpoint asked for Basic before. Empty when nothing is known yet.
  std::string authorization_for(const std::string& endpoint, const std::string& repository,
                                const RegistryCredentials& creds);

  // Answers a 401: drops what was cached for (endpoint, repository), fetches a token
  // (Bearer) or picks Basic, caches it, and returns the Authorization value to retry
  // the request with. EACCES when the credentials are missing or refused.
  Result<std::string> answer_challenge(const std::string& endpoint, const std::string& repository,
                                       const std::vector<std::string>& www_authenticate,
                                       const RegistryCredentials& creds, const AuthTransport& transport);

 private:
  struct CachedToken {
    std::string authorization;
    Clock::time_point expires;
  };
  Result<TokenReply> fetch_token(const std::map<std::string, std::string>& challenge,
                                 const std::vector<std::string>& scopes, const RegistryCredentials& creds,
                                 const AuthTransport& transport);
  static std::string cache_key(const std::string& endpoint, const std::string& repository,
                               const RegistryCredentials& creds);

  std::function<Clock::time_point()> now_;
  std::mutex mu_;
  std::map<std::string, CachedToken> tokens_;  // cache_key -> bearer token
  std::map<std::string, bool> basic_;          // endpoint + identity -> the endpoint wants Basic
};

}  // namespace berth::storage

#include "cri/service/pull_credentials.h"

#include "common/base64.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "storage/image_reference.h"

namespace berth::cri {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Docker Hub answers under several names; keyrings use all of them.
std::string canonical_registry(std::string host) {
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "registry.hub.docker.com")
    return "docker.io";
  return host;
}

// "https://host:port/path" -> "host:port".
std::string host_of(std::string_view address) {
  if (auto scheme = address.find("://"); scheme != std::string_view::npos) address.remove_prefix(scheme + 3);
  address = address.substr(0, address.find('/'));
  return lower(address);
}


}  // namespace

bool server_address_matches(std::string_view server_address, std::string_view registry) {
  std::string want = canonical_registry(host_of(server_address));
  std::string have = canonical_registry(lower(registry));
  if (want == have) return true;
  // Keyring patterns: "*.example.com" covers one more label in front.
  if (want.starts_with("*.")) {
    std::string_view suffix = std::string_view(want).substr(1);
    if (have.ends_with(suffix)) {
      std::string_view head = std::string_view(have).substr(0, have.size() - suffix.size());
      return !head.empty() && head.find('.') == std::string_view::npos;
    }
  }
  return false;
}

Result<storage::RegistryCredentials> to_registry_credentials(const v1::AuthConfig& auth,
                                                             const std::string& image_reference) {
  if (!auth.server_address().empty()) {
    auto ref = storage::ImageReference::parse(image_reference);
    if (ref && !server_address_matches(auth.server_address(), ref->registry)) return storage::RegistryCredentials{};
  }
  storage::RegistryCredentials creds{auth.username(), auth.password(), auth.identity_token(), auth.registry_token()};
  if (creds.username.empty() && !auth.auth().empty()) {
    auto decoded = base64_decode(auth.auth());
    if (!decoded) return std::unexpected(decoded.error().wrap("auth.auth"));
    auto colon = decoded->find(':');
    if (colon == std::string::npos) return invalid("auth.auth: the decoded value is not user:password");
    creds.username = decoded->substr(0, colon);
    creds.password = decoded->substr(colon + 1);
    // Some clients pad the password with NULs (containerd trims them too).
    while (!creds.password.empty() && creds.password.back() == '\0') creds.password.pop_back();
  }
  return creds;
}

}  // namespace berth::cri

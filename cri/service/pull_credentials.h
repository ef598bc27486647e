// CRI AuthConfig -> the credentials the registry client sends. kubelet hands over
// what its keyring matched for the image; like containerd, berth still withholds
// them when server_address names another registry than the image's, so a
// credential can only reach the registry it was given for.
#pragma once

#include "cri/proto/runtime_api.h"

#include <string>
#include <string_view>

#include "common/error.h"
#include "storage/registry_auth.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// `auth` (base64 "user:password") fills username and password when those are not
// given directly; identity and registry tokens pass through. EINVAL for an `auth`
// that is not base64 or holds no colon.
Result<storage::RegistryCredentials> to_registry_credentials(const v1::AuthConfig& auth,
                                                             const std::string& image_reference);

// Whether credentials for `server_address` ("https://index.docker.io/v1/",
// "registry:5000", "*.example.com") apply to images from `registry` ("docker.io").
bool server_address_matches(std::string_view server_address, std::string_view registry);

}  // namespace berth::cri

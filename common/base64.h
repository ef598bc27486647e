// Standard base64 (RFC 4648 section 4, with padding): registry Basic auth, CRI's
// `auth` field, and the Kubernetes base64 websocket channels.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace berth {

std::string base64_encode(std::string_view data);
// EINVAL for anything that is not canonical padded base64.
Result<std::string> base64_decode(std::string_view text);

}  // namespace berth

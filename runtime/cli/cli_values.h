// Parsing of the command-line values runc accepts: signal names and byte sizes.
#pragma once

#include <cstdint>
#include <string>

#include "common/error.h"

namespace berth::cli {

// "KILL", "SIGKILL", "sigkill", "9", "SIGRTMIN+3" -> the number.
Result<int> parse_signal(const std::string& text);
// "512", "512k", "64m", "1g", "1.5g", "-1" -> bytes (binary units, as docker/runc).
Result<int64_t> parse_bytes(const std::string& text);
// "uid" or "uid:gid" (numbers only: there is no passwd lookup in the container).
Result<std::pair<uint32_t, uint32_t>> parse_user(const std::string& text);

}  // namespace berth::cli

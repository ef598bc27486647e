// gRPC-over-HTTP/2 wire details that need no socket: the 5-byte message prefix,
// grpc-message percent-encoding and grpc-timeout parsing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cri/grpc/status.h"

namespace berth::grpc {

// Compressed-flag byte + 4-byte big-endian length.
inline constexpr size_t kMessagePrefixSize = 5;

// Writes the prefix of an uncompressed message of `length` bytes to out[0..5).
void write_message_prefix(char* out, uint32_t length);

// Prefix + payload, as one DATA-stream message.
std::string frame_message(std::string_view payload);

// grpc-message: bytes outside printable ASCII, and '%', become %XX.
std::string percent_encode(std::string_view message);
// The reverse; malformed %-sequences are kept as they are, as the spec asks.
std::string percent_decode(std::string_view encoded);

// grpc-timeout: 1 to 8 digits and a unit (H M S m u n). nullopt when malformed;
// values too large for nanoseconds saturate.
std::optional<std::chrono::nanoseconds> parse_timeout(std::string_view value);

// Splits a request's DATA bytes, which may arrive in any chunking, into messages.
class MessageDeframer {
 public:
  explicit MessageDeframer(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // Consumes `data`. After the first error every later call returns it again and
  // drops its input: a compressed message (we only accept identity) is INTERNAL,
  // one over the limit is RESOURCE_EXHAUSTED.
  CallStatus feed(std::string_view data);

  // Complete messages, oldest first; the caller may move them out.
  std::vector<std::string>& messages() { return messages_; }
  // True while a message has started but not all of its bytes arrived.
  bool partial() const { return header_have_ > 0 || body_need_ > 0; }

 private:
  size_t max_message_bytes_;
  char header_[kMessagePrefixSize] = {};
  size_t header_have_ = 0;
  size_t body_need_ = 0;  // bytes still missing from `body_`
  std::string body_;
  std::vector<std::string> messages_;
  CallStatus error_;
};

}  // namespace berth::grpc

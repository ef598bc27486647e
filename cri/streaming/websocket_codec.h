// WebSocket (RFC 6455) wire format without sockets: the handshake key, frames and
// message reassembly. No extensions are negotiated, so RSV bits are always errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace berth::streaming::ws {

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)); empty
// only if libcrypto fails, which the client then rejects.
std::string accept_key(std::string_view client_key);
// Whether a Sec-WebSocket-Key is base64 of exactly 16 bytes (24 characters, "==" padded).
bool valid_client_key(std::string_view key);

enum class Opcode : uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Close codes used when we fail a connection (RFC 6455 7.4.1).
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseInvalidPayload = 1007;
inline constexpr uint16_t kCloseTooBig = 1009;

struct Frame {
  bool fin = true;
  Opcode opcode = Opcode::binary;
  std::string payload;  // unmasked
};

// Frame header only (2-14 bytes), so large payloads can go out with writev. `mask`, for
// client frames only, is the masking key with its first wire byte most significant.
std::string frame_header(Opcode opcode, bool fin, uint64_t length, std::optional<uint32_t> mask = std::nullopt);
// Header and payload; the payload is masked when `mask` is given.
std::string encode_frame(Opcode opcode, std::string_view payload, bool fin = true,
                         std::optional<uint32_t> mask = std::nullopt);
// Big-endian code and reason, the reason cut (at a UTF-8 character boundary) so the
// payload fits a control frame's 125 bytes.
std::string close_payload(uint16_t code, std::string_view reason);

// A received close frame's body. code is nullopt for an empty body. Only meaningful for
// payloads MessageAssembler let through, which checked the code and the reason's UTF-8.
struct CloseBody {
  std::optional<uint16_t> code;
  std::string reason;
};
CloseBody parse_close_payload(std::string_view payload);

// Incremental frame parser. A server parses with require_masked=true (RFC 6455 5.1: client
// frames must be masked), a client with false, and then rejects masked frames.
class FrameParser {
 public:
  FrameParser(bool require_masked, uint64_t max_payload)
      : require_masked_(require_masked), max_payload_(max_payload) {}

  void feed(const char* data, size_t size);
  // The next whole frame, or nullopt until more bytes arrive. Errors are EPROTO and stick,
  // with close_code() suggesting the code to close with: 1002 for RSV bits, an unknown
  // opcode, the masking rule broken, a control frame over 125 bytes or fragmented, or a
  // 64-bit length with the top bit set; 1009 for a payload over max_payload. A header is
  // checked as soon as it is complete, so an oversized frame fails without waiting for
  // its payload.
  Result<std::optional<Frame>> next();
  uint16_t close_code() const { return close_code_; }  // 0 while there is no error

 private:
  Result<std::optional<Frame>> fail(uint16_t close_code, std::string message);

  bool require_masked_;
  uint64_t max_payload_;
  std::string buffer_;
  size_t offset_ = 0;  // start of the first unparsed frame in buffer_
  std::optional<Error> error_;
  uint16_t close_code_ = 0;
};

// Reassembles fragmented messages: feed it data frames (text/binary/continuation) and it
// yields whole messages with fin=true; control frames pass through at once (they may come
// between fragments). Errors are EPROTO and stick, with close_code(): a continuation with
// no message open, a new text/binary while one is open, a close body of 1 byte or with a
// code not allowed on the wire -> 1002; a message over max_message -> 1009; a text message
// or close reason that is not valid UTF-8 -> 1007.
class MessageAssembler {
 public:
  explicit MessageAssembler(uint64_t max_message) : max_message_(max_message) {}

  // A complete message or a control frame, or nullopt while a message is still open.
  Result<std::optional<Frame>> add(Frame frame);
  uint16_t close_code() const { return close_code_; }  // 0 while there is no error

 private:
  Result<std::optional<Frame>> fail(uint16_t close_code, std::string message);
  Result<std::optional<Frame>> finish(Frame message);

  uint64_t max_message_;
  std::optional<Frame> open_;  // the first fragment, with later ones appended
  std::optional<Error> error_;
  uint16_t close_code_ = 0;
};

// Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points past U+10FFFF.
bool valid_utf8(std::string_view text);

}  // namespace berth::streaming::ws

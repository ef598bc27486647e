#include "cri/streaming/websocket_codec.h"

#include <openssl/evp.h>

#include <algorithm>
#include <utility>

namespace berth::streaming::ws {

namespace {

// RFC 6455 1.3: the GUID every server appends to the client's key.
constexpr std::string_view kKeyGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// Above this, a frame's payload is taken over from the receive buffer instead of copied,
// so a large frame is not held twice.
constexpr size_t kTakeOverPayload = 64 * 1024;
// An emptied receive buffer larger than this is freed rather than kept for the next frame.
constexpr size_t kKeepCapacity = 1024 * 1024;

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool known_opcode(uint8_t op) { return op <= 2 || (op >= 8 && op <= 10); }

void apply_mask(char* data, size_t size, const unsigned char key[4]) {
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(data[i] ^ key[i & 3]);
}

// RFC 6455 7.4: codes a peer may put in a close frame; 1005, 1006 and 1015 are
// reserved for reporting and never sent, 1012-1014 were registered later with IANA.
bool valid_wire_close_code(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

}  // namespace

std::string accept_key(std::string_view client_key) {
  std::string input(client_key);
  input += kKeyGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr) != 1) return {};
  unsigned char encoded[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int size = EVP_EncodeBlock(encoded, digest, static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<size_t>(size));
}

bool valid_client_key(std::string_view key) {
  // 16 bytes are 22 base64 characters and "==". Like Go's decoder (and so gorilla), this
  // does not insist the unused low bits of the last character are zero.
  return key.size() == 24 && key.substr(22) == "==" &&
         std::all_of(key.begin(), key.begin() + 22, is_base64_char);
}

std::string frame_header(Opcode opcode, bool fin, uint64_t length, std::optional<uint32_t> mask) {
  std::string header;
  header.reserve(14);
  header.push_back(static_cast<char>((fin ? 0x80 : 0) | static_cast<uint8_t>(opcode)));
  uint8_t mask_bit = mask ? 0x80 : 0;
  int extended_bytes = 0;
  if (length < 126) {
    header.push_back(static_cast<char>(mask_bit | length));
  } else if (length <= 0xffff) {
    header.push_back(static_cast<char>(mask_bit | 126));
    extended_bytes = 2;
  } else {
    header.push_back(static_cast<char>(mask_bit | 127));
    extended_bytes = 8;
  }
  for (int i = extended_bytes - 1; i >= 0; --i) header.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  if (mask) {
    for (int i = 3; i >= 0; --i) header.push_back(static_cast<char>((*mask >> (8 * i)) & 0xff));
  }
  return header;
}

std::string encode_frame(Opcode opcode, std::string_view payload, bool fin, std::optional<uint32_t> mask) {
  std::string frame = frame_header(opcode, fin, payload.size(), mask);
  size_t header_size = frame.size();
  frame.append(payload);
  if (mask) {
    const unsigned char key[4] = {static_cast<unsigned char>(*mask >> 24), static_cast<unsigned char>(*mask >> 16),
                                  static_cast<unsigned char>(*mask >> 8), static_cast<unsigned char>(*mask)};
    apply_mask(frame.data() + header_size, payload.size(), key);
  }
  return frame;
}

std::string close_payload(uint16_t code, std::string_view reason) {
  size_t keep = std::min<size_t>(reason.size(), 125 - 2);
  // Back off to a character boundary: a close reason must be valid UTF-8.
  if (keep < reason.size()) {
    while (keep > 0 && (static_cast<unsigned char>(reason[keep]) & 0xc0) == 0x80) --keep;
  }
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xff));
  payload.append(reason.substr(0, keep));
  return payload;
}

CloseBody parse_close_payload(std::string_view payload) {
  if (payload.size() < 2) return {};
  auto code = static_cast<uint16_t>((static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]));
  return {code, std::string(payload.substr(2))};
}

bool valid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    unsigned char lead = s[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // The second byte's range excludes overlong forms (E0, F0), surrogates (ED) and
    // code points past U+10FFFF (F4); C0, C1 and F5-FF never start a character.
    size_t length;
    unsigned char low = 0x80, high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return false;
    }
    if (size - i < length || s[i + 1] < low || s[i + 1] > high) return false;
    for (size_t k = 2; k < length; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

Result<std::optional<Frame>> FrameParser::fail(uint16_t close_code, std::string message) {
  close_code_ = close_code;
  error_ = Error{EPROTO, std::move(message)};
  buffer_ = std::string();
  offset_ = 0;
  return std::unexpected(*error_);
}

void FrameParser::feed(const char* data, size_t size) {
  if (error_) return;
  if (offset_ == buffer_.size()) {
    if (buffer_.capacity() > kKeepCapacity) {
      buffer_ = std::string();
    } else {
      buffer_.clear();
    }
    offset_ = 0;
  } else if (offset_ > buffer_.size() / 2) {
    // Moves fewer bytes than were consumed since the last compaction: linear overall.
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(data, size);
}

Result<std::optional<Frame>> FrameParser::next() {
  if (error_) return std::unexpected(*error_);
  size_t available = buffer_.size() - offset_;
  if (available < 2) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);

  bool fin = p[0] & 0x80;
  uint8_t op = p[0] & 0x0f;
  if (p[0] & 0x70) return fail(kCloseProtocolError, "websocket frame has RSV bits set, but no extension was negotiated");
  if (!known_opcode(op)) return fail(kCloseProtocolError, "websocket frame has unknown opcode " + std::to_string(op));
  bool control = op & 0x8;
  if (control && !fin) return fail(kCloseProtocolError, "websocket control frame is fragmented");
  bool masked = p[1] & 0x80;
  if (masked != require_masked_) {
    return fail(kCloseProtocolError,
                require_masked_ ? "websocket client frame is not masked" : "websocket server frame is masked");
  }
  uint64_t length = p[1] & 0x7f;
  if (control && length > 125) return fail(kCloseProtocolError, "websocket control frame payload exceeds 125 bytes");

  size_t header_size = 2 + (length == 126 ? 2 : length == 127 ? 8 : 0) + (masked ? 4 : 0);
  if (available < header_size) return std::nullopt;
  if (length >= 126) {
    int extended_bytes = length == 126 ? 2 : 8;
    length = 0;
    for (int i = 0; i < extended_bytes; ++i) length = (length << 8) | p[2 + i];
    if (length >> 63) return fail(kCloseProtocolError, "websocket frame length has the most significant bit set");
  }
  if (length > max_payload_) {
    return fail(kCloseTooBig, "websocket frame payload of " + std::to_string(length) +
                                  " bytes exceeds the limit of " + std::to_string(max_payload_));
  }
  if (available - header_size < length) return std::nullopt;

  auto size = static_cast<size_t>(length);
  size_t payload_start = offset_ + header_size;
  if (masked) apply_mask(buffer_.data() + payload_start, size, p + header_size - 4);

  Frame frame{fin, static_cast<Opcode>(op), {}};
  if (size >= kTakeOverPayload && payload_start + size == buffer_.size()) {
    buffer_.erase(0, payload_start);
    frame.payload = std::exchange(buffer_, std::string());
    offset_ = 0;
  } else {
    frame.payload.assign(buffer_, payload_start, size);
    offset_ = payload_start + size;
  }
  return frame;
}

Result<std::optional<Frame>> MessageAssembler::fail(uint16_t close_code, std::string message) {
  close_code_ = close_code;
  error_ = Error{EPROTO, std::move(message)};
  open_.reset();
  return std::unexpected(*error_);
}

Result<std::optional<Frame>> MessageAssembler::finish(Frame message) {
  if (message.opcode == Opcode::text && !valid_utf8(message.payload)) {
    return fail(kCloseInvalidPayload, "websocket text message is not valid UTF-8");
  }
  return message;
}

Result<std::optional<Frame>> MessageAssembler::add(Frame frame) {
  if (error_) return std::unexpected(*error_);
  auto too_big = [this] {
    return fail(kCloseTooBig, "websocket message exceeds the limit of " + std::to_string(max_message_) + " bytes");
  };
  switch (frame.opcode) {
    case Opcode::close: {
      if (frame.payload.size() == 1) return fail(kCloseProtocolError, "websocket close frame body of 1 byte");
      CloseBody body = parse_close_payload(frame.payload);
      if (body.code && !valid_wire_close_code(*body.code)) {
        return fail(kCloseProtocolError, "websocket close frame has invalid code " + std::to_string(*body.code));
      }
      if (!valid_utf8(body.reason)) return fail(kCloseInvalidPayload, "websocket close reason is not valid UTF-8");
      return frame;
    }
    case Opcode::ping:
    case Opcode::pong:
      return frame;
    case Opcode::text:
    case Opcode::binary:
      if (open_) return fail(kCloseProtocolError, "websocket message started before the previous one finished");
      if (frame.payload.size() > max_message_) return too_big();
      if (!frame.fin) {
        open_ = std::move(frame);
        return std::nullopt;
      }
      return finish(std::move(frame));
    case Opcode::continuation: {
      if (!open_) return fail(kCloseProtocolError, "websocket continuation frame without a message to continue");
      if (open_->payload.size() + frame.payload.size() > max_message_) return too_big();
      open_->payload += frame.payload;
      if (!frame.fin) return std::nullopt;
      Frame message = std::move(*open_);
      open_.reset();
      message.fin = true;
      return finish(std::move(message));
    }
    default:
      return fail(kCloseProtocolError,
                  "websocket frame has unknown opcode " + std::to_string(static_cast<unsigned>(frame.opcode)));
  }
}

}  // namespace berth::streaming::ws

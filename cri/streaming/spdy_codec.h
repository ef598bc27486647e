// SPDY/3 framing (draft-mbelshe-httpbis-spdy-00), the wire format Kubernetes
// clients use for exec/attach/port-forward after `Upgrade: SPDY/3.1`. Only
// bytes in and bytes out: no sockets, no stream state, no flow control.
// Written against what github.com/moby/spdystream's Go framer sends and accepts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/error.h"

struct z_stream_s;

namespace berth::streaming::spdy {

inline constexpr uint16_t kVersion = 3;
inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUnidirectional = 0x02;
inline constexpr size_t kMaxDataLength = (1u << 24) - 1;  // 24-bit length field
// Both directions refuse a header block that inflates to more than this, so a
// small compressed block cannot make us allocate without bound. Real blocks
// from Kubernetes clients are well under 1 KiB.
inline constexpr size_t kMaxHeaderBlockLength = 1u << 20;

enum class FrameType : uint16_t {
  syn_stream = 1,
  syn_reply = 2,
  rst_stream = 3,
  settings = 4,
  ping = 6,
  goaway = 7,
  headers = 8,
  window_update = 9,
};

enum RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

enum GoAwayStatus : uint32_t { kGoAwayOk = 0, kGoAwayProtocolError = 1, kGoAwayInternalError = 2 };

// Header names are lower-case on the wire and appear at most once per block;
// several values for one name travel as one value joined by '\0'.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The first value of the entry named `lower_name`: its value up to the first
// '\0' (what Go's http.Header.Get returns). nullopt when there is no such entry.
std::optional<std::string_view> find_header(const HeaderList& headers, std::string_view lower_name);

struct DataFrame {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  std::string data;
};
struct SynStream {
  uint32_t stream_id = 0, associated_id = 0;
  uint8_t priority = 0, flags = 0;  // priority: 0 (highest) to 7
  HeaderList headers;
};
struct SynReply {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  HeaderList headers;
};
struct RstStream {
  uint32_t stream_id = 0;
  uint32_t status = 0;
};
struct SettingsEntry {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits on the wire
  uint32_t value = 0;
};
struct Settings {
  uint8_t flags = 0;
  std::vector<SettingsEntry> entries;
};
struct Ping {
  uint32_t id = 0;
};
struct GoAway {
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;
};
struct Headers {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  HeaderList headers;
};
struct WindowUpdate {
  uint32_t stream_id = 0;
  uint32_t delta = 0;
};
// The spec says to ignore control frames of unknown type (e.g. CREDENTIAL);
// the parser reports them so the caller can log, then skips their payload.
struct UnknownControl {
  uint16_t type = 0;
};

using Frame = std::variant<DataFrame, SynStream, SynReply, RstStream, Settings, Ping, GoAway, Headers,
                           WindowUpdate, UnknownControl>;

// One direction of a connection's header compression: zlib with the SPDY/3
// dictionary, one context for the whole connection, each block ended with
// Z_SYNC_FLUSH (what spdystream's Go framer produces and expects). Because the
// context spans blocks, blocks must reach the peer in the order compressed.
class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(HeaderCompressor&&) noexcept;
  HeaderCompressor& operator=(HeaderCompressor&&) noexcept;

  // EINVAL, leaving the context untouched, for an empty, upper-case or repeated
  // name or a block over kMaxHeaderBlockLength. A zlib failure breaks the
  // context for good: every later call fails too.
  Result<std::string> compress(const HeaderList& headers);

 private:
  struct Deleter {
    void operator()(z_stream_s* z) const;
  };
  std::unique_ptr<z_stream_s, Deleter> z_;  // created on first use
  bool broken_ = false;
};

class HeaderDecompressor {
 public:
  explicit HeaderDecompressor(size_t max_block_length = kMaxHeaderBlockLength);
  ~HeaderDecompressor();
  HeaderDecompressor(HeaderDecompressor&&) noexcept;
  HeaderDecompressor& operator=(HeaderDecompressor&&) noexcept;

  // EPROTO when the block does not inflate, inflates past the limit, or its
  // counts and lengths do not match its bytes exactly; when a name is empty,
  // has upper case or repeats. Failing to inflate breaks the context for good.
  Result<HeaderList> decompress(std::string_view block);

 private:
  struct Deleter {
    void operator()(z_stream_s* z) const;
  };
  std::unique_ptr<z_stream_s, Deleter> z_;  // created on first use
  size_t max_block_length_;
  bool broken_ = false;
  std::string inflated_;  // reused between blocks
};

// Builds frames. Owns the connection's outgoing HeaderCompressor, so one
// FrameWriter per connection direction, and header-carrying frames must be
// written in the order built. Stream ids lose their reserved top bit.
class FrameWriter {
 public:
  // EINVAL for stream id 0; otherwise the errors of HeaderCompressor::compress.
  Result<std::string> syn_stream(const SynStream& frame);
  Result<std::string> syn_reply(const SynReply& frame);
  Result<std::string> headers(const Headers& frame);

  static std::string rst_stream(uint32_t stream_id, uint32_t status);
  static std::string settings(const Settings& frame);
  static std::string ping(uint32_t id);
  static std::string goaway(uint32_t last_good_stream_id, uint32_t status);
  static std::string window_update(uint32_t stream_id, uint32_t delta);
  // Only the 8-byte header of a data frame, so large payloads can go out with
  // writev without a copy. length must be <= kMaxDataLength: a longer one would
  // corrupt the connection, so the process aborts instead.
  static std::array<char, 8> data_header(uint32_t stream_id, uint8_t flags, size_t length);
  // Header + payload. A payload over kMaxDataLength becomes several frames,
  // with kFlagFin (if given) only on the last.
  static std::string data(uint32_t stream_id, uint8_t flags, std::string_view payload);

 private:
  Result<std::string> header_frame(FrameType type, uint8_t flags, std::string_view prefix,
                                   const HeaderList& headers);

  HeaderCompressor compressor_;
};

// Incremental parser for one connection direction (owns the HeaderDecompressor).
class FrameParser {
 public:
  explicit FrameParser(size_t max_frame_length = 16u << 20);

  // Buffers the bytes; dropped once the parser has failed.
  void feed(const char* data, size_t size);

  // The next complete frame; nullopt when more bytes are needed. EPROTO for a
  // control frame whose version is not 3, a frame longer than max_frame_length,
  // a control payload of the wrong size for its type, a header block
  // HeaderDecompressor refuses, stream id 0 on SYN_STREAM, SYN_REPLY, HEADERS
  // or data frames. After an error every call returns it again.
  Result<std::optional<Frame>> next();

  // Bytes fed but not yet returned as frames.
  size_t buffered() const { return buffer_.size() - offset_; }

 private:
  Result<Frame> parse_control(uint16_t type, uint8_t flags, std::string_view payload);
  Result<std::optional<Frame>> failed(Error error);

  size_t max_frame_length_;
  // Consumed bytes stay in front of offset_ until the parser runs short of
  // input; dropping them then moves at most one partial frame, so feeding a
  // frame in small pieces stays linear.
  std::string buffer_;
  size_t offset_ = 0;
  HeaderDecompressor decompressor_;
  std::optional<Error> error_;
};

}  // namespace berth::streaming::spdy

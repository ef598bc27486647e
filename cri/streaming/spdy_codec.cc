#include "cri/streaming/spdy_codec.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>

namespace berth::streaming::spdy {
namespace {

// SPDY/3's zlib dictionary (spec 2.6.10.1): 65 common names and values, each
// after a 4-byte big-endian length, then value fragments with no framing. The
// peer's zlib header names the dictionary by Adler-32 (0xe3c6a7c2) and zlib
// checks it, so a wrong byte here fails the first header block of a connection.
constexpr std::string_view kDictionaryWords[] = {
    "options", "head", "post", "put", "delete", "trace",
    "accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
    "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length",
    "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host",
    "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
    "last-modified", "location", "max-forwards", "pragma",
    "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate",
    "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
    "public", "set-cookie", "keep-alive", "origin",
};
constexpr std::string_view kDictionaryTail =
    "100101201202205206300302303304305306307"
    "402405406407408409410411412413414415416417"
    "502504505"
    "203 Non-Authoritative Information"
    "204 No Content"
    "301 Moved Permanently"
    "400 Bad Request"
    "401 Unauthorized"
    "403 Forbidden"
    "404 Not Found"
    "500 Internal Server Error"
    "501 Not Implemented"
    "503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec "
    "00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age="
    "gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

constexpr size_t dictionary_length() {
  size_t n = kDictionaryTail.size();
  for (std::string_view word : kDictionaryWords) n += 4 + word.size();
  return n;
}

constexpr auto kDictionary = [] {
  std::array<Bytef, dictionary_length()> out{};
  size_t at = 0;
  for (std::string_view word : kDictionaryWords) {
    for (int shift = 24; shift >= 0; shift -= 8) out[at++] = static_cast<Bytef>(word.size() >> shift);
    for (char c : word) out[at++] = static_cast<Bytef>(c);
  }
  for (char c : kDictionaryTail) out[at++] = static_cast<Bytef>(c);
  return out;
}();
static_assert(kDictionary.size() == 1423);

constexpr uint32_t kStreamIdMask = 0x7fffffff;
constexpr uint32_t kLengthMask = 0xffffff;
// A parser buffer larger than this is freed once empty rather than kept for the
// connection's lifetime: one big frame should not pin its memory.
constexpr size_t kKeptBufferCapacity = 1u << 20;

void store32(char* out, uint32_t v) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

void put32(std::string& out, uint32_t v) {
  char bytes[4];
  store32(bytes, v);
  out.append(bytes, 4);
}

uint32_t get32(const char* p) {
  auto b = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

// A control frame's 8-byte header, with room reserved for its payload.
std::string control_frame(FrameType type, uint8_t flags, size_t payload_length) {
  std::string out;
  out.reserve(8 + payload_length);
  put32(out, static_cast<uint32_t>(0x8000 | kVersion) << 16 | static_cast<uint16_t>(type));
  put32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(payload_length));
  return out;
}

const char* type_name(uint16_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::syn_stream: return "SYN_STREAM";
    case FrameType::syn_reply: return "SYN_REPLY";
    case FrameType::rst_stream: return "RST_STREAM";
    case FrameType::settings: return "SETTINGS";
    case FrameType::ping: return "PING";
    case FrameType::goaway: return "GOAWAY";
    case FrameType::headers: return "HEADERS";
    case FrameType::window_update: return "WINDOW_UPDATE";
  }
  return "unknown";
}

// Names must be non-empty, lower-case and unique (the spec; Go's framer rejects
// upper case and repeats, so sending them would break the connection).
Result<> check_names(const HeaderList& headers, int code) {
  std::vector<std::string_view> names;
  names.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    if (name.empty()) return fail(code, "spdy header with an empty name");
    if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return fail(code, "spdy header name \"" + name.substr(0, 64) + "\" has upper case");
    }
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  auto repeat = std::adjacent_find(names.begin(), names.end());
  if (repeat != names.end()) {
    return fail(code, "spdy header \"" + std::string(repeat->substr(0, 64)) +
                          "\" appears twice; join its values with NUL instead");
  }
  return {};
}

Result<std::string> serialize_block(const HeaderList& headers) {
  size_t size = 4;
  for (const auto& [name, value] : headers) size += 8 + name.size() + value.size();
  if (size > kMaxHeaderBlockLength) {
    return invalid("spdy header block of " + std::to_string(size) + " bytes is over the limit of " +
                   std::to_string(kMaxHeaderBlockLength));
  }
  BERTH_TRY_VOID(check_names(headers, EINVAL));
  std::string block;
  block.reserve(size);
  put32(block, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    put32(block, static_cast<uint32_t>(name.size()));
    block += name;
    put32(block, static_cast<uint32_t>(value.size()));
    block += value;
  }
  return block;
}

// Reads the length-prefixed fields of an inflated header block.
struct BlockReader {
  std::string_view rest;

  bool u32(uint32_t& v) {
    if (rest.size() < 4) return false;
    v = get32(rest.data());
    rest.remove_prefix(4);
    return true;
  }
  bool string(std::string& s) {
    uint32_t n;
    if (!u32(n) || rest.size() < n) return false;
    s.assign(rest.substr(0, n));
    rest.remove_prefix(n);
    return true;
  }
};

Result<HeaderList> parse_block(std::string_view block) {
  BlockReader reader{block};
  uint32_t count;
  if (!reader.u32(count)) return fail(EPROTO, "spdy header block is too short for its count");
  // Each header takes at least 8 bytes, so a count this large is a lie, and
  // checking first keeps reserve() from trusting it.
  if (count > reader.rest.size() / 8) {
    return fail(EPROTO, "spdy header block claims " + std::to_string(count) + " headers but has room for at most " +
                            std::to_string(reader.rest.size() / 8));
  }
  HeaderList headers(count);
  for (auto& [name, value] : headers) {
    if (!reader.string(name) || !reader.string(value)) {
      return fail(EPROTO, "spdy header block ends inside its " + std::to_string(count) + " headers");
    }
  }
  // Go's framer would read leftover bytes as the start of the next block.
  if (!reader.rest.empty()) {
    return fail(EPROTO, "spdy header block has " + std::to_string(reader.rest.size()) + " bytes after its headers");
  }
  BERTH_TRY_VOID(check_names(headers, EPROTO));
  return headers;
}

}  // namespace

std::optional<std::string_view> find_header(const HeaderList& headers, std::string_view lower_name) {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return std::string_view(value).substr(0, value.find('\0'));
  }
  return std::nullopt;
}

void HeaderCompressor::Deleter::operator()(z_stream_s* z) const {
  deflateEnd(z);
  delete z;
}

HeaderCompressor::HeaderCompressor() = default;
HeaderCompressor::~HeaderCompressor() = default;
HeaderCompressor::HeaderCompressor(HeaderCompressor&&) noexcept = default;
HeaderCompressor& HeaderCompressor::operator=(HeaderCompressor&&) noexcept = default;

Result<std::string> HeaderCompressor::compress(const HeaderList& headers) {
  if (broken_) return fail(EIO, "spdy header compression failed earlier on this connection");
  std::string block = BERTH_TRY(serialize_block(headers));
  if (!z_) {
    auto fresh = std::make_unique<z_stream>();
    if (deflateInit(fresh.get(), Z_BEST_COMPRESSION) != Z_OK) {
      return fail(ENOMEM, "spdy header compressor: deflateInit failed");
    }
    z_.reset(fresh.release());
    if (deflateSetDictionary(z_.get(), kDictionary.data(), kDictionary.size()) != Z_OK) {
      broken_ = true;
      return fail(EIO, "spdy header compressor: deflateSetDictionary failed");
    }
  }
  z_->next_in = reinterpret_cast<Bytef*>(block.data());
  z_->avail_in = static_cast<uInt>(block.size());
  std::string out(block.size() + 64, '\0');
  size_t produced = 0;
  // Z_SYNC_FLUSH has flushed everything once deflate leaves output space unused.
  do {
    if (produced == out.size()) out.resize(out.size() * 2);
    z_->next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    z_->avail_out = static_cast<uInt>(out.size() - produced);
    int rc = deflate(z_.get(), Z_SYNC_FLUSH);
    produced = out.size() - z_->avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      broken_ = true;
      return fail(EIO, "spdy header compressor: deflate returned " + std::to_string(rc));
    }
  } while (z_->avail_out == 0);
  out.resize(produced);
  return out;
}

void HeaderDecompressor::Deleter::operator()(z_stream_s* z) const {
  inflateEnd(z);
  delete z;
}

HeaderDecompressor::HeaderDecompressor(size_t max_block_length) : max_block_length_(max_block_length) {}
HeaderDecompressor::~HeaderDecompressor() = default;
HeaderDecompressor::HeaderDecompressor(HeaderDecompressor&&) noexcept = default;
HeaderDecompressor& HeaderDecompressor::operator=(HeaderDecompressor&&) noexcept = default;

Result<HeaderList> HeaderDecompressor::decompress(std::string_view block) {
  if (broken_) return fail(EPROTO, "spdy header decompression failed earlier on this connection");
  if (!z_) {
    auto fresh = std::make_unique<z_stream>();
    if (inflateInit(fresh.get()) != Z_OK) return fail(ENOMEM, "spdy header decompressor: inflateInit failed");
    z_.reset(fresh.release());
  }
  // Any failure below leaves the context somewhere inside the peer's stream.
  auto broken = [this](std::string message) {
    broken_ = true;
    return fail(EPROTO, "spdy header block: " + std::move(message));
  };
  z_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z_->avail_in = static_cast<uInt>(block.size());
  size_t produced = 0;
  while (true) {
    if (produced == inflated_.size()) {
      if (produced > max_block_length_) {
        return broken("inflates to more than " + std::to_string(max_block_length_) + " bytes");
      }
      inflated_.resize(std::min(std::max<size_t>(256, produced * 2), max_block_length_ + 1));
    }
    z_->next_out = reinterpret_cast<Bytef*>(inflated_.data() + produced);
    z_->avail_out = static_cast<uInt>(inflated_.size() - produced);
    int rc = inflate(z_.get(), Z_SYNC_FLUSH);
    produced = inflated_.size() - z_->avail_out;
    if (rc == Z_NEED_DICT) {
      if (inflateSetDictionary(z_.get(), kDictionary.data(), kDictionary.size()) != Z_OK) {
        return broken("compressed with a dictionary other than SPDY/3's");
      }
      continue;
    }
    // A SPDY compression context never ends; a peer that ends it cannot go on.
    if (rc == Z_STREAM_END) return broken("the peer ended its compression stream");
    if (rc == Z_BUF_ERROR) break;  // no input left to make progress with
    if (rc != Z_OK) return broken(z_->msg ? z_->msg : "inflate returned " + std::to_string(rc));
    // Out of input with output space to spare: all of the block is out.
    if (z_->avail_in == 0 && z_->avail_out != 0) break;
  }
  if (produced > max_block_length_) {
    return broken("inflates to more than " + std::to_string(max_block_length_) + " bytes");
  }
  return parse_block(std::string_view(inflated_.data(), produced));
}

Result<std::string> FrameWriter::header_frame(FrameType type, uint8_t flags, std::string_view prefix,
                                              const HeaderList& headers) {
  std::string block = BERTH_TRY(compressor_.compress(headers));
  // compress() caps the block well under the 24-bit length.
  std::string out = control_frame(type, flags, prefix.size() + block.size());
  out += prefix;
  out += block;
  return out;
}

Result<std::string> FrameWriter::syn_stream(const SynStream& frame) {
  uint32_t id = frame.stream_id & kStreamIdMask;
  if (id == 0) return invalid("spdy SYN_STREAM needs a non-zero stream id");
  std::string prefix;
  put32(prefix, id);
  put32(prefix, frame.associated_id & kStreamIdMask);
  prefix.push_back(static_cast<char>((frame.priority & 7) << 5));
  prefix.push_back(0);  // credential slot: unused
  return header_frame(FrameType::syn_stream, frame.flags, prefix, frame.headers);
}

Result<std::string> FrameWriter::syn_reply(const SynReply& frame) {
  uint32_t id = frame.stream_id & kStreamIdMask;
  if (id == 0) return invalid("spdy SYN_REPLY needs a non-zero stream id");
  std::string prefix;
  put32(prefix, id);
  return header_frame(FrameType::syn_reply, frame.flags, prefix, frame.headers);
}

Result<std::string> FrameWriter::headers(const Headers& frame) {
  uint32_t id = frame.stream_id & kStreamIdMask;
  if (id == 0) return invalid("spdy HEADERS needs a non-zero stream id");
  std::string prefix;
  put32(prefix, id);
  return header_frame(FrameType::headers, frame.flags, prefix, frame.headers);
}

std::string FrameWriter::rst_stream(uint32_t stream_id, uint32_t status) {
  std::string out = control_frame(FrameType::rst_stream, 0, 8);
  put32(out, stream_id & kStreamIdMask);
  put32(out, status);
  return out;
}

std::string FrameWriter::settings(const Settings& frame) {
  std::string out = control_frame(FrameType::settings, frame.flags, 4 + 8 * frame.entries.size());
  put32(out, static_cast<uint32_t>(frame.entries.size()));
  for (const SettingsEntry& entry : frame.entries) {
    put32(out, static_cast<uint32_t>(entry.flags) << 24 | (entry.id & kLengthMask));
    put32(out, entry.value);
  }
  return out;
}

std::string FrameWriter::ping(uint32_t id) {
  std::string out = control_frame(FrameType::ping, 0, 4);
  put32(out, id);
  return out;
}

std::string FrameWriter::goaway(uint32_t last_good_stream_id, uint32_t status) {
  std::string out = control_frame(FrameType::goaway, 0, 8);
  put32(out, last_good_stream_id & kStreamIdMask);
  put32(out, status);
  return out;
}

std::string FrameWriter::window_update(uint32_t stream_id, uint32_t delta) {
  std::string out = control_frame(FrameType::window_update, 0, 8);
  put32(out, stream_id & kStreamIdMask);
  put32(out, delta & kStreamIdMask);  // the delta is 31 bits too
  return out;
}

std::array<char, 8> FrameWriter::data_header(uint32_t stream_id, uint8_t flags, size_t length) {
  // Truncating the length would desynchronize the peer's framing for good.
  if (length > kMaxDataLength) std::abort();
  std::array<char, 8> header;
  store32(header.data(), stream_id & kStreamIdMask);
  store32(header.data() + 4, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(length));
  return header;
}

std::string FrameWriter::data(uint32_t stream_id, uint8_t flags, std::string_view payload) {
  size_t frames = std::max<size_t>(1, (payload.size() + kMaxDataLength - 1) / kMaxDataLength);
  std::string out;
  out.reserve(payload.size() + 8 * frames);
  size_t at = 0;
  do {
    size_t n = std::min(kMaxDataLength, payload.size() - at);
    bool last = at + n == payload.size();
    std::array<char, 8> header = data_header(stream_id, last ? flags : flags & ~kFlagFin, n);
    out.append(header.data(), header.size());
    out.append(payload.substr(at, n));
    at += n;
  } while (at < payload.size());
  return out;
}

FrameParser::FrameParser(size_t max_frame_length) : max_frame_length_(max_frame_length) {}

void FrameParser::feed(const char* data, size_t size) {
  if (error_) return;
  buffer_.append(data, size);
}

Result<std::optional<Frame>> FrameParser::failed(Error error) {
  error_ = std::move(error);
  return std::unexpected(*error_);
}

Result<std::optional<Frame>> FrameParser::next() {
  if (error_) return std::unexpected(*error_);
  auto compact = [this] {
    if (offset_ == 0) return;
    buffer_.erase(0, offset_);
    offset_ = 0;
  };
  std::string_view input(buffer_.data() + offset_, buffer_.size() - offset_);
  if (input.size() < 8) {
    compact();
    return std::nullopt;
  }
  uint32_t first = get32(input.data());
  uint32_t second = get32(input.data() + 4);
  bool control = first & 0x80000000;
  uint8_t flags = static_cast<uint8_t>(second >> 24);
  size_t length = second & kLengthMask;
  // Both checks need only the header, so a bad frame fails before its payload arrives.
  if (control) {
    uint16_t version = (first >> 16) & 0x7fff;
    if (version != kVersion) {
      return failed({EPROTO, "spdy control frame has version " + std::to_string(version) + ", want 3"});
    }
  }
  if (length > max_frame_length_) {
    return failed({EPROTO, "spdy frame of " + std::to_string(length) + " bytes is over the limit of " +
                               std::to_string(max_frame_length_)});
  }
  if (input.size() < 8 + length) {
    compact();
    buffer_.reserve(8 + length);  // the rest of the frame arrives without reallocation
    return std::nullopt;
  }
  std::string_view payload = input.substr(8, length);
  std::optional<Frame> frame;
  if (control) {
    auto parsed = parse_control(static_cast<uint16_t>(first), flags, payload);
    if (!parsed) return failed(std::move(parsed.error()));
    frame = std::move(*parsed);
  } else {
    uint32_t stream_id = first & kStreamIdMask;
    if (stream_id == 0) return failed({EPROTO, "spdy data frame on stream 0"});
    frame = DataFrame{stream_id, flags, std::string(payload)};
  }
  offset_ += 8 + length;
  if (offset_ == buffer_.size()) {
    if (buffer_.capacity() > kKeptBufferCapacity) {
      buffer_ = std::string();
    } else {
      buffer_.clear();
    }
    offset_ = 0;
  }
  return frame;
}

Result<Frame> FrameParser::parse_control(uint16_t type, uint8_t flags, std::string_view payload) {
  const char* p = payload.data();
  auto wrong_size = [&](const char* want) {
    return fail(EPROTO, std::string("spdy ") + type_name(type) + " payload of " + std::to_string(payload.size()) +
                            " bytes, want " + want);
  };
  auto header_block = [&](size_t prefix) -> Result<HeaderList> {
    auto headers = decompressor_.decompress(payload.substr(prefix));
    if (!headers) return std::unexpected(headers.error().wrap(std::string("in ") + type_name(type)));
    return headers;
  };
  auto zero_stream = [&] { return fail(EPROTO, std::string("spdy ") + type_name(type) + " on stream 0"); };

  switch (static_cast<FrameType>(type)) {
    case FrameType::syn_stream: {
      if (payload.size() < 10) return wrong_size("at least 10");
      SynStream frame{.stream_id = get32(p) & kStreamIdMask,
                      .associated_id = get32(p + 4) & kStreamIdMask,
                      .priority = static_cast<uint8_t>(static_cast<unsigned char>(p[8]) >> 5),
                      .flags = flags};
      if (frame.stream_id == 0) return zero_stream();
      frame.headers = BERTH_TRY(header_block(10));
      return frame;
    }
    case FrameType::syn_reply: {
      if (payload.size() < 4) return wrong_size("at least 4");
      SynReply frame{.stream_id = get32(p) & kStreamIdMask, .flags = flags};
      if (frame.stream_id == 0) return zero_stream();
      frame.headers = BERTH_TRY(header_block(4));
      return frame;
    }
    case FrameType::headers: {
      if (payload.size() < 4) return wrong_size("at least 4");
      Headers frame{.stream_id = get32(p) & kStreamIdMask, .flags = flags};
      if (frame.stream_id == 0) return zero_stream();
      frame.headers = BERTH_TRY(header_block(4));
      return frame;
    }
    case FrameType::rst_stream:
      if (payload.size() != 8) return wrong_size("8");
      return RstStream{get32(p) & kStreamIdMask, get32(p + 4)};
    case FrameType::settings: {
      if (payload.size() < 4) return wrong_size("at least 4");
      uint32_t count = get32(p);
      if (payload.size() != 4 + 8 * static_cast<uint64_t>(count)) {
        return wrong_size(("4 + 8 * " + std::to_string(count) + " entries").c_str());
      }
      Settings frame{.flags = flags};
      frame.entries.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        uint32_t flags_and_id = get32(p + 4 + 8 * i);
        frame.entries.push_back(SettingsEntry{static_cast<uint8_t>(flags_and_id >> 24), flags_and_id & kLengthMask,
                                              get32(p + 8 + 8 * i)});
      }
      return frame;
    }
    case FrameType::ping:
      if (payload.size() != 4) return wrong_size("4");
      return Ping{get32(p)};
    case FrameType::goaway:
      if (payload.size() != 8) return wrong_size("8");
      return GoAway{get32(p) & kStreamIdMask, get32(p + 4)};
    case FrameType::window_update:
      if (payload.size() != 8) return wrong_size("8");
      return WindowUpdate{get32(p) & kStreamIdMask, get32(p + 4) & kStreamIdMask};
  }
  return UnknownControl{type};
}

}  // namespace berth::streaming::spdy

#include "runtime/shim/shim_protocol.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

namespace berth::shim {

namespace {

size_t fitted(int n, size_t size) { return n > 0 && static_cast<size_t>(n) < size ? static_cast<size_t>(n) : 0; }

// Calls `on_pair(key, value)` for each `key=value` line; lines without '=' are skipped.
template <typename F>
void for_each_pair(std::string_view text, F&& on_pair) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    size_t eq = line.find('=');
    if (eq != std::string_view::npos) on_pair(line.substr(0, eq), line.substr(eq + 1));
  }
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && ptr == s.data() + s.size();
}

// Tracks which required keys were seen, so a truncated or foreign file is an error.
class Fields {
 public:
  template <typename T>
  void take(std::string_view key, std::string_view value, std::string_view want, T& out, unsigned bit) {
    if (key != want) return;
    if (!parse_number(value, out)) {
      bad_ = std::string(key) + "=" + std::string(value);
      return;
    }
    seen_ |= 1u << bit;
  }
  Result<> check(const char* file, unsigned required, const char* const* names) const {
    if (!bad_.empty()) return invalid(std::string(file) + ": bad value " + bad_);
    for (unsigned i = 0; (1u << i) <= required; ++i)
      if ((required & (1u << i)) && !(seen_ & (1u << i))) return invalid(std::string(file) + ": no " + names[i]);
    return {};
  }

 private:
  unsigned seen_ = 0;
  std::string bad_;
};

void put_u16(uint16_t v, char* out) {
  out[0] = static_cast<char>(v >> 8);
  out[1] = static_cast<char>(v);
}

uint32_t get_u32(const char* in) {
  const auto* u = reinterpret_cast<const unsigned char*>(in);
  return static_cast<uint32_t>(u[0]) << 24 | static_cast<uint32_t>(u[1]) << 16 | static_cast<uint32_t>(u[2]) << 8 |
         u[3];
}

}  // namespace

void encode_attach_header(char type, uint32_t length, char out[kAttachHeaderSize]) {
  out[0] = type;
  out[1] = static_cast<char>(length >> 24);
  out[2] = static_cast<char>(length >> 16);
  out[3] = static_cast<char>(length >> 8);
  out[4] = static_cast<char>(length);
}

void encode_attach_resize(uint16_t width, uint16_t height, char out[kAttachResizeFrameSize]) {
  encode_attach_header(kAttachResize, kAttachResizePayload, out);
  put_u16(width, out + kAttachHeaderSize);
  put_u16(height, out + kAttachHeaderSize + 2);
}

bool decode_attach_resize(const AttachPiece& piece, uint16_t& width, uint16_t& height) {
  if (piece.type != kAttachResize || !piece.first || !piece.last || piece.size != kAttachResizePayload) return false;
  const auto* u = reinterpret_cast<const unsigned char*>(piece.data);
  width = static_cast<uint16_t>(u[0] << 8 | u[1]);
  height = static_cast<uint16_t>(u[2] << 8 | u[3]);
  return true;
}

bool AttachDecoder::next(std::string_view& input, AttachPiece& piece) {
  if (failed_) return false;
  if (!in_payload_) {
    size_t take = std::min(kAttachHeaderSize - header_size_, input.size());
    std::memcpy(header_ + header_size_, input.data(), take);
    header_size_ += take;
    input.remove_prefix(take);
    if (header_size_ < kAttachHeaderSize) return false;
    header_size_ = 0;
    type_ = header_[0];
    uint32_t length = get_u32(header_ + 1);
    if (length > kMaxAttachPayload) {
      failed_ = true;
      return false;
    }
    if (length == 0) {
      piece = {type_, whole_, 0, true, true};
      return true;
    }
    in_payload_ = true;
    first_ = true;
    remaining_ = length;
    whole_want_ = length <= kWholePayload ? length : 0;
    whole_size_ = 0;
  }
  if (whole_want_ > 0) {
    size_t take = std::min(whole_want_ - whole_size_, input.size());
    std::memcpy(whole_ + whole_size_, input.data(), take);
    whole_size_ += take;
    input.remove_prefix(take);
    if (whole_size_ < whole_want_) return false;
    piece = {type_, whole_, whole_want_, true, true};
    in_payload_ = false;
    whole_want_ = 0;
    return true;
  }
  if (input.empty()) return false;
  size_t take = std::min(remaining_, input.size());
  piece = {type_, input.data(), take, first_, take == remaining_};
  input.remove_prefix(take);
  first_ = false;
  remaining_ -= take;
  if (remaining_ == 0) in_payload_ = false;
  return true;
}

size_t format_shim_state(const ShimState& s, char* buf, size_t size) {
  int n = std::snprintf(buf, size,
                        "version=1\nshim_pid=%d\nshim_start_time=%llu\ncontainer_pid=%d\ncontainer_start_time=%llu\n",
                        static_cast<int>(s.shim_pid), s.shim_start_time, static_cast<int>(s.container_pid),
                        s.container_start_time);
  return fitted(n, size);
}

size_t format_exit_state(const ExitState& s, char* buf, size_t size) {
  int n = std::snprintf(buf, size, "version=1\nexit_code=%d\nsignal=%d\nexited_at_ns=%lld\noom_killed=%d\n",
                        s.exit_code, s.signal, static_cast<long long>(s.exited_at_ns), s.oom_killed ? 1 : 0);
  return fitted(n, size);
}

Result<ShimState> parse_shim_state(std::string_view text) {
  static const char* const names[] = {"version", "shim_pid", "shim_start_time", "container_pid",
                                      "container_start_time"};
  ShimState s;
  int version = 0;
  Fields f;
  for_each_pair(text, [&](std::string_view k, std::string_view v) {
    f.take(k, v, "version", version, 0);
    f.take(k, v, "shim_pid", s.shim_pid, 1);
    f.take(k, v, "shim_start_time", s.shim_start_time, 2);
    f.take(k, v, "container_pid", s.container_pid, 3);
    f.take(k, v, "container_start_time", s.container_start_time, 4);
  });
  BERTH_TRY_VOID(f.check(kShimStateFile, 0x1f, names));
  if (version != 1) return invalid(std::string(kShimStateFile) + ": unsupported version " + std::to_string(version));
  return s;
}

Result<ExitState> parse_exit_state(std::string_view text) {
  static const char* const names[] = {"version", "exit_code", "signal", "exited_at_ns", "oom_killed"};
  ExitState s;
  int version = 0, oom = 0;
  Fields f;
  for_each_pair(text, [&](std::string_view k, std::string_view v) {
    f.take(k, v, "version", version, 0);
    f.take(k, v, "exit_code", s.exit_code, 1);
    f.take(k, v, "signal", s.signal, 2);
    f.take(k, v, "exited_at_ns", s.exited_at_ns, 3);
    f.take(k, v, "oom_killed", oom, 4);
  });
  BERTH_TRY_VOID(f.check(kExitStateFile, 0x1f, names));
  if (version != 1) return invalid(std::string(kExitStateFile) + ": unsupported version " + std::to_string(version));
  s.oom_killed = oom != 0;
  return s;
}

}  // namespace berth::shim

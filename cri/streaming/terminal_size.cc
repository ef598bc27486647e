#include "cri/streaming/terminal_size.h"

#include <nlohmann/json.hpp>

namespace berth::streaming {

namespace {
constexpr size_t kMaxObject = 4096;
}  // namespace

Result<TerminalSize> parse_terminal_size(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return fail(EPROTO, "resize message is not a JSON object");
  TerminalSize size;
  for (auto [key, field] : {std::pair{"Width", &size.width}, std::pair{"Height", &size.height}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;  // Go leaves a missing field at zero
    if (!it->is_number_unsigned() || it->get<uint64_t>() > 0xffff)
      return fail(EPROTO, std::string("resize message: ") + key + " is not a 16-bit unsigned number");
    *field = it->get<uint16_t>();
  }
  return size;
}

Result<std::vector<TerminalSize>> TerminalSizeDecoder::feed(std::string_view data) {
  if (failed_) return fail(EPROTO, "resize stream already failed");
  buf_.append(data);
  std::vector<TerminalSize> sizes;
  size_t pos = 0;
  for (;;) {
    while (pos < buf_.size() && std::isspace(static_cast<unsigned char>(buf_[pos]))) ++pos;
    if (pos == buf_.size()) break;
    if (buf_[pos] != '{') {
      failed_ = true;
      return fail(EPROTO, "resize stream: expected a JSON object");
    }
    // Find the end of this object: braces outside strings.
    int depth = 0;
    bool in_string = false, escaped = false;
    size_t end = std::string::npos;
    for (size_t i = pos; i < buf_.size(); ++i) {
      char c = buf_[i];
      if (in_string) {
        if (escaped) escaped = false;
        else if (c == '\\') escaped = true;
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{') {
        ++depth;
      } else if (c == '}' && --depth == 0) {
        end = i + 1;
        break;
      }
    }
    if (end == std::string::npos) {
      if (buf_.size() - pos > kMaxObject) {
        failed_ = true;
        return fail(EPROTO, "resize stream: object too long");
      }
      break;
    }
    auto size = parse_terminal_size(std::string_view(buf_).substr(pos, end - pos));
    if (!size) {
      failed_ = true;
      return std::unexpected(size.error());
    }
    sizes.push_back(*size);
    pos = end;
  }
  buf_.erase(0, pos);
  return sizes;
}

}  // namespace berth::streaming

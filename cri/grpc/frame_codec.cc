#include "cri/grpc/frame_codec.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace berth::grpc {

void write_message_prefix(char* out, uint32_t length) {
  out[0] = 0;
  out[1] = static_cast<char>((length >> 24) & 0xff);
  out[2] = static_cast<char>((length >> 16) & 0xff);
  out[3] = static_cast<char>((length >> 8) & 0xff);
  out[4] = static_cast<char>(length & 0xff);
}

std::string frame_message(std::string_view payload) {
  std::string out(kMessagePrefixSize + payload.size(), '\0');
  write_message_prefix(out.data(), static_cast<uint32_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + kMessagePrefixSize);
  return out;
}

std::string percent_encode(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size()) {
      int hi = hex_value(encoded[i + 1]);
      int lo = hex_value(encoded[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(encoded[i]);
  }
  return out;
}

std::optional<std::chrono::nanoseconds> parse_timeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  std::string_view digits = value.substr(0, value.size() - 1);
  int64_t amount = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    amount = amount * 10 + (c - '0');  // at most 8 digits: no overflow
  }
  int64_t unit_ns;
  switch (value.back()) {
    case 'H': unit_ns = 3600LL * 1000 * 1000 * 1000; break;
    case 'M': unit_ns = 60LL * 1000 * 1000 * 1000; break;
    case 'S': unit_ns = 1000LL * 1000 * 1000; break;
    case 'm': unit_ns = 1000LL * 1000; break;
    case 'u': unit_ns = 1000; break;
    case 'n': unit_ns = 1; break;
    default: return std::nullopt;
  }
  if (amount > std::numeric_limits<int64_t>::max() / unit_ns) return std::chrono::nanoseconds::max();
  return std::chrono::nanoseconds(amount * unit_ns);
}

CallStatus MessageDeframer::feed(std::string_view data) {
  if (!error_.ok()) return error_;
  while (!data.empty()) {
    if (body_need_ == 0) {
      size_t take = std::min(kMessagePrefixSize - header_have_, data.size());
      std::copy_n(data.data(), take, header_ + header_have_);
      header_have_ += take;
      data.remove_prefix(take);
      if (header_have_ < kMessagePrefixSize) break;
      header_have_ = 0;

      auto flags = static_cast<unsigned char>(header_[0]);
      size_t length = (size_t{static_cast<unsigned char>(header_[1])} << 24) |
                      (size_t{static_cast<unsigned char>(header_[2])} << 16) |
                      (size_t{static_cast<unsigned char>(header_[3])} << 8) |
                      size_t{static_cast<unsigned char>(header_[4])};
      if (flags & 1) {
        error_ = {StatusCode::internal,
                  "compressed message received, but this server only accepts grpc-encoding identity"};
        return error_;
      }
      if (flags != 0) {
        error_ = {StatusCode::internal, "message prefix has reserved flag bits set"};
        return error_;
      }
      if (length > max_message_bytes_) {
        error_ = {StatusCode::resource_exhausted,
                  "received message of " + std::to_string(length) + " bytes is larger than the limit of " +
                      std::to_string(max_message_bytes_)};
        return error_;
      }
      if (length == 0) {
        messages_.emplace_back();
        continue;
      }
      body_need_ = length;
      // Grow with the data rather than trusting the announced length up front.
      body_.reserve(std::min<size_t>(length, 64 * 1024));
    }
    size_t take = std::min(body_need_, data.size());
    body_.append(data.data(), take);
    body_need_ -= take;
    data.remove_prefix(take);
    if (body_need_ == 0) messages_.push_back(std::exchange(body_, std::string()));
  }
  return {};
}

}  // namespace berth::grpc

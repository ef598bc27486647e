#include "cri/streaming/http_message.h"

#include <algorithm>

namespace berth::streaming {

namespace {

// RFC 7230 3.2.6 tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == to_lower(y); });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict: a '%' not followed by two hex digits is an error, not a literal.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Splits a field value on commas outside quoted strings (RFC 7230 7, 3.2.6).
void split_list(std::string_view value, std::vector<std::string>& out) {
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size()) {
      if (quoted && value[i] == '\\') {
        ++i;
        continue;
      }
      if (value[i] == '"') quoted = !quoted;
      if (quoted || value[i] != ',') continue;
    }
    std::string_view element = trim_ows(value.substr(start, i - start));
    if (!element.empty()) out.emplace_back(element);
    start = i + 1;
  }
}

// HTTP-version = "HTTP/" DIGIT "." DIGIT; returns the major digit, or -1 when malformed.
int http_major(std::string_view version) {
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.') return -1;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(version[5]) || !digit(version[7])) return -1;
  return version[5] - '0';
}

}  // namespace

std::optional<std::string> HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return std::nullopt;
}

std::vector<std::string> HttpRequest::header_values(std::string_view lower_name) const {
  std::vector<std::string> out;
  for (const auto& [name, value] : headers) {
    if (name == lower_name) split_list(value, out);
  }
  return out;
}

bool HttpRequest::header_has_token(std::string_view lower_name, std::string_view token) const {
  auto values = header_values(lower_name);
  return std::any_of(values.begin(), values.end(), [&](const std::string& v) { return iequals(v, token); });
}

std::vector<std::string> HttpRequest::query_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [key, value] : query) {
    if (key == name) out.push_back(value);
  }
  return out;
}

HttpRequestParser::State HttpRequestParser::fail(int status, std::string message) {
  state_ = State::error;
  error_status_ = status;
  error_message_ = std::move(message);
  buffer_.clear();
  return state_;
}

HttpRequestParser::State HttpRequestParser::feed(const char* data, size_t size) {
  if (state_ == State::error) return state_;
  if (state_ == State::done) {
    leftover_.append(data, size);
    return state_;
  }
  buffer_.append(data, size);
  // Resume the search for the blank line where the last call stopped.
  while (scanned_ < buffer_.size()) {
    size_t newline = buffer_.find('\n', scanned_);
    if (newline == std::string::npos) {
      scanned_ = buffer_.size();
      break;
    }
    scanned_ = newline + 1;
    size_t line_end = newline;
    if (line_end > line_start_ && buffer_[line_end - 1] == '\r') --line_end;
    if (line_end != line_start_) {
      line_start_ = scanned_;
      continue;
    }
    if (line_start_ == head_start_) {
      // RFC 7230 3.5: ignore blank lines before the request line.
      head_start_ = line_start_ = scanned_;
      continue;
    }
    if (scanned_ > max_head_bytes_) break;
    if (parse_head(std::string_view(buffer_).substr(head_start_, line_start_ - head_start_)) == State::error) {
      return state_;
    }
    leftover_ = buffer_.substr(scanned_);
    buffer_ = std::string();
    state_ = State::done;
    return state_;
  }
  if (scanned_ > max_head_bytes_) {
    return fail(431, "request head exceeds " + std::to_string(max_head_bytes_) + " bytes");
  }
  return state_;
}

HttpRequestParser::State HttpRequestParser::parse_head(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    size_t newline = head.find('\n');
    std::string_view line = head.substr(0, newline);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    head.remove_prefix(newline + 1);  // the head always ends in '\n'
  }

  // request-line = method SP request-target SP HTTP-version, single spaces.
  std::string_view request_line = lines.front();
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  int major = http_major(version);
  if (major < 0) return fail(400, "malformed HTTP version");
  if (major != 1) return fail(505, "HTTP version " + std::string(version) + " is not supported");
  if (!is_token(method)) return fail(400, "malformed request method");

  // origin-form = absolute-path [ "?" query ]: visible ASCII, no fragment.
  if (target.empty() || target.front() != '/') return fail(400, "request target must be an absolute path");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '#') return fail(400, "invalid character in request target");
  }
  size_t question = target.find('?');
  auto path = percent_decode(target.substr(0, question), false);
  if (!path) return fail(400, "bad percent-encoding in request path");

  request_ = HttpRequest{};
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      auto key = percent_decode(pair.substr(0, eq), true);
      auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
      if (!key || !value) return fail(400, "bad percent-encoding in query");
      request_.query.emplace_back(std::move(*key), std::move(*value));
    }
  }

  size_t hosts = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') {
      return fail(400, "obsolete line folding in header");  // RFC 7230 3.2.4
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(400, "header line without a colon");
    std::string_view name = line.substr(0, colon);
    // Also rejects whitespace before the colon, which RFC 7230 3.2.4 forbids.
    if (!is_token(name)) return fail(400, "malformed header name");
    std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) return fail(400, "control character in header " + std::string(name));
    }
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), to_lower);
    if (lower == "host") ++hosts;
    request_.headers.emplace_back(std::move(lower), std::string(value));
  }
  // RFC 7230 5.4: HTTP/1.1 needs exactly one Host; no version may send two.
  if (hosts > 1) return fail(400, "more than one Host header");
  if (hosts == 0 && version != "HTTP/1.0") return fail(400, "missing Host header");

  request_.method = method;
  request_.target = target;
  request_.path = std::move(*path);
  request_.version = version;
  return state_;
}

namespace {

void append_clean(std::string& out, std::string_view text) {
  for (char c : text) out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
}

}  // namespace

std::string serialize(const HttpResponse& response) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " ";
  append_clean(out, response.reason.empty() ? reason_phrase(response.status) : response.reason);
  out += "\r\n";
  bool has_length = false;
  bool has_type = false;
  for (const auto& [name, value] : response.headers) {
    has_length = has_length || iequals(name, "content-length");
    has_type = has_type || iequals(name, "content-type");
    append_clean(out, name);
    out += ": ";
    append_clean(out, value);
    out += "\r\n";
  }
  // RFC 7230 3.3.2: 1xx and 204 carry no Content-Length.
  bool bodiless = response.status / 100 == 1 || response.status == 204;
  if (!has_length && (!response.body.empty() || !bodiless)) {
    out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  }
  if (!has_type && !response.body.empty()) out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "\r\n";
  out += response.body;
  return out;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

}  // namespace berth::streaming

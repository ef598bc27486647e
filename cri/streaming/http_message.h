// The HTTP/1.1 request head that opens every CRI streaming connection (RFC 7230),
// before it is upgraded to SPDY/3.1 or WebSocket, and the plain responses we send
// back (101, or an error). No bodies are read: an upgrade request has none.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::streaming {

struct HttpRequest {
  std::string method, target;  // target as sent: "/exec/abc?port=80"
  std::string path;            // percent-decoded path part of target
  std::string version;         // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed, in order
  std::vector<std::pair<std::string, std::string>> query;    // decoded (%xx and '+' as space), in order

  // The first header of that name.
  std::optional<std::string> header(std::string_view lower_name) const;
  // Every occurrence, with comma-separated lists split into trimmed elements; empty
  // elements are dropped and commas inside quoted strings do not split.
  std::vector<std::string> header_values(std::string_view lower_name) const;
  // Whether `token` (case-insensitive) is an element of the header's comma lists,
  // as in "Connection: keep-alive, Upgrade".
  bool header_has_token(std::string_view lower_name, std::string_view token) const;
  std::vector<std::string> query_values(std::string_view name) const;
};

// Incremental request-head parser. feed() bytes until it returns done; bytes after the
// blank line stay in take_leftover() (after an upgrade they belong to the new protocol).
// Lines may end in CRLF or a bare LF, and blank lines before the request line are skipped.
class HttpRequestParser {
 public:
  explicit HttpRequestParser(size_t max_head_bytes = 16 * 1024) : max_head_bytes_(max_head_bytes) {}

  enum class State { need_more, done, error };
  // Once done, further input is appended to the leftover; once error, it is dropped.
  State feed(const char* data, size_t size);

  const HttpRequest& request() const { return request_; }  // valid when done
  std::string take_leftover() { return std::exchange(leftover_, std::string()); }
  int error_status() const { return error_status_; }  // 400 malformed, 431 head too large, 505 not HTTP/1.x
  const std::string& error_message() const { return error_message_; }

 private:
  State fail(int status, std::string message);
  State parse_head(std::string_view head);

  size_t max_head_bytes_;
  State state_ = State::need_more;
  std::string buffer_;
  size_t head_start_ = 0;  // after skipped leading blank lines
  size_t line_start_ = 0;  // start of the line being scanned
  size_t scanned_ = 0;     // bytes already searched for '\n'
  HttpRequest request_;
  std::string leftover_;
  int error_status_ = 0;
  std::string error_message_;
};

struct HttpResponse {
  int status = 200;
  std::string reason;  // empty: reason_phrase(status)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Adds Content-Length when there is a body or the status is not 1xx/204, and
// "Content-Type: text/plain; charset=utf-8" for a non-empty body, unless the caller set
// those headers. CR, LF and NUL in the reason and headers become spaces, so text from
// elsewhere (an error message) cannot end the head early or inject headers.
std::string serialize(const HttpResponse& response);

// "Switching Protocols" for 101 and so on; empty for codes it does not know.
std::string_view reason_phrase(int status);

}  // namespace berth::streaming

// The HTTP/1.1 request head and responses of the CRI streaming server.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cri/streaming/http_message.h"

namespace berth::streaming {
namespace {

using State = HttpRequestParser::State;
using Headers = std::vector<std::pair<std::string, std::string>>;

// What kubelet sends to start `kubectl exec` over SPDY, followed by the first
// bytes of the new protocol in the same read.
constexpr std::string_view kKubeletHead =
    "GET /exec/Zm9vYmFy?command=sh&stdin=1 HTTP/1.1\r\n"
    "Host: 127.0.0.1:10010\r\n"
    "User-Agent: kubelet/v1.29.0\r\n"
    "Content-Length: 0\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: SPDY/3.1\r\n"
    "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: v3.channel.k8s.io, v2.channel.k8s.io\r\n"
    "\r\n";
constexpr std::string_view kSpdyBytes("\x80\x03\x00\x01\x01", 5);

void expect_kubelet_request(const HttpRequest& request) {
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, "/exec/Zm9vYmFy?command=sh&stdin=1");
  EXPECT_EQ(request.path, "/exec/Zm9vYmFy");
  EXPECT_EQ(request.version, "HTTP/1.1");
  Headers expected = {{"host", "127.0.0.1:10010"},
                      {"user-agent", "kubelet/v1.29.0"},
                      {"content-length", "0"},
                      {"connection", "Upgrade"},
                      {"upgrade", "SPDY/3.1"},
                      {"x-stream-protocol-version", "v4.channel.k8s.io"},
                      {"x-stream-protocol-version", "v3.channel.k8s.io, v2.channel.k8s.io"}};
  EXPECT_EQ(request.headers, expected);
  EXPECT_EQ(request.header("upgrade"), "SPDY/3.1");
  EXPECT_EQ(request.header("x-stream-protocol-version"), "v4.channel.k8s.io");
  EXPECT_EQ(request.header("sec-websocket-key"), std::nullopt);
  EXPECT_EQ(request.header_values("x-stream-protocol-version"),
            (std::vector<std::string>{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"}));
  EXPECT_TRUE(request.header_has_token("connection", "upgrade"));
  EXPECT_TRUE(request.header_has_token("upgrade", "spdy/3.1"));
  EXPECT_FALSE(request.header_has_token("upgrade", "websocket"));
  EXPECT_EQ(request.query_values("command"), std::vector<std::string>{"sh"});
  EXPECT_EQ(request.query_values("stdin"), std::vector<std::string>{"1"});
  EXPECT_TRUE(request.query_values("tty").empty());
}

State feed(HttpRequestParser& parser, std::string_view bytes) { return parser.feed(bytes.data(), bytes.size()); }

// Parses a whole head, expecting an error; returns its status.
int rejection(std::string_view head) {
  HttpRequestParser parser;
  State state = feed(parser, head);
  EXPECT_EQ(state, State::error) << head;
  if (state == State::error) {
    EXPECT_FALSE(parser.error_message().empty());
  }
  return parser.error_status();
}

TEST(HttpRequestParser, ParsesKubeletUpgradeAndKeepsLeftover) {
  HttpRequestParser parser;
  std::string wire = std::string(kKubeletHead) + std::string(kSpdyBytes);
  ASSERT_EQ(feed(parser, wire), State::done);
  expect_kubelet_request(parser.request());
  EXPECT_EQ(parser.take_leftover(), kSpdyBytes);
  EXPECT_EQ(parser.take_leftover(), "");
}

TEST(HttpRequestParser, ParsesByteByByte) {
  HttpRequestParser parser;
  std::string wire = std::string(kKubeletHead) + std::string(kSpdyBytes);
  size_t i = 0;
  for (; i < kKubeletHead.size() - 1; ++i) {
    ASSERT_EQ(parser.feed(&wire[i], 1), State::need_more) << "at byte " << i;
  }
  ASSERT_EQ(parser.feed(&wire[i++], 1), State::done);
  EXPECT_EQ(parser.take_leftover(), "");
  // Bytes arriving after the head belong to the upgraded protocol.
  for (; i < wire.size(); ++i) ASSERT_EQ(parser.feed(&wire[i], 1), State::done);
  expect_kubelet_request(parser.request());
  EXPECT_EQ(parser.take_leftover(), kSpdyBytes);
}

TEST(HttpRequestParser, AcceptsBareLineFeedsAndLeadingBlankLines) {
  HttpRequestParser parser;
  ASSERT_EQ(feed(parser, "\r\n\nGET /attach/x HTTP/1.1\nHost: h\nX:1 \r\n\nrest"), State::done);
  EXPECT_EQ(parser.request().path, "/attach/x");
  EXPECT_EQ(parser.request().headers, (Headers{{"host", "h"}, {"x", "1"}}));
  EXPECT_EQ(parser.take_leftover(), "rest");
}

TEST(HttpRequestParser, WhitespaceOnlyLineIsFoldingNotTheEnd) {
  EXPECT_EQ(rejection("GET / HTTP/1.1\nHost: h\n  \t\n\n"), 400);
}

TEST(HttpRequestParser, HttpOneZeroNeedsNoHost) {
  HttpRequestParser parser;
  ASSERT_EQ(feed(parser, "GET / HTTP/1.0\r\n\r\n"), State::done);
  EXPECT_EQ(parser.request().version, "HTTP/1.0");
  EXPECT_TRUE(parser.request().headers.empty());
}

TEST(HttpRequest, HeaderValuesSplitCommaLists) {
  HttpRequestParser parser;
  ASSERT_EQ(feed(parser,
                 "GET / HTTP/1.1\r\nHost: h\r\n"
                 "Sec-WebSocket-Protocol: v5.channel.k8s.io ,v4.channel.k8s.io,, \r\n"
                 "sec-websocket-protocol:\tbase64.channel.k8s.io\t\r\n"
                 "Connection: keep-alive, UPGRADE\r\n"
                 "Upgrade: websocket\r\n"
                 "X-Quoted: \"a, b\", c\r\n"
                 "X-Empty:\r\n\r\n"),
            State::done);
  const HttpRequest& request = parser.request();
  EXPECT_EQ(request.header_values("sec-websocket-protocol"),
            (std::vector<std::string>{"v5.channel.k8s.io", "v4.channel.k8s.io", "base64.channel.k8s.io"}));
  EXPECT_EQ(request.header("sec-websocket-protocol"), "v5.channel.k8s.io ,v4.channel.k8s.io,,");
  EXPECT_TRUE(request.header_has_token("connection", "Upgrade"));
  EXPECT_TRUE(request.header_has_token("connection", "keep-alive"));
  EXPECT_FALSE(request.header_has_token("connection", "close"));
  EXPECT_FALSE(request.header_has_token("connection", "keep"));
  EXPECT_TRUE(request.header_has_token("upgrade", "WebSocket"));
  EXPECT_EQ(request.header_values("x-quoted"), (std::vector<std::string>{"\"a, b\"", "c"}));
  EXPECT_EQ(request.header("x-empty"), "");
  EXPECT_TRUE(request.header_values("x-empty").empty());
  EXPECT_TRUE(request.header_values("missing").empty());
}

TEST(HttpRequest, DecodesPathAndQuery) {
  HttpRequestParser parser;
  ASSERT_EQ(feed(parser,
                 "GET /portforward/a%20b+c%2Fd?port=80&port=443&name=x+y%2Bz%26&&flag&=v&%41=%e2%82%ac HTTP/1.1\r\n"
                 "Host: h\r\n\r\n"),
            State::done);
  const HttpRequest& request = parser.request();
  // '+' means space only in the query.
  EXPECT_EQ(request.path, "/portforward/a b+c/d");
  EXPECT_EQ(request.query_values("port"), (std::vector<std::string>{"80", "443"}));
  Headers expected = {{"port", "80"}, {"port", "443"}, {"name", "x y+z&"}, {"flag", ""}, {"", "v"}, {"A", "\xe2\x82\xac"}};
  EXPECT_EQ(request.query, expected);
}

TEST(HttpRequestParser, RejectsMalformedHeadsWith400) {
  constexpr std::string_view kHost = "Host: h\r\n";
  auto with_line = [&](std::string_view line) {
    return "GET / HTTP/1.1\r\n" + std::string(kHost) + std::string(line) + "\r\n\r\n";
  };
  EXPECT_EQ(rejection(with_line("X-A: 1\r\n  continued")), 400);  // obs-fold
  EXPECT_EQ(rejection(with_line("X-A: 1\r\n\tcontinued")), 400);
  EXPECT_EQ(rejection(with_line("X\x01" "A: 1")), 400);  // control character in name
  EXPECT_EQ(rejection(with_line("X-A : 1")), 400);       // whitespace before the colon
  EXPECT_EQ(rejection(with_line(": 1")), 400);           // empty name
  EXPECT_EQ(rejection(with_line("no colon here")), 400);
  EXPECT_EQ(rejection(with_line("X-A: a\x01z")), 400);   // control character in value
  EXPECT_EQ(rejection(with_line("X-A: a\rz")), 400);
  EXPECT_EQ(rejection(with_line("X-A: a\x7fz")), 400);
  EXPECT_EQ(rejection(with_line("Host: other")), 400);   // two Hosts
  EXPECT_EQ(rejection("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"), 400);  // no Host
  // Request line: exactly three single-space-separated parts.
  EXPECT_EQ(rejection("GET /\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  // Only origin-form targets.
  EXPECT_EQ(rejection("GET http://h/exec/x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  // Percent-encoding must be complete and hexadecimal.
  EXPECT_EQ(rejection("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET /a%4 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET /a?x=%4g HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET /a?x%=1 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  // Malformed versions are 400, not 505.
  EXPECT_EQ(rejection("GET / http/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(rejection("GET / HTTP/1\r\nHost: h\r\n\r\n"), 400);
}

TEST(HttpRequestParser, RejectsOtherMajorVersionsWith505) {
  EXPECT_EQ(rejection("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(rejection("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
}

TEST(HttpRequestParser, RejectsOversizedHeadsWith431) {
  std::string start = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
  std::string end = "\r\n\r\n";
  size_t limit = 256;
  auto head_of = [&](size_t size) { return start + std::string(size - start.size() - end.size(), 'p') + end; };

  HttpRequestParser exact(limit);
  EXPECT_EQ(feed(exact, head_of(limit) + "leftover"), State::done);
  EXPECT_EQ(exact.take_leftover(), "leftover");

  HttpRequestParser over(limit);
  EXPECT_EQ(feed(over, head_of(limit + 1)), State::error);
  EXPECT_EQ(over.error_status(), 431);

  // Without ever seeing the end, the parser stops buffering at the limit.
  HttpRequestParser endless(limit);
  std::string pad(120, 'p');
  EXPECT_EQ(feed(endless, start), State::need_more);
  EXPECT_EQ(feed(endless, pad), State::need_more);
  EXPECT_EQ(feed(endless, pad), State::error);
  EXPECT_EQ(endless.error_status(), 431);

  // Skipped blank lines count too.
  HttpRequestParser blank(limit);
  EXPECT_EQ(feed(blank, std::string(limit + 1, '\n')), State::error);
  EXPECT_EQ(blank.error_status(), 431);
}

TEST(HttpRequestParser, ErrorSticks) {
  HttpRequestParser parser;
  ASSERT_EQ(feed(parser, "GET / HTTP/2.0\r\n\r\n"), State::error);
  EXPECT_EQ(feed(parser, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), State::error);
  EXPECT_EQ(parser.error_status(), 505);
}

TEST(HttpResponse, SerializesSwitchingProtocolsWithoutLength) {
  HttpResponse response{101, "", {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, ""};
  EXPECT_EQ(serialize(response),
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(serialize({204, "", {}, ""}), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(HttpResponse, SerializesBodiesWithLengthAndType) {
  EXPECT_EQ(serialize({400, "", {}, "no upgrade\n"}),
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nno upgrade\n");
  EXPECT_EQ(serialize({200, "", {}, ""}), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(serialize({426, "Nope", {{"content-type", "application/json"}}, "{}"}),
            "HTTP/1.1 426 Nope\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}");
}

TEST(HttpResponse, NeutralizesLineBreaksInHeaders) {
  HttpResponse response{500, "Bad\r\nX-Evil: 1", {{"X-Error", "a\r\nSet-Cookie: x\n"}}, ""};
  response.headers[0].second.push_back('\0');
  EXPECT_EQ(serialize(response),
            "HTTP/1.1 500 Bad  X-Evil: 1\r\nX-Error: a  Set-Cookie: x  \r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpResponse, ReasonPhrases) {
  EXPECT_EQ(reason_phrase(101), "Switching Protocols");
  EXPECT_EQ(reason_phrase(403), "Forbidden");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(405), "Method Not Allowed");
  EXPECT_EQ(reason_phrase(426), "Upgrade Required");
  EXPECT_EQ(reason_phrase(429), "Too Many Requests");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(500), "Internal Server Error");
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reason_phrase(299), "");
  EXPECT_EQ(serialize({299, "", {}, ""}), "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace berth::streaming

// WebSocket (RFC 6455) handshake key, frames and message reassembly.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "cri/streaming/websocket_codec.h"

namespace berth::streaming::ws {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

// Feeds `wire` in pieces of `step` bytes, collecting every frame; fails the test on error.
std::vector<Frame> parse_all(FrameParser& parser, std::string_view wire, size_t step) {
  std::vector<Frame> frames;
  for (size_t i = 0; i < wire.size(); i += step) {
    std::string_view piece = wire.substr(i, step);
    parser.feed(piece.data(), piece.size());
    for (;;) {
      auto frame = parser.next();
      EXPECT_TRUE(frame.has_value()) << frame.error().message;
      if (!frame || !*frame) break;
      frames.push_back(std::move(**frame));
    }
  }
  return frames;
}

Frame parse_one(bool require_masked, std::string_view wire) {
  FrameParser parser(require_masked, 1 << 20);
  auto frames = parse_all(parser, wire, wire.size());
  EXPECT_EQ(frames.size(), 1u);
  return frames.empty() ? Frame{} : frames.front();
}

// The error a server-side parser reports for `wire`, with its close code.
std::pair<uint16_t, std::string> parse_error(std::string_view wire, bool require_masked = true,
                                             uint64_t max_payload = 1 << 20) {
  FrameParser parser(require_masked, max_payload);
  parser.feed(wire.data(), wire.size());
  auto frame = parser.next();
  EXPECT_FALSE(frame.has_value());
  if (frame) return {0, ""};
  EXPECT_EQ(frame.error().code, EPROTO);
  return {parser.close_code(), frame.error().message};
}

TEST(WebSocketHandshake, AcceptKeyMatchesRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  // The example pair on Wikipedia's WebSocket page.
  EXPECT_EQ(accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(WebSocketHandshake, ValidClientKeyIsBase64OfSixteenBytes) {
  EXPECT_TRUE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(valid_client_key("+/+/+/+/+/+/+/+/+/+/+w=="));
  EXPECT_FALSE(valid_client_key(""));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));     // 23 characters
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ==="));   // 25 characters
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZXM="));    // 17 bytes
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25j"));        // 15 bytes, unpadded
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQAA"));    // no padding
  EXPECT_FALSE(valid_client_key("-_hlIHNhbXBsZSBub25jZQ=="));    // base64url alphabet
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25j=Q=="));    // padding inside
  EXPECT_FALSE(valid_client_key(" GhlIHNhbXBsZSBub25jZQ=="));
}

// RFC 6455 section 5.7 examples.
const std::string kUnmaskedHello = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
const std::string kMaskedHello = bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
const std::string kFragmentHel = bytes({0x01, 0x03, 0x48, 0x65, 0x6c});
const std::string kFragmentLo = bytes({0x80, 0x02, 0x6c, 0x6f});
const std::string kUnmaskedPing = bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
const std::string kMaskedPong = bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});

TEST(WebSocketFrames, RfcUnmaskedTextFrame) {
  Frame frame = parse_one(false, kUnmaskedHello);
  EXPECT_TRUE(frame.fin);
  EXPECT_EQ(frame.opcode, Opcode::text);
  EXPECT_EQ(frame.payload, "Hello");
  EXPECT_EQ(encode_frame(Opcode::text, "Hello"), kUnmaskedHello);
}

TEST(WebSocketFrames, RfcMaskedTextFrame) {
  Frame frame = parse_one(true, kMaskedHello);
  EXPECT_TRUE(frame.fin);
  EXPECT_EQ(frame.opcode, Opcode::text);
  EXPECT_EQ(frame.payload, "Hello");
  EXPECT_EQ(encode_frame(Opcode::text, "Hello", true, 0x37fa213d), kMaskedHello);
  EXPECT_EQ(frame_header(Opcode::text, true, 5, 0x37fa213d), kMaskedHello.substr(0, 6));
}

TEST(WebSocketFrames, RfcFragmentedMessage) {
  FrameParser parser(false, 1 << 20);
  auto frames = parse_all(parser, kFragmentHel + kFragmentLo, 64);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_FALSE(frames[0].fin);
  EXPECT_EQ(frames[0].opcode, Opcode::text);
  EXPECT_EQ(frames[0].payload, "Hel");
  EXPECT_TRUE(frames[1].fin);
  EXPECT_EQ(frames[1].opcode, Opcode::continuation);
  EXPECT_EQ(frames[1].payload, "lo");
  EXPECT_EQ(encode_frame(Opcode::text, "Hel", false), kFragmentHel);
  EXPECT_EQ(encode_frame(Opcode::continuation, "lo"), kFragmentLo);

  MessageAssembler assembler(1 << 20);
  auto first = assembler.add(frames[0]);
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->has_value());
  auto whole = assembler.add(frames[1]);
  ASSERT_TRUE(whole.has_value() && whole->has_value());
  EXPECT_TRUE((*whole)->fin);
  EXPECT_EQ((*whole)->opcode, Opcode::text);
  EXPECT_EQ((*whole)->payload, "Hello");
}

TEST(WebSocketFrames, RfcPingAndMaskedPong) {
  Frame ping = parse_one(false, kUnmaskedPing);
  EXPECT_EQ(ping.opcode, Opcode::ping);
  EXPECT_EQ(ping.payload, "Hello");
  Frame pong = parse_one(true, kMaskedPong);
  EXPECT_EQ(pong.opcode, Opcode::pong);
  EXPECT_EQ(pong.payload, "Hello");
  EXPECT_EQ(encode_frame(Opcode::ping, "Hello"), kUnmaskedPing);
  EXPECT_EQ(encode_frame(Opcode::pong, "Hello", true, 0x37fa213d), kMaskedPong);
}

TEST(WebSocketFrames, RfcLengthEncodings) {
  // 256 bytes: 126 and a 16-bit length.
  EXPECT_EQ(frame_header(Opcode::binary, true, 256), bytes({0x82, 0x7e, 0x01, 0x00}));
  // 64 KiB: 127 and a 64-bit length.
  EXPECT_EQ(frame_header(Opcode::binary, true, 65536), bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  // The boundaries of each encoding.
  EXPECT_EQ(frame_header(Opcode::binary, true, 125), bytes({0x82, 0x7d}));
  EXPECT_EQ(frame_header(Opcode::binary, true, 126), bytes({0x82, 0x7e, 0x00, 0x7e}));
  EXPECT_EQ(frame_header(Opcode::binary, true, 65535), bytes({0x82, 0x7e, 0xff, 0xff}));
  EXPECT_EQ(frame_header(Opcode::binary, false, 0x0102030405060708ULL, 0xa1b2c3d4),
            bytes({0x02, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 0xa1, 0xb2, 0xc3, 0xd4}));

  for (size_t size : {size_t{256}, size_t{65536}}) {
    std::string payload(size, '\0');
    for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 7);
    Frame frame = parse_one(false, frame_header(Opcode::binary, true, size) + payload);
    EXPECT_EQ(frame.opcode, Opcode::binary);
    EXPECT_EQ(frame.payload, payload) << size;
    Frame masked = parse_one(true, encode_frame(Opcode::binary, payload, true, 0x01020304));
    EXPECT_EQ(masked.payload, payload) << size;
  }
}

TEST(WebSocketFrames, ByteByByteFeeding) {
  std::string big(70000, 'z');
  std::string wire = kMaskedHello + encode_frame(Opcode::binary, "", true, 0xdeadbeef) +
                     encode_frame(Opcode::text, "Hel", false, 1) + kMaskedPong +
                     encode_frame(Opcode::continuation, "lo", true, 2) +
                     encode_frame(Opcode::binary, big, true, 0x55aa55aa) +
                     encode_frame(Opcode::close, close_payload(1000, "bye"), true, 3);
  FrameParser parser(true, 1 << 20);
  auto frames = parse_all(parser, wire, 1);
  ASSERT_EQ(frames.size(), 7u);
  EXPECT_EQ(frames[0].payload, "Hello");
  EXPECT_EQ(frames[1].opcode, Opcode::binary);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(frames[2].payload, "Hel");
  EXPECT_FALSE(frames[2].fin);
  EXPECT_EQ(frames[3].opcode, Opcode::pong);
  EXPECT_EQ(frames[4].opcode, Opcode::continuation);
  EXPECT_EQ(frames[5].payload, big);
  EXPECT_EQ(frames[6].opcode, Opcode::close);
  EXPECT_EQ(frames[6].payload, bytes({0x03, 0xe8}) + "bye");
  auto more = parser.next();
  ASSERT_TRUE(more.has_value());
  EXPECT_FALSE(more->has_value());
}

// Bytes github.com/gorilla/websocket (as a client) put on the wire, captured on the
// server side of a real connection to berth's codec: text "Hello gorilla" (mask
// 42 04 cb 9a), ping "client-ping" and close 4001 "bye".
TEST(WebSocketFrames, DecodesGorillaClientFrames) {
  std::string wire = bytes({0x81, 0x8d, 0x42, 0x04, 0xcb, 0x9a, 0x0a, 0x61, 0xa7, 0xf6, 0x2d, 0x24, 0xac,
                            0xf5, 0x30, 0x6d, 0xa7, 0xf6, 0x23}) +
                     bytes({0x89, 0x8b, 0xf9, 0x99, 0x7d, 0x4f, 0x9a, 0xf5, 0x14, 0x2a, 0x97, 0xed, 0x50, 0x3f,
                            0x90, 0xf7, 0x1a}) +
                     bytes({0x88, 0x85, 0xeb, 0x55, 0x4f, 0xd5, 0xe4, 0xf4, 0x2d, 0xac, 0x8e});
  FrameParser parser(true, 1 << 20);
  auto frames = parse_all(parser, wire, 5);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].opcode, Opcode::text);
  EXPECT_TRUE(frames[0].fin);
  EXPECT_EQ(frames[0].payload, "Hello gorilla");
  EXPECT_EQ(frames[1].opcode, Opcode::ping);
  EXPECT_EQ(frames[1].payload, "client-ping");
  EXPECT_EQ(frames[2].opcode, Opcode::close);
  CloseBody close = parse_close_payload(frames[2].payload);
  EXPECT_EQ(close.code, 4001);
  EXPECT_EQ(close.reason, "bye");
  // Our encoder, given gorilla's key, reproduces its bytes.
  EXPECT_EQ(encode_frame(Opcode::text, "Hello gorilla", true, 0x4204cb9a), wire.substr(0, 19));
}

TEST(WebSocketFrames, ProtocolErrors) {
  // RSV1, RSV2, RSV3 without a negotiated extension.
  for (int rsv : {0x40, 0x20, 0x10}) {
    EXPECT_EQ(parse_error(bytes({0x81 | rsv, 0x80, 0, 0, 0, 0})).first, 1002) << rsv;
  }
  // Reserved opcodes.
  for (int op : {3, 7, 0xb, 0xf}) {
    auto [code, message] = parse_error(bytes({0x80 | op, 0x80, 0, 0, 0, 0}));
    EXPECT_EQ(code, 1002) << op;
    EXPECT_NE(message.find("opcode"), std::string::npos);
  }
  // A server needs masked frames; a client must not get them.
  EXPECT_EQ(parse_error(kUnmaskedHello, true).first, 1002);
  EXPECT_EQ(parse_error(kMaskedHello, false).first, 1002);
  // Control frames: at most 125 bytes, never fragmented.
  EXPECT_EQ(parse_error(bytes({0x89, 0xfe, 0x00, 0x7e})).first, 1002);
  EXPECT_EQ(parse_error(bytes({0x88, 0xff})).first, 1002);
  EXPECT_EQ(parse_error(bytes({0x09, 0x80, 0, 0, 0, 0})).first, 1002);
  EXPECT_EQ(parse_error(bytes({0x0a, 0x80, 0, 0, 0, 0})).first, 1002);
  // 64-bit length with the most significant bit set.
  EXPECT_EQ(parse_error(bytes({0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}), true, UINT64_MAX).first,
            1002);
  // Over the limit: 1009, known from the header alone.
  auto [code, message] = parse_error(frame_header(Opcode::binary, true, 1025, 0), true, 1024);
  EXPECT_EQ(code, 1009);
  EXPECT_NE(message.find("1025"), std::string::npos);
  EXPECT_EQ(parse_error(frame_header(Opcode::binary, true, 1ULL << 40, 0), true, 1024).first, 1009);
}

TEST(WebSocketFrames, LimitIsInclusiveAndErrorsStick) {
  FrameParser parser(true, 4);
  std::string ok = encode_frame(Opcode::binary, "1234", true, 9);
  std::string wire = ok + encode_frame(Opcode::binary, "12345", true, 9) + ok;
  auto first = parse_all(parser, ok, ok.size());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(parser.close_code(), 0);
  std::string rest = wire.substr(ok.size());
  parser.feed(rest.data(), rest.size());
  EXPECT_FALSE(parser.next().has_value());
  EXPECT_EQ(parser.close_code(), 1009);
  parser.feed(ok.data(), ok.size());
  EXPECT_FALSE(parser.next().has_value());
  EXPECT_EQ(parser.close_code(), 1009);
}

TEST(WebSocketFrames, LargeFrameInSmallPiecesIsLinear) {
  // 16 MiB in 1 KiB pieces (smaller than a real read, to widen the gap), asking for a
  // frame after each: re-copying or re-scanning the buffered bytes per piece would be
  // ~128 GiB of work, far past the bound, while the linear path takes well under a second.
  constexpr size_t kSize = 16 << 20;
  std::string payload(kSize, '\0');
  for (size_t i = 0; i < kSize; ++i) payload[i] = static_cast<char>(i ^ (i >> 13));
  std::string wire = encode_frame(Opcode::binary, payload, true, 0x12345678) + kMaskedHello;
  auto start = std::chrono::steady_clock::now();
  FrameParser parser(true, kSize);
  auto frames = parse_all(parser, wire, 1024);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(frames[0].payload == payload);
  EXPECT_EQ(frames[1].payload, "Hello");
  EXPECT_LT(elapsed, std::chrono::seconds(10));  // the quadratic version takes ~20 s
}

TEST(WebSocketFrames, ManySmallFramesInOneFeedAreLinear) {
  // 16 MiB of 160-byte frames arriving at once: consuming them by erasing from the front
  // of the buffer would move ~800 GiB.
  std::string payload(150, 'f');
  std::string one = encode_frame(Opcode::binary, payload, true, 0x0badf00d);
  constexpr size_t kCount = (16 << 20) / 160;
  std::string wire;
  for (size_t i = 0; i < kCount; ++i) wire += one;
  auto start = std::chrono::steady_clock::now();
  FrameParser parser(true, 1 << 20);
  auto frames = parse_all(parser, wire, wire.size());
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(frames.size(), kCount);
  EXPECT_EQ(frames.back().payload, payload);
  EXPECT_LT(elapsed, std::chrono::seconds(10));  // the quadratic version takes ~20 s
}

TEST(WebSocketMessages, AssemblesAcrossInterleavedPing) {
  MessageAssembler assembler(1 << 20);
  std::vector<Frame> frames = {{false, Opcode::binary, "ab"},
                               {true, Opcode::ping, "p"},
                               {false, Opcode::continuation, ""},
                               {true, Opcode::pong, "q"},
                               {true, Opcode::continuation, "cd"},
                               {true, Opcode::text, "whole"}};
  std::vector<Frame> out;
  for (auto& frame : frames) {
    auto result = assembler.add(frame);
    ASSERT_TRUE(result.has_value()) << result.error().message;
    if (*result) out.push_back(std::move(**result));
  }
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].opcode, Opcode::ping);
  EXPECT_EQ(out[0].payload, "p");
  EXPECT_EQ(out[1].opcode, Opcode::pong);
  EXPECT_EQ(out[2].opcode, Opcode::binary);
  EXPECT_TRUE(out[2].fin);
  EXPECT_EQ(out[2].payload, "abcd");
  EXPECT_EQ(out[3].opcode, Opcode::text);
  EXPECT_EQ(out[3].payload, "whole");
}

// Close code MessageAssembler fails with after `frames`, 0 if it does not fail.
uint16_t assembler_error(std::vector<Frame> frames, uint64_t max = 1 << 20) {
  MessageAssembler assembler(max);
  for (auto& frame : frames) {
    auto result = assembler.add(std::move(frame));
    if (!result) {
      EXPECT_EQ(result.error().code, EPROTO);
      // Errors stick.
      EXPECT_FALSE(assembler.add(Frame{true, Opcode::binary, "x"}).has_value());
      return assembler.close_code();
    }
  }
  return 0;
}

TEST(WebSocketMessages, SequenceErrors) {
  EXPECT_EQ(assembler_error({{true, Opcode::continuation, "x"}}), 1002);
  EXPECT_EQ(assembler_error({{false, Opcode::text, "a"}, {true, Opcode::text, "b"}}), 1002);
  EXPECT_EQ(assembler_error({{false, Opcode::binary, "a"}, {false, Opcode::binary, "b"}}), 1002);
  EXPECT_EQ(assembler_error({{true, static_cast<Opcode>(5), ""}}), 1002);
  // After a message completes, a new one may start.
  EXPECT_EQ(assembler_error({{false, Opcode::text, "a"}, {true, Opcode::continuation, "b"}, {true, Opcode::text, "c"}}),
            0);
}

TEST(WebSocketMessages, SizeLimit) {
  EXPECT_EQ(assembler_error({{true, Opcode::binary, "12345"}}, 5), 0);
  EXPECT_EQ(assembler_error({{true, Opcode::binary, "123456"}}, 5), 1009);
  EXPECT_EQ(assembler_error({{false, Opcode::binary, "123"}, {true, Opcode::continuation, "45"}}, 5), 0);
  EXPECT_EQ(assembler_error({{false, Opcode::binary, "123"}, {false, Opcode::continuation, "456"}}, 5), 1009);
  EXPECT_EQ(assembler_error({{false, Opcode::text, "123456"}}, 5), 1009);
}

TEST(WebSocketMessages, TextMustBeUtf8) {
  EXPECT_EQ(assembler_error({{true, Opcode::text, "a\xc0\xaf"}}), 1007);
  EXPECT_EQ(assembler_error({{true, Opcode::binary, "a\xc0\xaf"}}), 0);
  // A character split across fragments is fine; the message as a whole is checked.
  EXPECT_EQ(assembler_error({{false, Opcode::text, "\xe2\x82"}, {true, Opcode::continuation, "\xac"}}), 0);
  EXPECT_EQ(assembler_error({{false, Opcode::text, "ok"}, {true, Opcode::continuation, "\xe2\x82"}}), 1007);
}

TEST(WebSocketMessages, CloseBodiesAreChecked) {
  EXPECT_EQ(assembler_error({{true, Opcode::close, ""}}), 0);
  EXPECT_EQ(assembler_error({{true, Opcode::close, close_payload(1000, "")}}), 0);
  EXPECT_EQ(assembler_error({{true, Opcode::close, close_payload(4999, "\xc3\xa9t\xc3\xa9")}}), 0);
  EXPECT_EQ(assembler_error({{true, Opcode::close, bytes({0x03})}}), 1002);
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    EXPECT_EQ(assembler_error({{true, Opcode::close, close_payload(code, "")}}), 1002) << code;
  }
  EXPECT_EQ(assembler_error({{true, Opcode::close, close_payload(1000, "\xff")}}), 1007);
}

TEST(WebSocketClose, PayloadTruncatesAtCharacterBoundary) {
  EXPECT_EQ(close_payload(1002, "bad"), bytes({0x03, 0xea}) + "bad");
  std::string payload = close_payload(1000, std::string(200, 'x'));
  EXPECT_EQ(payload.size(), 125u);
  // 122 ASCII bytes and a 2-byte character would straddle the limit: drop the character.
  std::string reason = std::string(122, 'x') + "\xc3\xa9" + "tail";
  payload = close_payload(1000, reason);
  EXPECT_EQ(payload.size(), 124u);
  EXPECT_EQ(payload.substr(2), std::string(122, 'x'));
  EXPECT_TRUE(valid_utf8(payload.substr(2)));
  CloseBody body = parse_close_payload(payload);
  EXPECT_EQ(body.code, 1000);
  EXPECT_EQ(parse_close_payload("").code, std::nullopt);
}

TEST(WebSocketUtf8, Validation) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("\xc2\x80\xdf\xbf"));            // U+0080, U+07FF
  EXPECT_TRUE(valid_utf8("\xe0\xa0\x80\xef\xbf\xbf"));    // U+0800, U+FFFF
  EXPECT_TRUE(valid_utf8("\xed\x9f\xbf\xee\x80\x80"));    // U+D7FF, U+E000
  EXPECT_TRUE(valid_utf8("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"));  // U+10000, U+10FFFF
  EXPECT_FALSE(valid_utf8("\x80"));                        // lone continuation
  EXPECT_FALSE(valid_utf8("\xc0\x80"));                    // overlong NUL
  EXPECT_FALSE(valid_utf8("\xc1\xbf"));
  EXPECT_FALSE(valid_utf8("\xe0\x9f\xbf"));                // overlong 3-byte
  EXPECT_FALSE(valid_utf8("\xf0\x8f\xbf\xbf"));            // overlong 4-byte
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));                // surrogate U+D800
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));            // U+110000
  EXPECT_FALSE(valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xe2\x82"));                    // truncated
  EXPECT_FALSE(valid_utf8("\xe2\x28\xa1"));                // bad continuation
  EXPECT_FALSE(valid_utf8("\xf0\x90\x80\x28"));
}

}  // namespace
}  // namespace berth::streaming::ws

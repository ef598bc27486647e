// SPDY/3 framing for Kubernetes streaming, checked against bytes produced by
// github.com/moby/spdystream's Go framer (the library Kubernetes clients use).
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <string_view>
#include <variant>

#include "cri/streaming/spdy_codec.h"

namespace berth::streaming::spdy {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A control frame built by hand, independent of FrameWriter.
std::string control(uint16_t type, uint8_t flags, std::string_view payload, uint16_t version = 3) {
  std::string out = be32(static_cast<uint32_t>(0x8000 | version) << 16 | type);
  out += be32(static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(payload.size()));
  out += payload;
  return out;
}

// An uncompressed header block whose count need not match its headers.
std::string plain_block(uint32_t count, const HeaderList& headers) {
  std::string out = be32(count);
  for (const auto& [name, value] : headers) out += be32(name.size()) + name + be32(value.size()) + value;
  return out;
}

// A zlib stream without the SPDY dictionary: valid zlib, so it lets a test
// put any bytes, well-formed or not, inside a header block.
class RawDeflater {
 public:
  RawDeflater() { deflateInit(&z_, Z_DEFAULT_COMPRESSION); }
  ~RawDeflater() { deflateEnd(&z_); }
  std::string block(std::string plain) {
    std::string out(plain.size() + 1024, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(plain.data());
    z_.avail_in = plain.size();
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = out.size();
    EXPECT_EQ(deflate(&z_, Z_SYNC_FLUSH), Z_OK);
    out.resize(out.size() - z_.avail_out);
    return out;
  }

 private:
  z_stream z_{};
};

Frame parse_one(FrameParser& parser, std::string_view bytes) {
  parser.feed(bytes.data(), bytes.size());
  auto frame = parser.next();
  EXPECT_TRUE(frame.has_value()) << frame.error().message;
  EXPECT_TRUE(frame.has_value() && frame->has_value());
  return frame && *frame ? std::move(**frame) : Frame{UnknownControl{0xffff}};
}

// Feeds `bytes` and expects an EPROTO naming `what`; then checks it sticks.
void expect_failure(FrameParser& parser, std::string_view bytes, std::string_view what) {
  parser.feed(bytes.data(), bytes.size());
  auto frame = parser.next();
  ASSERT_FALSE(frame.has_value()) << "accepted: " << testing::PrintToString(bytes);
  EXPECT_EQ(frame.error().code, EPROTO);
  EXPECT_NE(frame.error().message.find(what), std::string::npos) << frame.error().message;

  std::string ping = FrameWriter::ping(1);
  parser.feed(ping.data(), ping.size());
  auto again = parser.next();
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().message, frame.error().message);
}

TEST(SpdyCodec, FindHeaderReturnsTheFirstValue) {
  HeaderList headers{{"streamtype", "stdout"}, {"x-multi", std::string("a\0b", 3)}, {"empty", ""}};
  EXPECT_EQ(find_header(headers, "streamtype"), "stdout");
  EXPECT_EQ(find_header(headers, "x-multi"), "a");
  EXPECT_EQ(find_header(headers, "empty"), "");
  EXPECT_EQ(find_header(headers, "StreamType"), std::nullopt);
  EXPECT_EQ(find_header(headers, "port"), std::nullopt);
}

// Every frame kubectl's spdystream writes, one Framer (so one compression
// context), printed by a Go program against the installed library:
//   SYN_STREAM 1 {streamType: error}; SYN_STREAM 3 -> 1, priority 7,
//   unidirectional, {streamType: stdout}; DATA 3 FIN "hello from go\n";
//   PING 0x01020305; GOAWAY 3 INTERNAL_ERROR; HEADERS 3 FIN {X-Multi: a, bc};
//   RST_STREAM 5 CANCEL; WINDOW_UPDATE 7 +65536;
//   SETTINGS {persist INITIAL_WINDOW_SIZE=1MiB, MAX_CONCURRENT_STREAMS=100}.
constexpr std::string_view kGoSyn1 =
    "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff";
constexpr std::string_view kGoSyn3 = "80030001020000190000000300000001e000c22ac5565c92925f5a02000000ffff";
constexpr std::string_view kGoData = "000000030100000e68656c6c6f2066726f6d20676f0a";
constexpr std::string_view kGoPing = "800300060000000401020305";
constexpr std::string_view kGoGoAway = "80030007000000080000000300000002";
constexpr std::string_view kGoHeaders = "800300080100001a0000000382cab157e8e696e6946482324922435232000000ffff";
constexpr std::string_view kGoRst = "80030003000000080000000500000005";
constexpr std::string_view kGoWindow = "80030009000000080000000700010000";
constexpr std::string_view kGoSettings = "80030004000000140000000201000007001000000000000400000064";

std::string go_stream() {
  std::string out;
  for (std::string_view hex : {kGoSyn1, kGoSyn3, kGoData, kGoPing, kGoGoAway, kGoHeaders, kGoRst, kGoWindow,
                               kGoSettings}) {
    out += from_hex(hex);
  }
  return out;
}

void expect_go_frames(const std::vector<Frame>& frames) {
  ASSERT_EQ(frames.size(), 9u);

  const auto& syn1 = std::get<SynStream>(frames[0]);
  EXPECT_EQ(syn1.stream_id, 1u);
  EXPECT_EQ(syn1.associated_id, 0u);
  EXPECT_EQ(syn1.priority, 0);
  EXPECT_EQ(syn1.flags, 0);
  EXPECT_EQ(syn1.headers, (HeaderList{{"streamtype", "error"}}));  // Go lower-cases names

  const auto& syn3 = std::get<SynStream>(frames[1]);
  EXPECT_EQ(syn3.stream_id, 3u);
  EXPECT_EQ(syn3.associated_id, 1u);
  EXPECT_EQ(syn3.priority, 7);
  EXPECT_EQ(syn3.flags, kFlagUnidirectional);
  EXPECT_EQ(syn3.headers, (HeaderList{{"streamtype", "stdout"}}));

  const auto& data = std::get<DataFrame>(frames[2]);
  EXPECT_EQ(data.stream_id, 3u);
  EXPECT_EQ(data.flags, kFlagFin);
  EXPECT_EQ(data.data, "hello from go\n");

  EXPECT_EQ(std::get<Ping>(frames[3]).id, 0x01020305u);

  const auto& goaway = std::get<GoAway>(frames[4]);
  EXPECT_EQ(goaway.last_good_stream_id, 3u);
  EXPECT_EQ(goaway.status, kGoAwayInternalError);

  const auto& headers = std::get<Headers>(frames[5]);
  EXPECT_EQ(headers.stream_id, 3u);
  EXPECT_EQ(headers.flags, kFlagFin);
  EXPECT_EQ(headers.headers, (HeaderList{{"x-multi", std::string("a\0bc", 4)}}));

  const auto& rst = std::get<RstStream>(frames[6]);
  EXPECT_EQ(rst.stream_id, 5u);
  EXPECT_EQ(rst.status, kCancel);

  const auto& window = std::get<WindowUpdate>(frames[7]);
  EXPECT_EQ(window.stream_id, 7u);
  EXPECT_EQ(window.delta, 65536u);

  const auto& settings = std::get<Settings>(frames[8]);
  EXPECT_EQ(settings.flags, 0);
  ASSERT_EQ(settings.entries.size(), 2u);
  EXPECT_EQ(settings.entries[0].flags, 1);
  EXPECT_EQ(settings.entries[0].id, 7u);
  EXPECT_EQ(settings.entries[0].value, 1u << 20);
  EXPECT_EQ(settings.entries[1].flags, 0);
  EXPECT_EQ(settings.entries[1].id, 4u);
  EXPECT_EQ(settings.entries[1].value, 100u);
}

TEST(SpdyCodec, ParsesWhatGoSpdystreamWrites) {
  std::string wire = go_stream();
  FrameParser parser;
  parser.feed(wire.data(), wire.size());
  std::vector<Frame> frames;
  while (true) {
    auto frame = parser.next();
    ASSERT_TRUE(frame.has_value()) << frame.error().message;
    if (!*frame) break;
    frames.push_back(std::move(**frame));
  }
  expect_go_frames(frames);
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(SpdyCodec, ParsesWhatGoSpdystreamWritesOneByteAtATime) {
  std::string wire = go_stream();
  FrameParser parser;
  std::vector<Frame> frames;
  for (char c : wire) {
    parser.feed(&c, 1);
    auto frame = parser.next();
    ASSERT_TRUE(frame.has_value()) << frame.error().message;
    if (*frame) frames.push_back(std::move(**frame));
  }
  expect_go_frames(frames);
}

// Frames without a header block are fully determined, so ours must equal Go's.
TEST(SpdyCodec, WritesTheSameBytesAsGoForFixedFrames) {
  EXPECT_EQ(FrameWriter::ping(0x01020305), from_hex(kGoPing));
  EXPECT_EQ(FrameWriter::goaway(3, kGoAwayInternalError), from_hex(kGoGoAway));
  EXPECT_EQ(FrameWriter::rst_stream(5, kCancel), from_hex(kGoRst));
  EXPECT_EQ(FrameWriter::window_update(7, 65536), from_hex(kGoWindow));
  EXPECT_EQ(FrameWriter::settings({.entries = {{1, 7, 1u << 20}, {0, 4, 100}}}), from_hex(kGoSettings));
  EXPECT_EQ(FrameWriter::data(3, kFlagFin, "hello from go\n"), from_hex(kGoData));
  std::array<char, 8> header = FrameWriter::data_header(3, kFlagFin, 14);
  EXPECT_EQ(std::string(header.data(), 8), from_hex(kGoData).substr(0, 8));
}

TEST(SpdyCodec, HeaderFramesRoundTripOnOneContext) {
  FrameWriter writer;
  FrameParser parser;
  HeaderList request{{"streamtype", "stdin"}, {"port", "8080"}, {"requestid", "0"}};
  HeaderList reply{{"x-multi", std::string("one\0two", 7)}, {"empty", ""}};

  auto syn = writer.syn_stream({.stream_id = 0x80000005,  // reserved bit: masked
                                .associated_id = 3,
                                .priority = 5,
                                .flags = kFlagFin | kFlagUnidirectional,
                                .headers = request});
  ASSERT_TRUE(syn.has_value()) << syn.error().message;
  auto syn_reply = writer.syn_reply({.stream_id = 5, .flags = kFlagFin, .headers = reply});
  ASSERT_TRUE(syn_reply.has_value());
  auto headers = writer.headers({.stream_id = 7, .headers = {}});
  ASSERT_TRUE(headers.has_value());
  // The same headers again: the shared context makes the repeat cheaper.
  auto syn_again = writer.syn_stream({.stream_id = 9, .headers = request});
  ASSERT_TRUE(syn_again.has_value());
  EXPECT_LT(syn_again->size(), syn->size());

  auto s = std::get<SynStream>(parse_one(parser, *syn));
  EXPECT_EQ(s.stream_id, 5u);
  EXPECT_EQ(s.associated_id, 3u);
  EXPECT_EQ(s.priority, 5);
  EXPECT_EQ(s.flags, kFlagFin | kFlagUnidirectional);
  EXPECT_EQ(s.headers, request);

  auto r = std::get<SynReply>(parse_one(parser, *syn_reply));
  EXPECT_EQ(r.stream_id, 5u);
  EXPECT_EQ(r.flags, kFlagFin);
  EXPECT_EQ(r.headers, reply);
  EXPECT_EQ(find_header(r.headers, "x-multi"), "one");

  auto h = std::get<Headers>(parse_one(parser, *headers));
  EXPECT_EQ(h.stream_id, 7u);
  EXPECT_EQ(h.flags, 0);
  EXPECT_TRUE(h.headers.empty());

  auto s2 = std::get<SynStream>(parse_one(parser, *syn_again));
  EXPECT_EQ(s2.stream_id, 9u);
  EXPECT_EQ(s2.headers, request);
}

TEST(SpdyCodec, FixedFramesRoundTrip) {
  FrameParser parser;
  auto rst = std::get<RstStream>(parse_one(parser, FrameWriter::rst_stream(0xffffffff, kFlowControlError)));
  EXPECT_EQ(rst.stream_id, 0x7fffffffu);
  EXPECT_EQ(rst.status, kFlowControlError);

  auto settings = std::get<Settings>(
      parse_one(parser, FrameWriter::settings({.flags = 1, .entries = {{2, 0xabcdef, 0xffffffff}}})));
  EXPECT_EQ(settings.flags, 1);
  ASSERT_EQ(settings.entries.size(), 1u);
  EXPECT_EQ(settings.entries[0].flags, 2);
  EXPECT_EQ(settings.entries[0].id, 0xabcdefu);
  EXPECT_EQ(settings.entries[0].value, 0xffffffffu);
  EXPECT_TRUE(std::get<Settings>(parse_one(parser, FrameWriter::settings({}))).entries.empty());

  EXPECT_EQ(std::get<Ping>(parse_one(parser, FrameWriter::ping(0xfffffffe))).id, 0xfffffffeu);

  auto goaway = std::get<GoAway>(parse_one(parser, FrameWriter::goaway(41, kGoAwayProtocolError)));
  EXPECT_EQ(goaway.last_good_stream_id, 41u);
  EXPECT_EQ(goaway.status, kGoAwayProtocolError);

  auto window = std::get<WindowUpdate>(parse_one(parser, FrameWriter::window_update(3, 0x7fffffff)));
  EXPECT_EQ(window.stream_id, 3u);
  EXPECT_EQ(window.delta, 0x7fffffffu);

  auto empty = std::get<DataFrame>(parse_one(parser, FrameWriter::data(1, kFlagFin, "")));
  EXPECT_EQ(empty.stream_id, 1u);
  EXPECT_EQ(empty.flags, kFlagFin);
  EXPECT_EQ(empty.data, "");
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(SpdyCodec, LargeDataFrameFedInSmallPieces) {
  std::string payload(1 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 1000);
  std::string wire = FrameWriter::data(0x7fffffff, 0, payload) + FrameWriter::ping(2);

  FrameParser parser;
  std::vector<Frame> frames;
  for (size_t at = 0; at < wire.size(); at += 1000) {
    size_t n = std::min<size_t>(1000, wire.size() - at);
    parser.feed(wire.data() + at, n);
    while (true) {
      auto frame = parser.next();
      ASSERT_TRUE(frame.has_value()) << frame.error().message;
      if (!*frame) break;
      frames.push_back(std::move(**frame));
    }
    if (frames.empty()) {
      EXPECT_EQ(parser.buffered(), at + n);
    }
  }
  ASSERT_EQ(frames.size(), 2u);
  const auto& data = std::get<DataFrame>(frames[0]);
  EXPECT_EQ(data.stream_id, 0x7fffffffu);
  EXPECT_EQ(data.flags, 0);
  EXPECT_TRUE(data.data == payload);
  EXPECT_EQ(std::get<Ping>(frames[1]).id, 2u);
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(SpdyCodec, DataLongerThanOneFrameIsSplit) {
  std::string payload(kMaxDataLength + 10, 'x');
  payload.back() = 'y';
  std::string wire = FrameWriter::data(3, kFlagFin, payload);
  ASSERT_EQ(wire.size(), payload.size() + 16);

  FrameParser parser(kMaxDataLength);
  parser.feed(wire.data(), wire.size());
  auto first = std::get<DataFrame>(parser.next().value().value());
  auto second = std::get<DataFrame>(parser.next().value().value());
  EXPECT_EQ(first.flags, 0);  // FIN only on the last piece
  EXPECT_EQ(first.data.size(), kMaxDataLength);
  EXPECT_EQ(second.flags, kFlagFin);
  EXPECT_EQ(second.data, "xxxxxxxxxy");
}

TEST(SpdyCodec, CompressionContextSpansBlocks) {
  HeaderCompressor compressor;
  HeaderList first{{"streamtype", "error"}, {"requestid", "1"}};
  HeaderList second{{"streamtype", "stdout"}, {"requestid", "1"}};
  auto a = compressor.compress(first);
  auto b = compressor.compress(second);
  ASSERT_TRUE(a && b);

  HeaderDecompressor peer;
  EXPECT_EQ(peer.decompress(*a), first);
  EXPECT_EQ(peer.decompress(*b), second);

  // Without the first block's context the second one means nothing.
  HeaderDecompressor fresh;
  auto alone = fresh.decompress(*b);
  EXPECT_TRUE(!alone || *alone != second);

  // Moving the compressor keeps its context.
  HeaderCompressor moved = std::move(compressor);
  auto c = moved.compress(first);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(peer.decompress(*c), first);
}

TEST(SpdyCodec, RefusedHeadersLeaveTheContextUsable) {
  FrameWriter writer;
  FrameParser parser;
  auto upper = writer.syn_reply({.stream_id = 1, .headers = {{"Content-Type", "x"}}});
  ASSERT_FALSE(upper.has_value());
  EXPECT_EQ(upper.error().code, EINVAL);
  EXPECT_FALSE(writer.syn_reply({.stream_id = 1, .headers = {{"", "x"}}}).has_value());
  auto twice = writer.syn_reply({.stream_id = 1, .headers = {{"a", "1"}, {"b", "2"}, {"a", "3"}}});
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().message.find("\"a\" appears twice"), std::string::npos);
  EXPECT_FALSE(writer.syn_reply({.stream_id = 1, .headers = {{"big", std::string(kMaxHeaderBlockLength, 'v')}}}));
  auto zero = writer.syn_stream({.stream_id = 0x80000000, .headers = {}});
  ASSERT_FALSE(zero.has_value());
  EXPECT_EQ(zero.error().code, EINVAL);
  EXPECT_FALSE(writer.syn_reply({.stream_id = 0}).has_value());
  EXPECT_FALSE(writer.headers({.stream_id = 0}).has_value());

  auto ok = writer.syn_reply({.stream_id = 1, .headers = {{"a", "1"}}});
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(std::get<SynReply>(parse_one(parser, *ok)).headers, (HeaderList{{"a", "1"}}));
}

TEST(SpdyCodec, UnknownControlFramesAreReportedAndSkipped) {
  FrameParser parser;
  std::string wire = control(10, 0, "credential bytes") + FrameWriter::ping(3);
  parser.feed(wire.data(), wire.size());
  EXPECT_EQ(std::get<UnknownControl>(parser.next().value().value()).type, 10);
  EXPECT_EQ(std::get<Ping>(parser.next().value().value()).id, 3u);
}

TEST(SpdyCodec, RejectsWrongVersionBeforeThePayloadArrives) {
  FrameParser parser;
  std::string frame = control(6, 0, be32(1), 2);
  expect_failure(parser, std::string_view(frame).substr(0, 8), "version 2");
}

TEST(SpdyCodec, RejectsOversizeFramesFromTheirHeader) {
  FrameParser parser(1024);
  std::string header = be32(1) + be32(1025);
  expect_failure(parser, header, "1025 bytes is over the limit of 1024");
  FrameParser control_parser(1024);
  expect_failure(control_parser, control(6, 0, std::string(1025, 'p')).substr(0, 8), "over the limit");
}

TEST(SpdyCodec, RejectsControlPayloadsOfTheWrongSize) {
  struct Case {
    uint16_t type;
    std::string payload;
    std::string_view what;
  };
  const Case cases[] = {
      {1, std::string(9, '\0'), "SYN_STREAM payload of 9 bytes"},
      {2, std::string(3, '\0'), "SYN_REPLY payload of 3 bytes"},
      {8, "", "HEADERS payload of 0 bytes"},
      {3, std::string(4, '\1'), "RST_STREAM payload of 4 bytes, want 8"},
      {3, std::string(12, '\1'), "RST_STREAM payload of 12 bytes"},
      {4, std::string(3, '\0'), "SETTINGS payload of 3 bytes"},
      {4, be32(2) + std::string(8, '\0'), "SETTINGS payload of 12 bytes, want 4 + 8 * 2"},
      {6, std::string(3, '\1'), "PING payload of 3 bytes, want 4"},
      {6, std::string(8, '\1'), "PING payload of 8 bytes"},
      {7, be32(1), "GOAWAY payload of 4 bytes, want 8"},
      {9, std::string(7, '\1'), "WINDOW_UPDATE payload of 7 bytes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    FrameParser parser;
    expect_failure(parser, control(c.type, 0, c.payload), c.what);
  }
}

TEST(SpdyCodec, RejectsStreamZero) {
  FrameParser data_parser;
  expect_failure(data_parser, FrameWriter::data(0, 0, "x"), "data frame on stream 0");

  RawDeflater deflater;
  FrameParser syn_parser;
  std::string syn = be32(0) + be32(0) + std::string(2, '\0') + deflater.block(plain_block(0, {}));
  expect_failure(syn_parser, control(1, 0, syn), "SYN_STREAM on stream 0");
  FrameParser reply_parser;
  expect_failure(reply_parser, control(2, 0, be32(0x80000000) + deflater.block(plain_block(0, {}))),
                 "SYN_REPLY on stream 0");
}

TEST(SpdyCodec, RejectsBadHeaderBlocks) {
  struct Case {
    std::string plain;
    std::string_view what;
  };
  const Case cases[] = {
      {plain_block(5, {{"streamtype", "error"}}), "claims 5 headers but has room for at most 2"},
      {plain_block(2, {{"streamtype", "error"}}) + be32(100), "ends inside its 2 headers"},
      {plain_block(1, {{"a", "b"}}) + "x", "1 bytes after its headers"},
      {plain_block(1, {{"StreamType", "error"}}), "\"StreamType\" has upper case"},
      {plain_block(1, {{"", "error"}}), "empty name"},
      {plain_block(2, {{"a", "1"}, {"a", "2"}}), "\"a\" appears twice"},
      {"", "too short for its count"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    RawDeflater deflater;
    FrameParser parser;
    expect_failure(parser, control(2, 0, be32(1) + deflater.block(c.plain)), c.what);
  }
}

TEST(SpdyCodec, RejectsBlocksThatDoNotInflate) {
  FrameParser garbage;
  expect_failure(garbage, control(2, 0, be32(1) + "this is not zlib at all"), "SYN_REPLY: spdy header block");

  // A valid first block, then bytes that do not continue its stream.
  FrameWriter writer;
  std::string good = *writer.syn_reply({.stream_id = 1, .headers = {{"a", "b"}}});
  FrameParser parser;
  EXPECT_TRUE(std::holds_alternative<SynReply>(parse_one(parser, good)));
  expect_failure(parser, control(8, 0, be32(1) + std::string("\xff\xff\xff\xff\xff", 5)), "HEADERS: spdy header block");

  // The right zlib header with a different dictionary id.
  FrameParser wrong_dictionary;
  std::string header = from_hex("78f9") + be32(0x12345678) + from_hex("00000000ffff");
  expect_failure(wrong_dictionary, control(2, 0, be32(1) + header), "dictionary");
}

TEST(SpdyCodec, DecompressorLimitsInflatedSize) {
  RawDeflater deflater;
  // 64 KiB of zeros compresses to a few hundred bytes.
  std::string bomb = deflater.block(plain_block(1, {{"a", std::string(64 << 10, '\0')}}));
  ASSERT_LT(bomb.size(), 1024u);
  HeaderDecompressor small(32 << 10);
  auto refused = small.decompress(bomb);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("inflates to more than 32768 bytes"), std::string::npos);
  // It stopped mid-stream, so it stays failed.
  EXPECT_FALSE(small.decompress(deflater.block(plain_block(0, {}))).has_value());

  RawDeflater again;
  HeaderDecompressor roomy(128 << 10);
  auto accepted = roomy.decompress(again.block(plain_block(1, {{"a", std::string(64 << 10, '\0')}})));
  ASSERT_TRUE(accepted.has_value()) << accepted.error().message;
  EXPECT_EQ((*accepted)[0].second.size(), 64u << 10);
}

TEST(SpdyCodec, FailureDropsLaterInput) {
  FrameParser parser;
  expect_failure(parser, control(6, 0, "abc"), "PING");
  size_t before = parser.buffered();
  std::string more(4096, 'z');
  parser.feed(more.data(), more.size());
  EXPECT_EQ(parser.buffered(), before);
}

}  // namespace
}  // namespace berth::streaming::spdy

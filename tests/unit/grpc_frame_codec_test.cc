// Wire details of berth's gRPC server that need no socket.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "cri/grpc/frame_codec.h"
#include "cri/grpc/status.h"

namespace berth::grpc {
namespace {

using namespace std::chrono_literals;

TEST(GrpcFrameCodec, PrefixIsFlagAndBigEndianLength) {
  std::string framed = frame_message("abc");
  ASSERT_EQ(framed.size(), 8u);
  EXPECT_EQ(framed.substr(0, 5), std::string("\0\0\0\0\3", 5));
  EXPECT_EQ(framed.substr(5), "abc");

  char prefix[5];
  write_message_prefix(prefix, 0x01020304);
  EXPECT_EQ(std::string(prefix, 5), std::string("\0\1\2\3\4", 5));
}

TEST(GrpcFrameCodec, DeframerReassemblesAnyChunking) {
  std::string wire = frame_message("first") + frame_message("") + frame_message(std::string(70000, 'x'));
  MessageDeframer deframer(1 << 20);
  // One byte at a time is the worst split a peer can choose.
  for (char c : wire) {
    ASSERT_TRUE(deframer.feed(std::string_view(&c, 1)).ok());
  }
  EXPECT_FALSE(deframer.partial());
  ASSERT_EQ(deframer.messages().size(), 3u);
  EXPECT_EQ(deframer.messages()[0], "first");
  EXPECT_EQ(deframer.messages()[1], "");
  EXPECT_EQ(deframer.messages()[2], std::string(70000, 'x'));
}

TEST(GrpcFrameCodec, DeframerReportsPartialMessages) {
  std::string wire = frame_message("hello");
  MessageDeframer deframer(1024);
  ASSERT_TRUE(deframer.feed(wire.substr(0, 3)).ok());
  EXPECT_TRUE(deframer.partial());
  ASSERT_TRUE(deframer.feed(wire.substr(3, 4)).ok());
  EXPECT_TRUE(deframer.partial());
  ASSERT_TRUE(deframer.feed(wire.substr(7)).ok());
  EXPECT_FALSE(deframer.partial());
  EXPECT_EQ(deframer.messages().size(), 1u);
}

TEST(GrpcFrameCodec, DeframerRejectsCompressedMessages) {
  std::string wire = frame_message("zz");
  wire[0] = 1;
  MessageDeframer deframer(1024);
  CallStatus status = deframer.feed(wire);
  EXPECT_EQ(status.code, StatusCode::internal);
  EXPECT_NE(status.message.find("identity"), std::string::npos);
  // The error sticks: later input is dropped.
  EXPECT_EQ(deframer.feed(frame_message("ok")).code, StatusCode::internal);
  EXPECT_TRUE(deframer.messages().empty());
}

TEST(GrpcFrameCodec, DeframerRejectsReservedFlags) {
  std::string wire = frame_message("zz");
  wire[0] = 2;
  MessageDeframer deframer(1024);
  EXPECT_EQ(deframer.feed(wire).code, StatusCode::internal);
}

TEST(GrpcFrameCodec, DeframerRejectsOversizedMessagesFromTheirPrefix) {
  MessageDeframer deframer(100);
  // Only the prefix arrives: the announced length alone is enough to refuse.
  std::string prefix(5, '\0');
  write_message_prefix(prefix.data(), 101);
  CallStatus status = deframer.feed(prefix);
  EXPECT_EQ(status.code, StatusCode::resource_exhausted);
  EXPECT_NE(status.message.find("101"), std::string::npos);
  EXPECT_NE(status.message.find("100"), std::string::npos);

  MessageDeframer exact(100);
  EXPECT_TRUE(exact.feed(frame_message(std::string(100, 'a'))).ok());
}

TEST(GrpcFrameCodec, PercentEncodeKeepsPrintableAscii) {
  EXPECT_EQ(percent_encode("container \"abc\" not found"), "container \"abc\" not found");
  EXPECT_EQ(percent_encode("100%"), "100%25");
  EXPECT_EQ(percent_encode("a\nb\tc"), "a%0Ab%09c");
  EXPECT_EQ(percent_encode("\xc3\xbc"), "%C3%BC");  // ü
  EXPECT_EQ(percent_encode(std::string("\0\x7f", 2)), "%00%7F");
}

TEST(GrpcFrameCodec, PercentDecodeInvertsEncodeForEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  std::string encoded = percent_encode(all);
  for (unsigned char c : encoded) {
    EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << "byte " << int(c) << " is not a valid header character";
  }
  EXPECT_EQ(percent_decode(encoded), all);
}

TEST(GrpcFrameCodec, PercentDecodeKeepsMalformedSequences) {
  EXPECT_EQ(percent_decode("%zz"), "%zz");
  EXPECT_EQ(percent_decode("50%"), "50%");
  EXPECT_EQ(percent_decode("50%4"), "50%4");
  EXPECT_EQ(percent_decode("%41%4g"), "A%4g");
  EXPECT_EQ(percent_decode("%c3%bc"), "\xc3\xbc");  // lower-case hex is fine too
}

TEST(GrpcFrameCodec, ParseTimeoutUnits) {
  EXPECT_EQ(parse_timeout("1H"), std::chrono::nanoseconds(1h));
  EXPECT_EQ(parse_timeout("2M"), std::chrono::nanoseconds(2min));
  EXPECT_EQ(parse_timeout("3S"), std::chrono::nanoseconds(3s));
  EXPECT_EQ(parse_timeout("100m"), std::chrono::nanoseconds(100ms));
  EXPECT_EQ(parse_timeout("299999u"), std::chrono::nanoseconds(299999us));
  EXPECT_EQ(parse_timeout("7n"), std::chrono::nanoseconds(7));
  EXPECT_EQ(parse_timeout("0S"), std::chrono::nanoseconds(0));
  EXPECT_EQ(parse_timeout("99999999S"), std::chrono::nanoseconds(99999999s));
}

TEST(GrpcFrameCodec, ParseTimeoutSaturates) {
  EXPECT_EQ(parse_timeout("99999999H"), std::chrono::nanoseconds::max());
}

TEST(GrpcFrameCodec, ParseTimeoutRejectsMalformedValues) {
  for (const char* bad : {"", "S", "1", "123456789S", "1x", "-1S", "1.5S", " 1S", "1 S", "1s"}) {
    EXPECT_FALSE(parse_timeout(bad).has_value()) << '"' << bad << '"';
  }
}

TEST(GrpcFrameCodec, StatusCodesHaveTheirWireNumbers) {
  EXPECT_EQ(static_cast<int>(StatusCode::deadline_exceeded), 4);
  EXPECT_EQ(static_cast<int>(StatusCode::resource_exhausted), 8);
  EXPECT_EQ(static_cast<int>(StatusCode::unimplemented), 12);
  EXPECT_EQ(static_cast<int>(StatusCode::unauthenticated), 16);
  EXPECT_EQ(status_code_name(StatusCode::deadline_exceeded), "DEADLINE_EXCEEDED");
  EXPECT_TRUE(CallStatus{}.ok());
}

}  // namespace
}  // namespace berth::grpc

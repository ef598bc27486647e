// CRI log lines from container output: the splitting and tagging containerd's CRI
// logger does (pkg/cri/io/logger.go), and the timestamp format kubelet parses.
#include "runtime/shim/cri_log_writer.h"

#include <gtest/gtest.h>

#include <ctime>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

namespace berth::shim {
namespace {

constexpr int64_t kFixedNs = 1795255200123456789;  // 2026-11-21T10:00:00.123456789Z
int64_t fixed_clock() { return kFixedNs; }

struct Line {
  std::string stream, tag, message;
  bool operator==(const Line&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Line& l) {
  return os << l.stream << " " << l.tag << " [" << l.message.size() << "] \"" << l.message.substr(0, 40) << "\"";
}

class CollectingSink : public LogSink {
 public:
  void write_line(const iovec* parts, int count) override {
    std::string raw;
    for (int i = 0; i < count; ++i) raw.append(static_cast<const char*>(parts[i].iov_base), parts[i].iov_len);
    raws.push_back(raw);
  }
  // Splits on the first three spaces, as kubelet does.
  std::vector<Line> lines() const {
    std::vector<Line> out;
    for (auto& raw : raws) {
      EXPECT_EQ(raw.back(), '\n');
      size_t a = raw.find(' '), b = raw.find(' ', a + 1), c = raw.find(' ', b + 1);
      EXPECT_NE(c, std::string::npos) << raw;
      out.push_back(
          {raw.substr(a + 1, b - a - 1), raw.substr(b + 1, c - b - 1), raw.substr(c + 1, raw.size() - c - 2)});
    }
    return out;
  }
  std::vector<std::string> raws;
};

class CriLogWriterTest : public ::testing::Test {
 protected:
  CollectingSink sink;
  CriLogWriter out{sink, "stdout", CriLogWriter::kDefaultMaxLine, fixed_clock};
  CriLogWriter err{sink, "stderr", CriLogWriter::kDefaultMaxLine, fixed_clock};
  void feed(CriLogWriter& w, const std::string& s) { w.write(s.data(), s.size()); }
};

TEST_F(CriLogWriterTest, FullLineIsOneFLine) {
  feed(out, "hello world\n");
  ASSERT_EQ(sink.raws.size(), 1u);
  EXPECT_EQ(sink.raws[0], "2026-11-21T10:00:00.123456789Z stdout F hello world\n");
}

TEST_F(CriLogWriterTest, SeveralLinesInOneRead) {
  feed(err, "one\ntwo\nthree\n");
  EXPECT_EQ(sink.lines(),
            (std::vector<Line>{{"stderr", "F", "one"}, {"stderr", "F", "two"}, {"stderr", "F", "three"}}));
}

TEST_F(CriLogWriterTest, LineSplitAcrossReadsIsJoined) {
  feed(out, "hel");
  EXPECT_TRUE(sink.raws.empty());
  feed(out, "lo wo");
  feed(out, "rld\nnext");
  feed(out, "\n");
  EXPECT_EQ(sink.lines(), (std::vector<Line>{{"stdout", "F", "hello world"}, {"stdout", "F", "next"}}));
}

TEST_F(CriLogWriterTest, LongLineIsCutIntoPartialPieces) {
  std::string line(40 * 1024, 'x');
  line[0] = 'a';
  line[16384] = 'b';
  line[32768] = 'c';
  feed(out, line + "\n");
  auto lines = sink.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].tag, "P");
  EXPECT_EQ(lines[1].tag, "P");
  EXPECT_EQ(lines[2].tag, "F");
  EXPECT_EQ(lines[0].message.size(), 16384u);
  EXPECT_EQ(lines[1].message.size(), 16384u);
  EXPECT_EQ(lines[2].message.size(), 8192u);
  EXPECT_EQ(lines[0].message[0], 'a');
  EXPECT_EQ(lines[1].message[0], 'b');
  EXPECT_EQ(lines[2].message[0], 'c');
  EXPECT_EQ(lines[0].message + lines[1].message + lines[2].message, line);
}

TEST_F(CriLogWriterTest, LongLineFedInSmallReads) {
  std::string line(40 * 1024, 'y');
  for (size_t i = 0; i < line.size(); i += 1000) feed(out, line.substr(i, 1000));
  feed(out, "\n");
  auto lines = sink.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], (Line{"stdout", "P", std::string(16384, 'y')}));
  EXPECT_EQ(lines[1], (Line{"stdout", "P", std::string(16384, 'y')}));
  EXPECT_EQ(lines[2], (Line{"stdout", "F", std::string(8192, 'y')}));
}

TEST_F(CriLogWriterTest, LineOfExactlyTheLimitIsOneFLine) {
  feed(out, std::string(16384, 'z') + "\n");
  feed(out, std::string(16384, 'z') + "\r\n");
  feed(out, std::string(16384, 'z'));
  feed(out, "\r");
  feed(out, "\n");
  auto lines = sink.lines();
  ASSERT_EQ(lines.size(), 3u);
  for (auto& l : lines) EXPECT_EQ(l, (Line{"stdout", "F", std::string(16384, 'z')}));
}

TEST_F(CriLogWriterTest, LimitPlusCarriageReturnInsideTheLine) {
  // A '\r' right after the limit that is not followed by '\n' is content.
  feed(out, std::string(16384, 'z') + "\rq\n");
  EXPECT_EQ(sink.lines(), (std::vector<Line>{{"stdout", "P", std::string(16384, 'z')}, {"stdout", "F", "\rq"}}));
}

TEST_F(CriLogWriterTest, EmptyLinesAreLogged) {
  feed(out, "\n\nx\n\n");
  EXPECT_EQ(sink.lines(), (std::vector<Line>{
                              {"stdout", "F", ""}, {"stdout", "F", ""}, {"stdout", "F", "x"}, {"stdout", "F", ""}}));
  EXPECT_EQ(sink.raws[0], "2026-11-21T10:00:00.123456789Z stdout F \n");
}

TEST_F(CriLogWriterTest, CrLfEndingsLoseTheCarriageReturnOnly) {
  feed(out, "dos\r\nmid\rdle\r\n\r\n");
  feed(out, "split\r");
  feed(out, "\n");
  EXPECT_EQ(sink.lines(), (std::vector<Line>{{"stdout", "F", "dos"},
                                             {"stdout", "F", "mid\rdle"},
                                             {"stdout", "F", ""},
                                             {"stdout", "F", "split"}}));
}

TEST_F(CriLogWriterTest, UnterminatedTailAtEofIsPartial) {
  feed(out, "done\ntail without newline");
  out.finish();
  EXPECT_EQ(sink.lines(), (std::vector<Line>{{"stdout", "F", "done"}, {"stdout", "P", "tail without newline"}}));
}

TEST_F(CriLogWriterTest, TrailingCarriageReturnAtEofIsKept) {
  feed(out, "abc\r");
  out.finish();
  EXPECT_EQ(sink.lines(), (std::vector<Line>{{"stdout", "P", "abc\r"}}));
}

TEST_F(CriLogWriterTest, EofWithNothingPendingWritesNothing) {
  feed(out, "x\n");
  out.finish();
  out.finish();
  EXPECT_EQ(sink.raws.size(), 1u);
}

TEST_F(CriLogWriterTest, LongTailAtEofIsAllPartial) {
  feed(out, std::string(16385, 'w'));
  out.finish();
  EXPECT_EQ(sink.lines(), (std::vector<Line>{{"stdout", "P", std::string(16384, 'w')}, {"stdout", "P", "w"}}));
}

TEST_F(CriLogWriterTest, StreamsKeepSeparatePartialLines) {
  feed(out, "o1");
  feed(err, "e1");
  feed(out, "o2\n");
  feed(err, "e2\n");
  EXPECT_EQ(sink.lines(), (std::vector<Line>{{"stdout", "F", "o1o2"}, {"stderr", "F", "e1e2"}}));
}

TEST(CriLogTimestamp, Rfc3339NanoUtc) {
  char buf[CriLogWriter::kTimestampSize + 1] = {};
  CriLogWriter::format_timestamp(0, buf);
  EXPECT_STREQ(buf, "1970-01-01T00:00:00.000000000Z");
  CriLogWriter::format_timestamp(951782400000000001, buf);  // leap day
  EXPECT_STREQ(buf, "2000-02-29T00:00:00.000000001Z");
  CriLogWriter::format_timestamp(4102444799999999999, buf);
  EXPECT_STREQ(buf, "2099-12-31T23:59:59.999999999Z");
  CriLogWriter::format_timestamp(CriLogWriter::realtime_ns(), buf);
  EXPECT_TRUE(std::regex_match(buf, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z)"))) << buf;
  // Agrees with the C library.
  time_t now = ::time(nullptr);
  CriLogWriter::format_timestamp(static_cast<int64_t>(now) * 1000000000, buf);
  char expected[64];
  tm utc{};
  ::gmtime_r(&now, &utc);
  std::strftime(expected, sizeof expected, "%Y-%m-%dT%H:%M:%S.000000000Z", &utc);
  EXPECT_STREQ(buf, expected);
}

TEST(CriLogTimestamp, WholeLineMatchesTheCriFormat) {
  CollectingSink sink;
  CriLogWriter w(sink, "stderr");
  w.write("boom\n", 5);
  ASSERT_EQ(sink.raws.size(), 1u);
  std::regex line_re(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z stderr F boom\n)");
  EXPECT_TRUE(std::regex_match(sink.raws[0], line_re))
      << sink.raws[0];
}

}  // namespace
}  // namespace berth::shim

// The streaming server's small parts: the token cache, the status kubectl reads, and
// the resize stream decoder.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "cri/streaming/command_status.h"
#include "cri/streaming/port_forward.h"
#include "cri/streaming/request_cache.h"
#include "cri/streaming/terminal_size.h"

namespace berth::streaming {
namespace {

using namespace std::chrono_literals;

TEST(RequestCache, TokensAreRandomUrlSafeAndWorkOnce) {
  RequestCache cache(1min, 10);
  std::set<std::string> seen;
  for (int i = 0; i < 10; ++i) {
    auto token = cache.insert(ExecRequest{"c" + std::to_string(i), {"true"}});
    ASSERT_TRUE(token);
    EXPECT_EQ(token->size(), 22u);  // 128 bits at 6 per character
    EXPECT_EQ(token->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    EXPECT_TRUE(seen.insert(*token).second);
  }
  // Full: the eleventh waits for room.
  auto full = cache.insert(AttachRequest{"x"});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, EAGAIN);

  auto first = *seen.begin();
  auto got = cache.consume(first);
  ASSERT_TRUE(got);
  EXPECT_TRUE(std::holds_alternative<ExecRequest>(*got));
  EXPECT_FALSE(cache.consume(first));
  EXPECT_FALSE(cache.consume("not-a-token"));
  EXPECT_EQ(cache.pending(), 9u);
  EXPECT_TRUE(cache.insert(PortForwardRequest{"pod", {80}}));
}

TEST(RequestCache, TokensExpire) {
  auto now = RequestCache::Clock::now();
  RequestCache cache(60s, 2, [&] { return now; });
  auto a = cache.insert(ExecRequest{"a", {"true"}});
  auto b = cache.insert(ExecRequest{"b", {"true"}});
  ASSERT_TRUE(a && b);
  now += 59s;
  EXPECT_TRUE(cache.consume(*a));
  now += 2s;
  EXPECT_FALSE(cache.consume(*b));  // expired
  EXPECT_EQ(cache.pending(), 0u);
  // Expired entries make room again.
  EXPECT_TRUE(cache.insert(ExecRequest{"c", {"true"}}));
  EXPECT_TRUE(cache.insert(ExecRequest{"d", {"true"}}));
}

TEST(CommandStatus, MatchesWhatKubeletWrites) {
  EXPECT_EQ(status_json(success()), R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(status_text(success()), "");
  auto exit = exited_with(3, "[sh -c exit 3]");
  EXPECT_EQ(status_json(exit),
            R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error )"
            R"(executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":)"
            R"([{"reason":"ExitCode","message":"3"}]}})");
  EXPECT_EQ(status_text(exit), "command terminated with non-zero exit code: error executing command [sh -c exit 3], "
                               "exit code 3");
  auto internal = nlohmann::json::parse(status_json(internal_error("boom")));
  EXPECT_EQ(internal["reason"], "InternalError");
  EXPECT_EQ(internal["code"], 500);
  EXPECT_EQ(internal["message"], "Internal error occurred: boom");
  EXPECT_EQ(internal["details"]["causes"][0]["message"], "boom");
}

TEST(TerminalSize, DecodesObjectsSplitAnywhere) {
  TerminalSizeDecoder d;
  std::string stream = R"({"Width":100,"Height":40}
{"Height":24,"Width":80}{"Width":1})";
  std::vector<TerminalSize> sizes;
  for (char c : stream) {
    auto got = d.feed(std::string_view(&c, 1));
    ASSERT_TRUE(got) << got.error().message;
    sizes.insert(sizes.end(), got->begin(), got->end());
  }
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[0].width, 100);
  EXPECT_EQ(sizes[0].height, 40);
  EXPECT_EQ(sizes[1].width, 80);
  EXPECT_EQ(sizes[1].height, 24);
  EXPECT_EQ(sizes[2].width, 1);
  EXPECT_EQ(sizes[2].height, 0);
}

TEST(TerminalSize, RejectsWhatIsNotASize) {
  for (const char* bad : {"[1,2]", R"({"Width":-1})", R"({"Width":70000})", R"({"Width":"80"})", "nonsense"}) {
    TerminalSizeDecoder d;
    auto got = d.feed(bad);
    EXPECT_FALSE(got) << bad;
    EXPECT_FALSE(d.feed(R"({"Width":1,"Height":1})")) << "the error sticks";
  }
  TerminalSizeDecoder d;
  EXPECT_FALSE(d.feed("{\"Width\":" + std::string(5000, '1')));  // an object that never ends
  EXPECT_TRUE(parse_terminal_size(R"({"Width":3,"Height":4})"));
  EXPECT_FALSE(parse_terminal_size("{"));
}

TEST(PortForward, PortValues) {
  EXPECT_EQ(parse_port("80"), 80);
  EXPECT_EQ(parse_port("65535"), 65535);
  for (const char* bad : {"", "0", "65536", "-1", "80a", " 80", "1e3"}) EXPECT_FALSE(parse_port(bad)) << bad;
}

}  // namespace
}  // namespace berth::streaming

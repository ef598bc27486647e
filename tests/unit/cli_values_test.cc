// Unit tests for runtime/cli/cli_values: signal names, byte sizes and uid[:gid] as
// the runc command line accepts them.
#include <signal.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/cli/cli_values.h"

namespace berth::cli {
namespace {

// ---- parse_signal --------------------------------------------------------------------

TEST(CliParseSignal, NamesInAnySpelling) {
  EXPECT_EQ(parse_signal("KILL").value_or(-1), SIGKILL);
  EXPECT_EQ(parse_signal("SIGKILL").value_or(-1), SIGKILL);
  EXPECT_EQ(parse_signal("sigterm").value_or(-1), SIGTERM);
  EXPECT_EQ(parse_signal("term").value_or(-1), SIGTERM);
  EXPECT_EQ(parse_signal("SigHup").value_or(-1), SIGHUP);
  EXPECT_EQ(parse_signal("USR1").value_or(-1), SIGUSR1);
  EXPECT_EQ(parse_signal("SIGUSR2").value_or(-1), SIGUSR2);
  EXPECT_EQ(parse_signal("WINCH").value_or(-1), SIGWINCH);
  EXPECT_EQ(parse_signal("CHLD").value_or(-1), SIGCHLD);
  EXPECT_EQ(parse_signal("SIGSTOP").value_or(-1), SIGSTOP);
  EXPECT_EQ(parse_signal("CONT").value_or(-1), SIGCONT);
  EXPECT_EQ(parse_signal("SYS").value_or(-1), SIGSYS);
}

TEST(CliParseSignal, Numbers) {
  EXPECT_EQ(parse_signal("9").value_or(-1), 9);
  EXPECT_EQ(parse_signal("15").value_or(-1), 15);
  EXPECT_EQ(parse_signal("1").value_or(-1), 1);
  EXPECT_EQ(parse_signal("64").value_or(-1), 64);
  for (const char* bad : {"0", "65", "-9", "999", "9abc", " 9"}) {
    auto r = parse_signal(bad);
    EXPECT_FALSE(r.has_value()) << bad << " -> " << r.value_or(-1);
    if (!r) {
      EXPECT_EQ(r.error().code, EINVAL) << bad;
    }
  }
}

TEST(CliParseSignal, RealtimeSignals) {
  EXPECT_EQ(parse_signal("SIGRTMIN+3").value_or(-1), SIGRTMIN + 3);
  EXPECT_EQ(parse_signal("SIGRTMIN+3").value_or(-1), 37);  // the kernel's 34 + 3, as runc
  EXPECT_EQ(parse_signal("RTMAX-1").value_or(-1), SIGRTMAX - 1);
  EXPECT_EQ(parse_signal("RTMAX-1").value_or(-1), 63);
  EXPECT_EQ(parse_signal("rtmin").value_or(-1), SIGRTMIN);
  EXPECT_EQ(parse_signal("SIGRTMAX").value_or(-1), SIGRTMAX);
  EXPECT_EQ(parse_signal("RTMIN+30").value_or(-1), SIGRTMAX);
  EXPECT_EQ(parse_signal("RTMAX-30").value_or(-1), SIGRTMIN);
  EXPECT_FALSE(parse_signal("RTMIN+31").has_value());
  EXPECT_FALSE(parse_signal("RTMAX-31").has_value());
  EXPECT_FALSE(parse_signal("RTMIN+").has_value());
  EXPECT_FALSE(parse_signal("RTMIN+x").has_value());
}

// A negative offset must not walk out of the realtime range: "RTMIN+-20" is not
// SIGALRM and "RTMAX--1" is not signal 65.
TEST(CliParseSignal, RealtimeOffsetMustNotBeNegative) {
  for (const char* bad : {"RTMIN+-1", "SIGRTMIN+-20", "RTMAX--1", "RTMAX--5"}) {
    auto r = parse_signal(bad);
    EXPECT_FALSE(r.has_value()) << bad << " parsed as signal " << r.value_or(-1);
  }
}

TEST(CliParseSignal, UnknownNames) {
  for (const char* bad : {"FOO", "SIGFOO", "", "SIG", "KILLX", "SIGSIGKILL"}) {
    auto r = parse_signal(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, EINVAL);
  }
  EXPECT_THAT(parse_signal("FOO").error().message, ::testing::HasSubstr("FOO"));
}

// ---- parse_bytes ---------------------------------------------------------------------

TEST(CliParseBytes, PlainAndUnits) {
  EXPECT_EQ(parse_bytes("0").value_or(-2), 0);
  EXPECT_EQ(parse_bytes("512").value_or(-2), 512);
  EXPECT_EQ(parse_bytes("512b").value_or(-2), 512);
  EXPECT_EQ(parse_bytes("512k").value_or(-2), 512 * 1024);
  EXPECT_EQ(parse_bytes("512K").value_or(-2), 512 * 1024);
  EXPECT_EQ(parse_bytes("64m").value_or(-2), 64LL * 1024 * 1024);
  EXPECT_EQ(parse_bytes("64MB").value_or(-2), 64LL * 1024 * 1024);
  EXPECT_EQ(parse_bytes("64mb").value_or(-2), 64LL * 1024 * 1024);
  EXPECT_EQ(parse_bytes("1g").value_or(-2), 1LL << 30);
  EXPECT_EQ(parse_bytes("1.5g").value_or(-2), 1610612736LL);
  EXPECT_EQ(parse_bytes("1GiB").value_or(-2), 1LL << 30);
  EXPECT_EQ(parse_bytes("2t").value_or(-2), 2LL << 40);
  EXPECT_EQ(parse_bytes("1p").value_or(-2), 1LL << 50);
  EXPECT_EQ(parse_bytes("-1").value_or(-2), -1);
}

TEST(CliParseBytes, Invalid) {
  for (const char* bad : {"abc", "-5", "12x", "", "k", "b", "-1k", "1.5.5g", "64 mb", "64kk", "9000p"}) {
    auto r = parse_bytes(bad);
    EXPECT_FALSE(r.has_value()) << bad << " -> " << r.value_or(-2);
    if (!r) {
      EXPECT_EQ(r.error().code, EINVAL) << bad;
    }
  }
}

// docker's RAMInBytes (which runc update uses) takes decimal digits only: strtod's hex
// and exponent forms are typos, not sizes ("0x1p" must not mean 1 PiB).
TEST(CliParseBytes, RejectsHexAndExponentForms) {
  for (const char* bad : {"0x10", "1e3", "1e3k", "0x1p", "inf", "nan"}) {
    auto r = parse_bytes(bad);
    EXPECT_FALSE(r.has_value()) << "\"" << bad << "\" parsed as " << r.value_or(-2);
  }
}

// ---- parse_user ------------------------------------------------------------------------

TEST(CliParseUser, UidAndGid) {
  auto u = parse_user("1000");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->first, 1000u);
  EXPECT_EQ(u->second, 0u);
  u = parse_user("1000:100");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->first, 1000u);
  EXPECT_EQ(u->second, 100u);
  u = parse_user("0:0");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->first, 0u);
  u = parse_user("4294967295:4294967295");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->first, 4294967295u);
  EXPECT_EQ(u->second, 4294967295u);
}

TEST(CliParseUser, Invalid) {
  for (const char* bad : {"a:b", "", "root", "1000:", ":100", "-1", "1000:-1", "4294967296", "1:2:3", "10a"}) {
    auto r = parse_user(bad);
    EXPECT_FALSE(r.has_value()) << "\"" << bad << "\"";
    if (!r) {
      EXPECT_EQ(r.error().code, EINVAL) << bad;
    }
  }
}

}  // namespace
}  // namespace berth::cli

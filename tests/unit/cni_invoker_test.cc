// Unit tests for network/cni_invoker with fake plugins (shell scripts that record
// their stdin and environment): what each plugin is given, the order of ADD, DEL and
// CHECK, the cache, rollback of a failed ADD, error reporting and timeouts. No root:
// the real plugins are exercised by tests/integration/cni_test.cc.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "network/cni_invoker.h"

namespace berth::network {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records call N as call-N.stdin / call-N.env and answers as told by marker files.
constexpr const char* kFakePlugin = R"(#!/bin/sh
d=@DIR@; me=@NAME@
n=$(cat "$d/counter" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/counter"
cat > "$d/call-$n.stdin"
{ echo "PLUGIN=$me"; env | grep -E '^(CNI_[A-Z]+|PATH)=' | sort; } > "$d/call-$n.env"
if [ -e "$d/sleep-$CNI_COMMAND-$me" ]; then echo $$ > "$d/pid-$me"; exec sleep 30; fi
if [ -e "$d/fail-$CNI_COMMAND-$me" ]; then cat "$d/fail-$CNI_COMMAND-$me"; exit 1; fi
if [ -e "$d/garbage-$CNI_COMMAND-$me" ]; then echo "something broke badly" >&2; exit 3; fi
if [ "$CNI_COMMAND" = ADD ]; then cat "$d/result-$me"; fi
exit 0
)";

struct Call {
  std::string plugin;
  std::string command;
  json input;
  std::map<std::string, std::string> env;
};

class CniInvokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-cni-invoker-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    bin_ = dir_ + "/bin";
    log_ = dir_ + "/log";
    cache_ = dir_ + "/cache";
    ASSERT_TRUE(make_dirs(bin_).has_value());
    ASSERT_TRUE(make_dirs(log_).has_value());
    for (const char* name : {"alpha", "beta", "gamma"}) {
      std::string script = kFakePlugin;
      script.replace(script.find("@DIR@"), 5, log_);
      script.replace(script.find("@NAME@"), 6, name);
      ASSERT_TRUE(write_file_atomic(bin_ + "/" + name, script, 0755).has_value());
    }
    set_result("alpha", R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],)"
                        R"("ips":[{"address":"10.0.0.1/24","interface":0}]})");
    set_result("beta", R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],)"
                       R"("ips":[{"address":"10.0.0.2/24","interface":0}]})");
    set_result("gamma", R"({"cniVersion":"1.0.0"})");
    attachment_.container_id = "c0ffee";
    attachment_.netns_path = "/ns";
    attachment_.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "web"}};
    attachment_.capability_args = {{"portMappings", json::array({{{"hostPort", 8080}, {"containerPort", 80}}})},
                                   {"dns", {{"servers", {"1.1.1.1"}}}}};
  }
  void TearDown() override { (void)remove_tree(dir_); }

  void set_result(const std::string& plugin, const std::string& text) { marker("result-" + plugin, text); }
  void marker(const std::string& name, const std::string& text = "") {
    ASSERT_TRUE(write_file_atomic(log_ + "/" + name, text, 0644).has_value());
  }
  void unmark(const std::string& name) { ::unlink((log_ + "/" + name).c_str()); }

  CniNetworkConfig config(const std::string& text) {
    auto c = parse_network_config(json::parse(text), "test");
    EXPECT_TRUE(c.has_value()) << c.error().message;
    return *c;
  }
  CniNetworkConfig two_plugins(bool disable_check = false) {
    return config(std::string(R"({"cniVersion":"1.0.0","name":"testnet",)") +
                  (disable_check ? R"("disableCheck":true,)" : "") +
                  R"("plugins":[{"type":"alpha","name":"ignored","cniVersion":"0.1.0",
                      "capabilities":{"portMappings":true,"dns":false},"runtimeConfig":{"stale":1}},
                     {"type":"beta","extra":{"k":"v"}}]})");
  }

  CniInvoker invoker(std::chrono::seconds timeout = std::chrono::seconds(20)) {
    return CniInvoker({dir_ + "/empty", bin_}, cache_, timeout);
  }

  std::vector<Call> calls() {
    std::vector<Call> out;
    for (int n = 1;; ++n) {
      auto in = read_file(log_ + "/call-" + std::to_string(n) + ".stdin");
      auto env = read_file(log_ + "/call-" + std::to_string(n) + ".env");
      if (!in || !env) break;
      Call c;
      c.input = json::parse(*in, nullptr, false);
      for (auto& line : split(*env, '\n')) {
        auto eq = line.find('=');
        if (eq != std::string::npos) c.env[line.substr(0, eq)] = line.substr(eq + 1);
      }
      c.plugin = c.env["PLUGIN"];
      c.command = c.env["CNI_COMMAND"];
      out.push_back(std::move(c));
    }
    return out;
  }
  std::vector<std::string> sequence() {
    std::vector<std::string> out;
    for (auto& c : calls()) out.push_back(c.plugin + " " + c.command);
    return out;
  }
  void forget_calls() {
    for (int n = 1; n < 100; ++n) {
      ::unlink((log_ + "/call-" + std::to_string(n) + ".stdin").c_str());
      ::unlink((log_ + "/call-" + std::to_string(n) + ".env").c_str());
    }
    ::unlink((log_ + "/counter").c_str());
  }
  std::string cache_file() const { return cache_ + "/c0ffee-eth0.json"; }

  std::string dir_, bin_, log_, cache_;
  CniAttachment attachment_;
};

TEST_F(CniInvokerTest, AddRunsPluginsInOrderWithInjectedConfigAndEnv) {
  auto inv = invoker();
  auto result = inv.add(attachment_, two_plugins());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_THAT(result->pod_ips(), ElementsAre("10.0.0.2"));

  auto c = calls();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].plugin, "alpha");
  EXPECT_EQ(c[1].plugin, "beta");
  for (auto& call : c) {
    EXPECT_EQ(call.command, "ADD");
    EXPECT_EQ(call.input["name"], "testnet");
    EXPECT_EQ(call.input["cniVersion"], "1.0.0");
    EXPECT_EQ(call.env["CNI_CONTAINERID"], "c0ffee");
    EXPECT_EQ(call.env["CNI_NETNS"], "/ns");
    EXPECT_EQ(call.env["CNI_IFNAME"], "eth0");
    EXPECT_EQ(call.env["CNI_ARGS"], "IgnoreUnknown=1;K8S_POD_NAME=web");
    EXPECT_EQ(call.env["CNI_PATH"], dir_ + "/empty:" + bin_);
    EXPECT_FALSE(call.env["PATH"].empty());
  }
  // The first plugin has no prevResult; the second gets the first one's result.
  EXPECT_FALSE(c[0].input.contains("prevResult"));
  EXPECT_EQ(c[1].input["prevResult"]["ips"][0]["address"], "10.0.0.1/24");
  // runtimeConfig: only the declared and enabled capabilities, replacing any static one.
  EXPECT_EQ(c[0].input["runtimeConfig"], json({{"portMappings", attachment_.capability_args["portMappings"]}}));
  EXPECT_FALSE(c[1].input.contains("runtimeConfig"));
  EXPECT_EQ(c[1].input["extra"]["k"], "v");

  // The cache holds the result, 0600.
  struct stat st{};
  ASSERT_EQ(::stat(cache_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(inv.has_cache("c0ffee", "eth0"));
  auto cached = inv.list_cached();
  ASSERT_TRUE(cached.has_value());
  ASSERT_EQ(cached->size(), 1u);
  EXPECT_EQ((*cached)[0].attachment.container_id, "c0ffee");
  EXPECT_EQ((*cached)[0].attachment.netns_path, "/ns");
  EXPECT_EQ((*cached)[0].attachment.args, attachment_.args);
  EXPECT_EQ((*cached)[0].config.name, "testnet");
  ASSERT_TRUE((*cached)[0].result.has_value());
  EXPECT_THAT((*cached)[0].result->pod_ips(), ElementsAre("10.0.0.2"));
}

TEST_F(CniInvokerTest, SecondAddOfSameAttachmentIsEexist) {
  auto inv = invoker();
  ASSERT_TRUE(inv.add(attachment_, two_plugins()).has_value());
  auto again = inv.add(attachment_, two_plugins());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, EEXIST);
}

TEST_F(CniInvokerTest, DelRunsReverseOrderWithCachedResultAndRemovesCache) {
  auto inv = invoker();
  ASSERT_TRUE(inv.add(attachment_, two_plugins()).has_value());
  forget_calls();
  CniAttachment del_request;
  del_request.container_id = "c0ffee";
  auto r = inv.del(del_request, nullptr);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto c = calls();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].plugin + " " + c[0].command, "beta DEL");
  EXPECT_EQ(c[1].plugin + " " + c[1].command, "alpha DEL");
  for (auto& call : c) {
    EXPECT_EQ(call.input["prevResult"]["ips"][0]["address"], "10.0.0.2/24");
    // Args and netns come from the cache when the caller gives none.
    EXPECT_EQ(call.env["CNI_ARGS"], "IgnoreUnknown=1;K8S_POD_NAME=web");
    EXPECT_EQ(call.env["CNI_NETNS"], "/ns");
  }
  EXPECT_TRUE(c[1].input.contains("runtimeConfig"));
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
  EXPECT_NE(::access(cache_file().c_str(), F_OK), 0);

  // Twice is fine and runs nothing.
  forget_calls();
  EXPECT_TRUE(inv.del(del_request, nullptr).has_value());
  EXPECT_TRUE(calls().empty());
}

TEST_F(CniInvokerTest, DelUsesCachedConfigNotTheCurrentOne) {
  auto inv = invoker();
  ASSERT_TRUE(inv.add(attachment_, two_plugins()).has_value());
  forget_calls();
  auto current = config(R"({"cniVersion":"1.0.0","name":"other","plugins":[{"type":"gamma"}]})");
  ASSERT_TRUE(inv.del(attachment_, &current).has_value());
  EXPECT_THAT(sequence(), ElementsAre("beta DEL", "alpha DEL"));
}

TEST_F(CniInvokerTest, DelWithoutCacheUsesCurrentConfigOrDoesNothing) {
  auto inv = invoker();
  EXPECT_TRUE(inv.del(attachment_, nullptr).has_value());
  EXPECT_TRUE(calls().empty());

  auto current = two_plugins();
  ASSERT_TRUE(inv.del(attachment_, &current).has_value());
  auto c = calls();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].plugin, "beta");
  EXPECT_FALSE(c[0].input.contains("prevResult"));
}

TEST_F(CniInvokerTest, DelContainerUnknownErrorCountsAsDone) {
  auto inv = invoker();
  ASSERT_TRUE(inv.add(attachment_, two_plugins()).has_value());
  marker("fail-DEL-beta", R"({"cniVersion":"1.0.0","code":3,"msg":"no such container"})");
  ASSERT_TRUE(inv.del(attachment_, nullptr).has_value());
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
}

TEST_F(CniInvokerTest, FailedDelKeepsCacheAndStopsAtFirstFailure) {
  auto inv = invoker();
  ASSERT_TRUE(inv.add(attachment_, two_plugins()).has_value());
  forget_calls();
  marker("fail-DEL-beta", R"({"cniVersion":"1.0.0","code":5,"msg":"iptables locked","details":"try later"})");
  auto r = inv.del(attachment_, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EIO);
  EXPECT_THAT(r.error().message, HasSubstr("CNI plugin beta DEL failed (code 5): iptables locked; try later"));
  EXPECT_THAT(sequence(), ElementsAre("beta DEL"));
  EXPECT_TRUE(inv.has_cache("c0ffee", "eth0"));

  unmark("fail-DEL-beta");
  ASSERT_TRUE(inv.del(attachment_, nullptr).has_value());
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
}

TEST_F(CniInvokerTest, FailedAddIsRolledBackIncludingTheFailedPlugin) {
  auto inv = invoker();
  marker("fail-ADD-beta", R"({"cniVersion":"1.0.0","code":7,"msg":"boom","details":"bad bridge"})");
  auto r = inv.add(attachment_, two_plugins());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_THAT(r.error().message, HasSubstr("CNI plugin beta ADD failed (code 7): boom; bad bridge"));
  EXPECT_THAT(sequence(), ElementsAre("alpha ADD", "beta ADD", "beta DEL", "alpha DEL"));
  // The rollback DEL sees what the chain had produced before the failure.
  EXPECT_EQ(calls()[2].input["prevResult"]["ips"][0]["address"], "10.0.0.1/24");
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
}

TEST_F(CniInvokerTest, MissingPluginIsNotDeletedOnRollback) {
  auto inv = invoker();
  auto cfg = config(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"alpha"},{"type":"nonexistent"}]})");
  auto r = inv.add(attachment_, cfg);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_THAT(r.error().message, HasSubstr("CNI plugin 'nonexistent' not found in dirs " + dir_ + "/empty, " + bin_));
  EXPECT_THAT(sequence(), ElementsAre("alpha ADD", "alpha DEL"));
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
}

TEST_F(CniInvokerTest, FailedRollbackKeepsIncompleteCacheForALaterDel) {
  auto inv = invoker();
  marker("fail-ADD-beta", R"({"code":7,"msg":"boom"})");
  marker("fail-DEL-alpha", R"({"code":11,"msg":"busy"})");
  auto r = inv.add(attachment_, two_plugins());
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("cleanup failed too"));
  ASSERT_TRUE(inv.has_cache("c0ffee", "eth0"));
  auto cached = inv.list_cached();
  ASSERT_TRUE(cached.has_value());
  ASSERT_EQ(cached->size(), 1u);
  EXPECT_FALSE((*cached)[0].result.has_value());

  // The orphan sweep: DEL from the cache, config no longer needed.
  unmark("fail-DEL-alpha");
  forget_calls();
  ASSERT_TRUE(inv.del((*cached)[0].attachment, nullptr).has_value());
  EXPECT_THAT(sequence(), ElementsAre("beta DEL", "alpha DEL"));
  EXPECT_FALSE(calls()[0].input.contains("prevResult"));
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
}

TEST_F(CniInvokerTest, NonJsonFailureShowsStderr) {
  auto inv = invoker();
  marker("garbage-ADD-alpha");
  auto r = inv.add(attachment_, two_plugins());
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("CNI plugin alpha ADD failed: exit status 3: something broke badly"));
}

TEST_F(CniInvokerTest, InvalidResultFailsTheAdd) {
  auto inv = invoker();
  set_result("beta", "this is not json");
  auto r = inv.add(attachment_, two_plugins());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_THAT(r.error().message, HasSubstr("beta ADD returned no JSON result"));
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
}

TEST_F(CniInvokerTest, TimeoutKillsThePlugin) {
  auto inv = invoker(std::chrono::seconds(1));
  marker("sleep-ADD-beta");
  auto start = std::chrono::steady_clock::now();
  auto r = inv.add(attachment_, two_plugins());
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_THAT(r.error().message, HasSubstr("CNI plugin beta ADD timed out after 1s"));
  EXPECT_LT(took, std::chrono::seconds(10));
  auto pid = read_file(log_ + "/pid-beta");
  ASSERT_TRUE(pid.has_value());
  // It was our child and has been reaped: the pid is gone.
  EXPECT_NE(::kill(std::stoi(std::string(trim(*pid))), 0), 0);
  // Rolled back (beta started, so it got a DEL too), cache gone.
  EXPECT_THAT(sequence(), ElementsAre("alpha ADD", "beta ADD", "beta DEL", "alpha DEL"));
  EXPECT_FALSE(inv.has_cache("c0ffee", "eth0"));
}

TEST_F(CniInvokerTest, PluginThatIgnoresStdinDoesNotHurtTheCaller) {
  ASSERT_TRUE(write_file_atomic(bin_ + "/mute", "#!/bin/sh\nexit 0\n", 0755).has_value());
  auto inv = invoker();
  auto cfg = config(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"mute"}]})");
  cfg.plugins[0].raw["padding"] = std::string(512 * 1024, 'x');  // far more than a pipe holds
  EXPECT_TRUE(inv.del(attachment_, &cfg).has_value());
}

TEST_F(CniInvokerTest, CheckRunsInOrderWithCachedResult) {
  auto inv = invoker();
  ASSERT_TRUE(inv.add(attachment_, two_plugins()).has_value());
  forget_calls();
  ASSERT_TRUE(inv.check(attachment_).has_value());
  auto c = calls();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].plugin + " " + c[0].command, "alpha CHECK");
  EXPECT_EQ(c[1].plugin + " " + c[1].command, "beta CHECK");
  EXPECT_EQ(c[0].input["prevResult"]["ips"][0]["address"], "10.0.0.2/24");

  marker("fail-CHECK-beta", R"({"code":4,"msg":"eth0 is gone"})");
  auto r = inv.check(attachment_);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("eth0 is gone"));
}

TEST_F(CniInvokerTest, CheckSkippedOrRefused) {
  auto inv = invoker();
  auto none = inv.check(attachment_);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ENOENT);

  ASSERT_TRUE(inv.add(attachment_, two_plugins(/*disable_check=*/true)).has_value());
  forget_calls();
  EXPECT_TRUE(inv.check(attachment_).has_value());
  EXPECT_TRUE(calls().empty());
  ASSERT_TRUE(inv.del(attachment_, nullptr).has_value());

  set_result("alpha", R"({"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.0.0.1/24"}]})");
  ASSERT_TRUE(inv.add(attachment_, config(R"({"cniVersion":"0.3.1","name":"old","plugins":[{"type":"alpha"}]})"))
                  .has_value());
  auto old = inv.check(attachment_);
  ASSERT_FALSE(old.has_value());
  EXPECT_EQ(old.error().code, ENOTSUP);
  // Before 0.4.0 DEL gets no prevResult.
  forget_calls();
  ASSERT_TRUE(inv.del(attachment_, nullptr).has_value());
  ASSERT_EQ(calls().size(), 1u);
  EXPECT_FALSE(calls()[0].input.contains("prevResult"));
}

TEST_F(CniInvokerTest, RejectsBadIdsAndMissingNetns) {
  auto inv = invoker();
  CniAttachment bad = attachment_;
  bad.container_id = "../etc";
  EXPECT_EQ(inv.add(bad, two_plugins()).error().code, EINVAL);
  bad = attachment_;
  bad.ifname = "this-name-is-too-long";
  EXPECT_EQ(inv.del(bad, nullptr).error().code, EINVAL);
  bad = attachment_;
  bad.args.emplace_back("K8S_POD_NAME", "x;K8S_POD_NAMESPACE=evil");
  EXPECT_EQ(inv.add(bad, two_plugins()).error().code, EINVAL);
  bad = attachment_;
  bad.netns_path = "";
  EXPECT_EQ(inv.add(bad, two_plugins()).error().code, EINVAL);
  EXPECT_TRUE(calls().empty());
  EXPECT_FALSE(inv.has_cache("../etc", "eth0"));
}

}  // namespace
}  // namespace berth::network

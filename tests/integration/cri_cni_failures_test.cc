// CNI going wrong under RunPodSandbox and StopPodSandbox: a conflist naming a
// plugin that does not exist, a plugin that fails ADD, one that hangs past the
// timeout, and one whose DEL fails. None may leak a netns, a veth or an IP, and a
// failing DEL must not leave a pod stuck terminating; what DEL could not release is
// released by the sweep at the next start.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

using ::grpc::StatusCode;

// A plugin that passes ADD's prevResult through and fails DEL while its flag file
// exists; one that fails ADD; one that hangs in ADD.
constexpr const char* kFlakyPlugin = R"(#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ.get("CNI_COMMAND")
if cmd == "VERSION":
    print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}))
elif cmd == "ADD":
    print(json.dumps(conf.get("prevResult", {"cniVersion": "1.0.0"})))
elif cmd == "DEL" and os.path.exists(conf["flag"]):
    print(json.dumps({"cniVersion": "1.0.0", "code": 100, "msg": "injected DEL failure"}))
    sys.exit(1)
)";
constexpr const char* kFailingPlugin = R"(#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":100,"msg":"injected ADD failure"}'
  exit 1
fi
)";
constexpr const char* kHangingPlugin = R"(#!/bin/sh
cat >/dev/null
# A child, not exec: the timeout must take the plugin's whole process group.
if [ "$CNI_COMMAND" = ADD ]; then sleep 601; fi
)";

class CriCniFailuresTest : public SharedBerthdTest<CriCniFailuresTest> {
 public:
  static void prepare(BerthdFixture& d) {
    std::string dir = plugin_dir(d);
    ::mkdir(dir.c_str(), 0755);
    for (auto [name, text] : {std::pair{"berth-test-flaky", kFlakyPlugin}, std::pair{"berth-test-fail", kFailingPlugin},
                              std::pair{"berth-test-hang", kHangingPlugin}}) {
      std::ofstream(dir + "/" + name) << text;
      ::chmod((dir + "/" + name).c_str(), 0755);
    }
    d.set_config_toml("[cni]\ntimeout_seconds = 3\n");
  }
  static std::vector<std::string> daemon_args(const BerthdFixture& d) { return {"--cni-bin-dir", plugin_dir(d)}; }
  static std::string plugin_dir(const BerthdFixture& d) { return d.dir() + "/plugins"; }

 protected:
  void TearDown() override {
    if (d_) std::remove(conflist().c_str());
    SharedBerthdTest::TearDown();
  }
  // A network that sorts before the fixture's own: its bridge and IPAM, then `extra`.
  std::string conflist() const { return d_->cni_conf_dir() + "/00-failing.conflist"; }
  void use_network(const std::string& extra_plugin) {
    std::ofstream(conflist()) << R"({"cniVersion":"1.0.0","name":"berth-test","plugins":[)"
                              << R"({"type":"bridge","bridge":")" << d_->bridge()
                              << R"(","isGateway":true,"ipMasq":false,)"
                              << R"("ipam":{"type":"host-local","ranges":[[{"subnet":")" << d_->subnet_prefix()
                              << R"(0/24"}]],"dataDir":")" << d_->ipam_dir() << R"("}},)" << extra_plugin << "]}";
  }
};

TEST_F(CriCniFailuresTest, ConflistWithAMissingPlugin) {
  use_network(R"({"type":"berth-no-such-plugin"})");
  auto s = d_->try_run_pod(d_->pod_config("missing-plugin"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("berth-no-such-plugin"), std::string::npos) << s.error_message();
  EXPECT_TRUE(d_->list_pods().empty());
  EXPECT_EQ(d_->host_leftovers(), "") << "the bridge plugin's veth and IP must be undone";
}

TEST_F(CriCniFailuresTest, PluginFailingAdd) {
  use_network(R"({"type":"berth-test-fail"})");
  auto s = d_->try_run_pod(d_->pod_config("failing-plugin"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("injected ADD failure"), std::string::npos) << s.error_message();
  EXPECT_TRUE(d_->list_pods().empty());
  EXPECT_EQ(d_->host_leftovers(), "");
  // The node recovers as soon as the network does.
  std::remove(conflist().c_str());
  std::string id;
  ASSERT_TRUE(d_->try_run_pod(d_->pod_config("after-failure"), &id).ok());
  ASSERT_TRUE(d_->remove_pod(id).ok());
}

TEST_F(CriCniFailuresTest, PluginHangingInAdd) {
  use_network(R"({"type":"berth-test-hang"})");
  auto began = std::chrono::steady_clock::now();
  auto s = d_->try_run_pod(d_->pod_config("hanging-plugin"));
  auto took = std::chrono::steady_clock::now() - began;
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("timed out"), std::string::npos) << s.error_message();
  EXPECT_LT(took, std::chrono::seconds(15)) << "the 3s CNI timeout did not hold";
  EXPECT_TRUE(processes_with("berth-test-hang").empty()) << "the hung plugin was not killed";
  EXPECT_TRUE(processes_with("sleep 601").empty()) << "the hung plugin's child was not killed";
  EXPECT_TRUE(d_->list_pods().empty());
  EXPECT_EQ(d_->host_leftovers(), "");
}

TEST_F(CriCniFailuresTest, FailingDelDoesNotStickThePod) {
  std::string flag = d_->dir() + "/fail-del";
  use_network(R"({"type":"berth-test-flaky","flag":")" + flag + R"("})");
  std::string id;
  ASSERT_TRUE(d_->try_run_pod(d_->pod_config("flaky-del"), &id).ok());
  std::string netns = d_->state() + "/pods/" + id + "/ns/net";
  ASSERT_NE(read_text_file("/proc/self/mountinfo").find(netns), std::string::npos);
  std::ofstream(flag) << "fail";

  auto began = std::chrono::steady_clock::now();
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse stopped;
  auto s = d_->runtime().StopPodSandbox(call_context().get(), stop, &stopped);
  EXPECT_TRUE(s.ok()) << "a failing CNI DEL must not keep the pod from stopping: " << s.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10));
  EXPECT_EQ(d_->pod_status(id).state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(read_text_file("/proc/self/mountinfo").find(netns), std::string::npos) << "netns still pinned";
  EXPECT_EQ(d_->bridge_ports(), 0) << "the veth went with the namespace";

  began = std::chrono::steady_clock::now();
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(id);
  v1::RemovePodSandboxResponse removed;
  s = d_->runtime().RemovePodSandbox(call_context().get(), rm, &removed);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10));
  EXPECT_TRUE(d_->list_pods().empty());

  // What only DEL can release (the IP) waits for the sweep at the next start.
  std::remove(flag.c_str());
  ASSERT_TRUE(d_->terminate());
  ASSERT_TRUE(d_->start(daemon_args(*d_))) << d_->error();
  EXPECT_EQ(d_->host_leftovers(), "") << "the sweep at start did not release the attachment";
  EXPECT_EQ(d_->leftovers_of(id), "");
}

}  // namespace
}  // namespace berth::testing

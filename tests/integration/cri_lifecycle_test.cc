// berthd over CRI as kubelet drives it: pods and containers end to end, through the
// real gRPC client, real namespaces, cgroups, overlayfs and CNI plugins.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CriLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = BerthdFixture::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    d_ = std::make_unique<BerthdFixture>();
    ASSERT_TRUE(d_->import_images()) << d_->error();
    ASSERT_TRUE(d_->start()) << d_->error();
  }
  std::unique_ptr<BerthdFixture> d_;
};

TEST_F(CriLifecycleTest, VersionAndStatus) {
  v1::VersionRequest vreq;
  v1::VersionResponse vresp;
  ASSERT_TRUE(d_->runtime().Version(call_context().get(), vreq, &vresp).ok());
  EXPECT_EQ(vresp.runtime_name(), "berth");
  EXPECT_EQ(vresp.runtime_api_version(), "v1");
  v1::StatusRequest sreq;
  v1::StatusResponse sresp;
  ASSERT_TRUE(d_->runtime().Status(call_context().get(), sreq, &sresp).ok());
  std::map<std::string, bool> conditions;
  for (auto& c : sresp.status().conditions()) conditions[c.type()] = c.status();
  EXPECT_TRUE(conditions["RuntimeReady"]);
  EXPECT_TRUE(conditions["NetworkReady"]);
}

TEST_F(CriLifecycleTest, PodRunsContainerLogsAndExitCode) {
  auto pod = d_->pod_config("life");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty()) << d_->daemon_output();
  auto ps = d_->pod_status(pod_id);
  EXPECT_EQ(ps.state(), v1::SANDBOX_READY);
  EXPECT_TRUE(ps.network().ip().starts_with(d_->subnet_prefix())) << ps.network().ip();

  auto config = d_->container_config(
      "main", {"/bin/sh", "-c", "echo out-line; echo err-line >&2; hostname; cat /etc/resolv.conf >/dev/null; exit 3"});
  std::string id = d_->create_container(pod_id, config, pod);
  ASSERT_FALSE(id.empty()) << d_->daemon_output();
  EXPECT_EQ(d_->container_status(id).state(), v1::CONTAINER_CREATED);
  ASSERT_TRUE(d_->start_container(id));
  auto exited = d_->wait_exited(id, std::chrono::seconds(20));
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code(), 3);
  EXPECT_EQ(exited->reason(), "Error");
  EXPECT_GT(exited->finished_at(), exited->started_at());
  EXPECT_GE(exited->started_at(), exited->created_at());

  std::string log = read_all(pod.log_directory() + "/main.log");
  std::regex line(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) F (.*)$)");
  std::istringstream lines(log);
  std::map<std::string, std::string> seen;
  for (std::string l; std::getline(lines, l);) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, line)) << "not a CRI log line: " << l;
    seen[m[2]] = m[1];
  }
  EXPECT_EQ(seen["out-line"], "stdout");
  EXPECT_EQ(seen["err-line"], "stderr");
  EXPECT_EQ(seen["life"], "stdout");  // the pod's hostname

  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriLifecycleTest, StopContainerSignalsThenKills) {
  auto pod = d_->pod_config("stop");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  // Ignores SIGTERM, so only the SIGKILL after the timeout ends it.
  auto config =
      d_->container_config("stubborn", {"/bin/sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"});
  std::string id = d_->create_container(pod_id, config, pod);
  ASSERT_TRUE(d_->start_container(id));
  ASSERT_TRUE(d_->wait_log_line(pod, config, "ready"));  // a SIGTERM before the trap would end it
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(1);
  v1::StopContainerResponse resp;
  auto began = std::chrono::steady_clock::now();
  auto s = d_->runtime().StopContainer(call_context().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto took = std::chrono::steady_clock::now() - began;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  auto st = d_->container_status(id);
  EXPECT_EQ(st.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st.exit_code(), 137);
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriLifecycleTest, DaemonKilledContainersSurviveAndExitsAreKept) {
  auto pod = d_->pod_config("recover");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string ip = d_->pod_status(pod_id).network().ip();
  std::string longer = d_->create_container(pod_id, d_->container_config("long", {"/bin/sleep", "1000"}), pod);
  std::string shorter =
      d_->create_container(pod_id, d_->container_config("short", {"/bin/sh", "-c", "sleep 1; exit 7"}), pod);
  ASSERT_TRUE(d_->start_container(longer));
  ASSERT_TRUE(d_->start_container(shorter));
  auto shorter_pid = nlohmann::json::parse(d_->container_info(shorter)).value("pid", 0);
  ASSERT_GT(shorter_pid, 0);

  d_->kill9();
  // The short one exits while nobody is listening.
  ASSERT_TRUE(wait_process_gone(shorter_pid));
  ASSERT_TRUE(d_->start()) << d_->error();

  EXPECT_EQ(d_->container_status(longer).state(), v1::CONTAINER_RUNNING);
  auto st = d_->wait_exited(shorter, std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code(), 7);
  auto ps = d_->pod_status(pod_id);
  EXPECT_EQ(ps.state(), v1::SANDBOX_READY);
  EXPECT_EQ(ps.network().ip(), ip) << "the pod IP must survive a daemon restart";

  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

}  // namespace
}  // namespace berth::testing

// berthd killed with -9 in the middle of RunPodSandbox, StopPodSandbox,
// CreateContainer and StopContainer (through its hidden --debug-crash-point flag),
// and with its database damaged or missing rows while it was down: the restarted
// daemon must be consistent (kubelet's retry works), report what it skipped, and a
// RemovePodSandbox must leave the host clean.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

using ::grpc::StatusCode;

class CriRecoveryTest : public SharedBerthdTest<CriRecoveryTest> {
 protected:
  // Restarts the daemon so that it kills itself at `point`.
  void arm(const std::string& point) {
    ASSERT_TRUE(d_->terminate()) << d_->daemon_output();
    ASSERT_TRUE(d_->start({"--debug-crash-point", point})) << d_->error();
  }
  // The call that hit the crash point failed as a dead server's does, and the
  // daemon is gone; then it is started again without the crash point.
  void expect_crashed_and_restart(const ::grpc::Status& s) {
    EXPECT_FALSE(s.ok()) << "the call returned although the daemon should have died in it";
    EXPECT_TRUE(s.error_code() == StatusCode::UNAVAILABLE || s.error_code() == StatusCode::CANCELLED ||
                s.error_code() == StatusCode::UNKNOWN || s.error_code() == StatusCode::INTERNAL)
        << s.error_code() << ": " << s.error_message();
    ASSERT_TRUE(d_->exited_within(std::chrono::seconds(10))) << "berthd did not die at the crash point";
  }
  void restart() { ASSERT_TRUE(d_->start()) << d_->error(); }
  std::string recovery_report() {
    v1::StatusRequest req;
    req.set_verbose(true);
    v1::StatusResponse resp;
    EXPECT_TRUE(d_->runtime().Status(call_context().get(), req, &resp).ok());
    auto it = resp.info().find("recovery");
    return it == resp.info().end() ? "" : it->second;
  }
};

class CriRunPodCrashTest : public CriRecoveryTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CriRunPodCrashTest, RolledBackAndRetryable) {
  arm(GetParam());
  auto config = d_->pod_config("crash-run");
  expect_crashed_and_restart(d_->try_run_pod(config));
  if (std::string(GetParam()) == "run_pod.after_cni_add") {
    EXPECT_EQ(d_->bridge_ports(), 1) << "the crash should have come after the veth was made";
  }
  restart();
  EXPECT_TRUE(d_->list_pods().empty()) << "a pod RunPodSandbox never returned must not be listed";
  EXPECT_EQ(d_->host_leftovers(), "") << "after the rollback at start";
  EXPECT_NE(recovery_report().find("rolled back"), std::string::npos) << recovery_report();
  // kubelet retries with the same metadata.
  std::string id;
  auto s = d_->try_run_pod(config, &id);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(d_->pod_status(id).network().ip().starts_with(d_->subnet_prefix()));
  ASSERT_TRUE(d_->remove_pod(id).ok());
  EXPECT_EQ(d_->leftovers_of(id), "");
}

INSTANTIATE_TEST_SUITE_P(CriCrash, CriRunPodCrashTest,
                         ::testing::Values("run_pod.after_namespaces", "run_pod.after_cni_add"), [](const auto& info) {
                           std::string name = info.param;
                           for (auto& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST_F(CriRecoveryTest, CrashInStopPodSandbox) {
  auto pod = d_->pod_config("crash-stop-pod");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string cid = d_->create_container(pod_id, d_->container_config("sleeper", {"/bin/sleep", "1000"}), pod);
  ASSERT_TRUE(d_->start_container(cid));
  arm("stop_pod.after_containers");
  expect_crashed_and_restart(d_->stop_pod(pod_id));
  restart();
  EXPECT_EQ(d_->container_status(cid).state(), v1::CONTAINER_EXITED) << "it was killed before the crash";
  // kubelet stops it again.
  auto s = d_->stop_pod(pod_id);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(d_->pod_status(pod_id).state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(d_->bridge_ports(), 0);
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

class CriCreateCrashTest : public CriRecoveryTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CriCreateCrashTest, RolledBackAndRetryable) {
  auto pod = d_->pod_config("crash-create");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  arm(GetParam());
  auto config = d_->container_config("made-twice", {"/bin/sh", "-c", "echo second-try"});
  expect_crashed_and_restart(d_->try_create_container(pod_id, config, pod));
  restart();
  EXPECT_TRUE(d_->list_containers().empty()) << "a container CreateContainer never returned must not be listed";
  EXPECT_EQ(d_->pod_status(pod_id).state(), v1::SANDBOX_READY);
  // Nothing of it is left: dir, rootfs mount, snapshot, shim, launcher state.
  EXPECT_EQ(d_->host_leftovers().find("container"), std::string::npos) << d_->host_leftovers();
  EXPECT_TRUE(processes_with(d_->state() + "/containers/").empty());
  EXPECT_NE(recovery_report().find("rolled back"), std::string::npos) << recovery_report();
  // kubelet retries with the same name and attempt.
  auto st = d_->run_to_exit(pod_id, config, pod);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code(), 0);
  EXPECT_EQ(cri_log_lines(read_text_file(pod.log_directory() + "/made-twice.log")),
            std::vector<std::string>{"second-try"});
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

INSTANTIATE_TEST_SUITE_P(CriCrash, CriCreateCrashTest,
                         ::testing::Values("create_container.after_rootfs", "create_container.after_shim"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (auto& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST_F(CriRecoveryTest, CrashInStopContainer) {
  auto pod = d_->pod_config("crash-stop");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  // Exits on SIGTERM, while the daemon is dead.
  auto polite_config = d_->container_config(
      "polite", {"/bin/sh", "-c", "trap 'exit 143' TERM; echo ready; while true; do sleep 0.1; done"});
  std::string polite = d_->create_container(pod_id, polite_config, pod);
  // Ignores SIGTERM: only a SIGKILL ends it.
  auto stubborn_config =
      d_->container_config("stubborn", {"/bin/sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"});
  std::string stubborn = d_->create_container(pod_id, stubborn_config, pod);
  ASSERT_TRUE(d_->start_container(polite));
  ASSERT_TRUE(d_->start_container(stubborn));
  ASSERT_TRUE(d_->wait_log_line(pod, polite_config, "ready"));
  ASSERT_TRUE(d_->wait_log_line(pod, stubborn_config, "ready"));
  int polite_pid = nlohmann::json::parse(d_->container_info(polite)).value("pid", 0);
  ASSERT_GT(polite_pid, 0);
  arm("stop_container.after_signal");
  expect_crashed_and_restart(d_->stop_container(polite, 30));
  // It acts on the signal while nobody listens.
  EXPECT_TRUE(wait_process_gone(polite_pid)) << "the stop signal did not reach it";
  restart();
  auto st = d_->wait_exited(polite, std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value()) << "the exit while berthd was down was lost";
  EXPECT_EQ(st->exit_code(), 143);
  EXPECT_GT(st->finished_at(), st->started_at());
  ASSERT_TRUE(d_->stop_container(polite, 30).ok()) << "stopping it again is fine";

  EXPECT_EQ(d_->container_status(stubborn).state(), v1::CONTAINER_RUNNING);
  auto began = std::chrono::steady_clock::now();
  ASSERT_TRUE(d_->stop_container(stubborn, 1).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(900));
  EXPECT_EQ(d_->container_status(stubborn).exit_code(), 137);
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriRecoveryTest, ContainersAreReadoptedAfterRestart) {
  auto pod = d_->pod_config("readopt");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto later = d_->container_config("later", {"/bin/echo", "started-late"});
  std::string created = d_->create_container(pod_id, later, pod);
  auto chatty =
      d_->container_config("chatty", {"/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo n-$i; sleep 0.05; done"});
  std::string running = d_->create_container(pod_id, chatty, pod);
  ASSERT_TRUE(d_->start_container(running));
  ASSERT_TRUE(d_->wait_log_line(pod, chatty, "n-2"));
  d_->kill9();
  restart();

  // A container created before the restart starts after it.
  EXPECT_EQ(d_->container_status(created).state(), v1::CONTAINER_CREATED);
  ASSERT_TRUE(d_->start_container(created));
  auto st = d_->wait_exited(created, std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code(), 0);
  EXPECT_EQ(cri_log_lines(read_text_file(pod.log_directory() + "/later.log")),
            std::vector<std::string>{"started-late"});

  // The running one is reachable through its shim: exec, log reopening, stop.
  v1::ExecSyncResponse out;
  auto s = d_->exec_sync(running, {"/bin/echo", "still-here"}, &out, 10);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.stdout(), "still-here\n");
  std::string path = pod.log_directory() + "/chatty.log";
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  v1::ReopenContainerLogRequest reopen;
  reopen.set_container_id(running);
  v1::ReopenContainerLogResponse reopened;
  s = d_->runtime().ReopenContainerLog(call_context().get(), reopen, &reopened);
  ASSERT_TRUE(s.ok()) << s.error_message();
  bool fresh = false;
  for (int i = 0; i < 200 && !fresh; ++i) {
    fresh = !cri_log_lines(read_text_file(path)).empty();
    if (!fresh) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(fresh) << "nothing written to the reopened log";
  ASSERT_TRUE(d_->stop_container(running, 1).ok());
  EXPECT_EQ(d_->container_status(running).state(), v1::CONTAINER_EXITED);
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriRecoveryTest, PodIpAndNetnsAreDurableWhenRunPodSandboxReturns) {
  auto pod = d_->pod_config("durable");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  d_->kill9();  // at once: whatever RunPodSandbox promised must be on disk already
  restart();
  auto st = d_->pod_status(pod_id);
  EXPECT_EQ(st.state(), v1::SANDBOX_READY);
  std::string ip = st.network().ip();
  ASSERT_TRUE(ip.starts_with(d_->subnet_prefix())) << "the pod IP did not survive: '" << ip << "'";
  auto info = nlohmann::json::parse(d_->pod_info(pod_id));
  std::string netns = info.value("netNamespacePath", "");
  EXPECT_NE(read_text_file("/proc/self/mountinfo").find(netns), std::string::npos) << "netns " << netns;
  // The namespace behind it is the one with that address.
  auto c = d_->container_config("addr", {"/bin/sh", "-c", "busybox ip -4 addr show eth0 | awk '/inet /{print $2}'"});
  auto exited = d_->run_to_exit(pod_id, c, pod);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(cri_log_lines(read_text_file(pod.log_directory() + "/addr.log")), std::vector<std::string>{ip + "/24"});
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriRecoveryTest, CorruptRecordsAreSkippedReportedAndHarmless) {
  auto a = d_->pod_config("keeps");
  std::string a_id = d_->run_pod(a);
  auto b = d_->pod_config("corrupt");
  std::string b_id = d_->run_pod(b);
  ASSERT_FALSE(a_id.empty() || b_id.empty());
  std::string b_ip = d_->pod_status(b_id).network().ip();
  auto done = d_->run_to_exit(a_id, d_->container_config("done", {"/bin/true"}), a);
  ASSERT_TRUE(done.has_value());
  std::string done_id = done->id();
  std::string running = d_->create_container(a_id, d_->container_config("running", {"/bin/sleep", "1000"}), a);
  ASSERT_TRUE(d_->start_container(running));

  d_->kill9();
  auto pod_data = d_->sql("SELECT data FROM pods WHERE id = ?", {b_id});
  auto ctr_data = d_->sql("SELECT data FROM containers WHERE id = ?", {done_id});
  ASSERT_TRUE(pod_data && ctr_data && !pod_data->empty() && !ctr_data->empty());
  pod_data->pop_back();  // the row's newline
  ctr_data->pop_back();
  // Half-written JSON, as a torn write would leave it.
  ASSERT_TRUE(d_->sql("UPDATE pods SET data = ? WHERE id = ?", {pod_data->substr(0, pod_data->size() / 2), b_id}));
  ASSERT_TRUE(d_->sql("UPDATE containers SET data = ? WHERE id = ?", {"{\"spec\": [", done_id}));
  restart();

  std::string report = recovery_report();
  EXPECT_NE(report.find("skipped pod " + b_id), std::string::npos) << report;
  EXPECT_NE(report.find("skipped container " + done_id), std::string::npos) << report;
  auto listed = d_->list_pods();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id(), a_id);
  auto ctrs = d_->list_containers();
  ASSERT_EQ(ctrs.size(), 1u);
  EXPECT_EQ(ctrs[0].id(), running);
  EXPECT_EQ(d_->container_status(running).state(), v1::CONTAINER_RUNNING);
  // What the unreadable record names is not swept as an orphan: it may be repaired.
  EXPECT_NE(read_text_file("/proc/self/mountinfo").find(d_->state() + "/pods/" + b_id), std::string::npos)
      << "the skipped pod's namespaces were torn down";
  // The daemon works as ever.
  auto c = d_->pod_config("after-corruption");
  std::string c_id = d_->run_pod(c);
  ASSERT_FALSE(c_id.empty());
  ASSERT_TRUE(d_->remove_pod(c_id).ok());

  // Repaired, the records come back whole.
  d_->kill9();
  ASSERT_TRUE(d_->sql("UPDATE pods SET data = ? WHERE id = ?", {*pod_data, b_id}));
  ASSERT_TRUE(d_->sql("UPDATE containers SET data = ? WHERE id = ?", {*ctr_data, done_id}));
  restart();
  EXPECT_EQ(d_->pod_status(b_id).network().ip(), b_ip);
  EXPECT_EQ(d_->container_status(done_id).state(), v1::CONTAINER_EXITED);
  ASSERT_TRUE(d_->remove_pod(a_id).ok());
  ASSERT_TRUE(d_->remove_pod(b_id).ok());
  EXPECT_EQ(d_->leftovers_of(a_id), "");
  EXPECT_EQ(d_->leftovers_of(b_id), "");
}

TEST_F(CriRecoveryTest, OrphansWithoutRecordsAreSweptAtStart) {
  // With a pod pid namespace, so that there is a holder process to find too.
  auto pod = d_->pod_config("orphan");
  pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  int holder = nlohmann::json::parse(d_->pod_info(pod_id)).value("pid", 0);
  ASSERT_GT(holder, 0);
  auto config = d_->container_config("left", {"/bin/sleep", "1000"});
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string cid = d_->create_container(pod_id, config, pod);
  ASSERT_TRUE(d_->start_container(cid));
  int pid = nlohmann::json::parse(d_->container_info(cid)).value("pid", 0);
  ASSERT_GT(pid, 0);

  d_->kill9();
  // The records are gone; everything they named is still on the node.
  ASSERT_TRUE(d_->sql("DELETE FROM containers WHERE pod_id = ?", {pod_id}));
  ASSERT_TRUE(d_->sql("DELETE FROM pods WHERE id = ?", {pod_id}));
  restart();
  EXPECT_TRUE(d_->list_pods().empty());
  EXPECT_TRUE(wait_process_gone(pid)) << "the orphan container's process survived the sweep";
  EXPECT_TRUE(wait_process_gone(holder)) << "the orphan pod's pid namespace holder survived the sweep";
  EXPECT_EQ(d_->host_leftovers(), "");
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
  std::string report = recovery_report();
  EXPECT_NE(report.find("orphan"), std::string::npos) << report;
}

}  // namespace
}  // namespace berth::testing

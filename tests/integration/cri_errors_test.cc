// Bad input over CRI: each refused request gets the code kubelet acts on
// (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION) and a message
// that names the problem, and leaves nothing behind: no pod, netns, veth, IP, mount,
// cgroup, snapshot or process.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

using ::grpc::StatusCode;

class CriErrorsTest : public SharedBerthdTest<CriErrorsTest> {};

// Code and a message that contains `needle`.
#define EXPECT_CRI_ERROR(status, code, needle)                                             \
  do {                                                                                     \
    auto s_ = (status);                                                                    \
    EXPECT_EQ(s_.error_code(), code) << s_.error_message();                                \
    EXPECT_NE(s_.error_message().find(needle), std::string::npos)                          \
        << "message \"" << s_.error_message() << "\" should mention \"" << needle << "\""; \
  } while (0)

TEST_F(CriErrorsTest, RunPodSandboxRefusesBadConfigs) {
  v1::RunPodSandboxRequest empty;
  v1::RunPodSandboxResponse resp;
  EXPECT_CRI_ERROR(d_->runtime().RunPodSandbox(call_context().get(), empty, &resp), StatusCode::INVALID_ARGUMENT,
                   "config");

  auto no_metadata = d_->pod_config("bad");
  no_metadata.clear_metadata();
  EXPECT_CRI_ERROR(d_->try_run_pod(no_metadata), StatusCode::INVALID_ARGUMENT, "metadata");
  auto no_uid = d_->pod_config("bad");
  no_uid.mutable_metadata()->clear_uid();
  EXPECT_CRI_ERROR(d_->try_run_pod(no_uid), StatusCode::INVALID_ARGUMENT, "uid");
  auto host_sysctl = d_->pod_config("bad");
  (*host_sysctl.mutable_linux()->mutable_sysctls())["vm.swappiness"] = "10";
  EXPECT_CRI_ERROR(d_->try_run_pod(host_sysctl), StatusCode::INVALID_ARGUMENT, "vm.swappiness");
  auto net_sysctl_host_net = d_->pod_config("bad");
  net_sysctl_host_net.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(v1::NODE);
  (*net_sysctl_host_net.mutable_linux()->mutable_sysctls())["net.ipv4.ip_forward"] = "1";
  EXPECT_CRI_ERROR(d_->try_run_pod(net_sysctl_host_net), StatusCode::INVALID_ARGUMENT, "net.ipv4.ip_forward");
  auto bad_port = d_->pod_config("bad");
  auto* pm = bad_port.add_port_mappings();
  pm->set_container_port(80);
  pm->set_host_port(70000);
  EXPECT_CRI_ERROR(d_->try_run_pod(bad_port), StatusCode::INVALID_ARGUMENT, "70000");
  auto bad_dns = d_->pod_config("bad");
  bad_dns.mutable_dns_config()->add_servers("1.1.1.1\nnameserver 6.6.6.6");
  EXPECT_CRI_ERROR(d_->try_run_pod(bad_dns), StatusCode::INVALID_ARGUMENT, "newline");
  auto bad_seccomp = d_->pod_config("bad");
  bad_seccomp.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
      v1::SecurityProfile::Localhost);
  bad_seccomp.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_localhost_ref("relative.json");
  EXPECT_CRI_ERROR(d_->try_run_pod(bad_seccomp), StatusCode::INVALID_ARGUMENT, "relative.json");
  v1::RunPodSandboxRequest handler;
  *handler.mutable_config() = d_->pod_config("bad");
  handler.set_runtime_handler("kata");
  EXPECT_CRI_ERROR(d_->runtime().RunPodSandbox(call_context().get(), handler, &resp), StatusCode::INVALID_ARGUMENT,
                   "kata");

  EXPECT_TRUE(d_->list_pods().empty());
  EXPECT_EQ(d_->host_leftovers(), "");
}

TEST_F(CriErrorsTest, DuplicatePodNameAndAttempt) {
  auto config = d_->pod_config("dup");
  std::string first;
  ASSERT_TRUE(d_->try_run_pod(config, &first).ok());
  std::string ip = d_->pod_status(first).network().ip();
  EXPECT_CRI_ERROR(d_->try_run_pod(config), StatusCode::ALREADY_EXISTS, config.metadata().name());
  // The refused one made nothing: one pod, one veth, one IP.
  EXPECT_EQ(d_->list_pods().size(), 1u);
  EXPECT_EQ(d_->bridge_ports(), 1);
  auto st = d_->pod_status(first);
  EXPECT_EQ(st.state(), v1::SANDBOX_READY);
  EXPECT_EQ(st.network().ip(), ip);

  // The next attempt of the same pod is a new sandbox.
  config.mutable_metadata()->set_attempt(1);
  std::string second;
  ASSERT_TRUE(d_->try_run_pod(config, &second).ok());
  EXPECT_NE(second, first);
  EXPECT_EQ(d_->pod_status(second).metadata().attempt(), 1u);
  ASSERT_TRUE(d_->remove_pod(first).ok());
  ASSERT_TRUE(d_->remove_pod(second).ok());
  EXPECT_EQ(d_->host_leftovers(), "");
}

TEST_F(CriErrorsTest, CreateContainerRefusesBadConfigs) {
  auto pod = d_->pod_config("badctr");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto ok = [&] { return d_->container_config("c", {"/bin/true"}); };

  v1::CreateContainerRequest no_config;
  no_config.set_pod_sandbox_id(pod_id);
  v1::CreateContainerResponse resp;
  EXPECT_CRI_ERROR(d_->runtime().CreateContainer(call_context().get(), no_config, &resp), StatusCode::INVALID_ARGUMENT,
                   "config");
  auto c = ok();
  c.clear_metadata();
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT, "metadata");
  EXPECT_CRI_ERROR(d_->try_create_container("ffffffffffffnothere", ok(), pod), StatusCode::NOT_FOUND,
                   "ffffffffffffnothere");

  c = ok();
  c.mutable_image()->set_image("example.com/not/present:1.0");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::NOT_FOUND, "example.com/not/present:1.0");

  c = ok();
  auto* m = c.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(d_->dir() + "/no-such-dir");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::NOT_FOUND, "no-such-dir");

  // Host-to-container propagation needs a shared or slave source; the fixture's
  // dir is on a private mount here.
  std::string vol = d_->dir() + "/private-vol";
  ::mkdir(vol.c_str(), 0755);
  c = ok();
  m = c.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(vol);
  m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  auto propagation = d_->try_create_container(pod_id, c, pod);
  if (propagation.ok()) {
    // The host's / is shared on this machine: then it must have worked.
    v1::RemoveContainerRequest rm;
    v1::RemoveContainerResponse rm_resp;
    v1::ListContainersResponse list;
    ASSERT_TRUE(d_->runtime().ListContainers(call_context().get(), {}, &list).ok());
    for (auto& ctr : list.containers()) {
      rm.set_container_id(ctr.id());
      d_->runtime().RemoveContainer(call_context().get(), rm, &rm_resp);
    }
  } else {
    EXPECT_CRI_ERROR(propagation, StatusCode::INVALID_ARGUMENT, "propagation");
  }

  c = ok();
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Localhost);
  sc->mutable_seccomp()->set_localhost_ref(d_->dir() + "/no-such-profile.json");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::NOT_FOUND, "no-such-profile.json");
  std::ofstream(d_->dir() + "/broken-profile.json") << "{\"defaultAction\": ";
  sc->mutable_seccomp()->set_localhost_ref(d_->dir() + "/broken-profile.json");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT, "broken-profile.json");
  sc->clear_seccomp();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  sc->set_seccomp_profile_path("my-profile");  // a name without localhost/
#pragma GCC diagnostic pop
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT, "my-profile");

  c = ok();
  c.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_add_capabilities("CAP_NO_SUCH_THING");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT, "CAP_NO_SUCH_THING");
  c = ok();
  c.mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(10);
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT, "run_as_group");
  c = ok();
  c.mutable_linux()->mutable_security_context()->set_run_as_username("nosuchuser");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::NOT_FOUND, "nosuchuser");
  c = ok();
  c.mutable_linux()->mutable_security_context()->set_privileged(true);
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT, "privileged");
  c = ok();
  auto* dev = c.add_devices();
  dev->set_host_path("/dev/no-such-device");
  dev->set_container_path("/dev/x");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::NOT_FOUND, "/dev/no-such-device");
  c = ok();
  c.set_working_dir("relative/dir");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT, "relative/dir");
  c = ok();
  c.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  c.mutable_linux()->mutable_resources()->set_memory_swap_limit_in_bytes(32 << 20);
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::INVALID_ARGUMENT,
                   "memory_swap_limit_in_bytes");
  c = ok();
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::TARGET);
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_target_id("ffffffffnothere");
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, c, pod), StatusCode::NOT_FOUND, "ffffffffnothere");

  // None of them left a container, a rootfs, a snapshot, a shim.
  EXPECT_TRUE(d_->list_containers().empty());
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->host_leftovers(), "");
}

TEST_F(CriErrorsTest, DuplicateContainerNameAndAttempt) {
  auto pod = d_->pod_config("dupctr");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto config = d_->container_config("same", {"/bin/sleep", "1000"});
  std::string first = d_->create_container(pod_id, config, pod);
  ASSERT_TRUE(d_->start_container(first));
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, config, pod), StatusCode::ALREADY_EXISTS, "same");
  EXPECT_EQ(d_->list_containers().size(), 1u);
  EXPECT_EQ(d_->container_status(first).state(), v1::CONTAINER_RUNNING);
  // kubelet's restart of the container: the next attempt.
  config.mutable_metadata()->set_attempt(1);
  std::string second;
  ASSERT_TRUE(d_->try_create_container(pod_id, config, pod, &second).ok());
  EXPECT_EQ(d_->container_status(second).metadata().attempt(), 1u);
  // Same name in another pod is fine.
  auto other = d_->pod_config("dupctr2");
  std::string other_id = d_->run_pod(other);
  ASSERT_TRUE(d_->try_create_container(other_id, d_->container_config("same", {"/bin/true"}), other).ok());
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  ASSERT_TRUE(d_->remove_pod(other_id).ok());
  EXPECT_EQ(d_->host_leftovers(), "");
}

TEST_F(CriErrorsTest, CallsInTheWrongState) {
  auto pod = d_->pod_config("state");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto exited = d_->run_to_exit(pod_id, d_->container_config("once", {"/bin/true"}), pod);
  ASSERT_TRUE(exited.has_value());

  v1::StartContainerRequest start;
  start.set_container_id(exited->id());
  v1::StartContainerResponse started;
  auto s = d_->runtime().StartContainer(call_context().get(), start, &started);
  EXPECT_NE(s.error_code(), StatusCode::OK) << "an exited container cannot start again";
  EXPECT_FALSE(s.error_message().empty());
  v1::ExecSyncResponse out;
  EXPECT_CRI_ERROR(d_->exec_sync(exited->id(), {"/bin/true"}, &out), StatusCode::FAILED_PRECONDITION, "not running");
  v1::ReopenContainerLogRequest reopen;
  reopen.set_container_id(exited->id());
  v1::ReopenContainerLogResponse reopened;
  EXPECT_CRI_ERROR(d_->runtime().ReopenContainerLog(call_context().get(), reopen, &reopened),
                   StatusCode::FAILED_PRECONDITION, "not running");
  v1::StopContainerRequest stop;
  stop.set_container_id(exited->id());
  v1::StopContainerResponse stopped;
  EXPECT_TRUE(d_->runtime().StopContainer(call_context().get(), stop, &stopped).ok()) << "stopping an exited one is ok";

  start.set_container_id("ffffffffffffnothere");
  EXPECT_EQ(d_->runtime().StartContainer(call_context().get(), start, &started).error_code(), StatusCode::NOT_FOUND);
  stop.set_container_id("ffffffffffffnothere");
  EXPECT_EQ(d_->runtime().StopContainer(call_context().get(), stop, &stopped).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(d_->exec_sync("ffffffffffffnothere", {"/bin/true"}, &out).error_code(), StatusCode::NOT_FOUND);
  v1::ExecSyncRequest no_cmd;
  no_cmd.set_container_id(exited->id());
  EXPECT_EQ(d_->runtime().ExecSync(call_context().get(), no_cmd, &out).error_code(), StatusCode::INVALID_ARGUMENT);

  // A stopped pod takes no new containers.
  v1::StopPodSandboxRequest stop_pod;
  stop_pod.set_pod_sandbox_id(pod_id);
  v1::StopPodSandboxResponse pod_stopped;
  ASSERT_TRUE(d_->runtime().StopPodSandbox(call_context().get(), stop_pod, &pod_stopped).ok());
  EXPECT_CRI_ERROR(d_->try_create_container(pod_id, d_->container_config("late", {"/bin/true"}), pod),
                   StatusCode::FAILED_PRECONDITION, "not ready");
  EXPECT_EQ(d_->list_containers().size(), 1u);
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  stop_pod.set_pod_sandbox_id("ffffffffffffnothere");
  EXPECT_EQ(d_->runtime().StopPodSandbox(call_context().get(), stop_pod, &pod_stopped).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(d_->host_leftovers(), "");
}

}  // namespace
}  // namespace berth::testing

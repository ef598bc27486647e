// The CRI v1 calls kubelet makes to learn about the runtime and to list what runs:
// Version, Status, RuntimeConfig, UpdateRuntimeConfig, the list calls with every
// filter (and their 1.36 streaming forms), the status calls with their verbose info,
// and the calls berth does not serve, which must say so.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

using nlohmann::json;

class CriCallsTest : public SharedBerthdTest<CriCallsTest> {};

template <typename Items>
std::set<std::string> ids_of(const Items& items) {
  std::set<std::string> out;
  for (auto& i : items) out.insert(i.id());
  return out;
}

std::set<std::string> list_pod_ids(BerthdFixture& d, const v1::PodSandboxFilter* filter) {
  v1::ListPodSandboxRequest req;
  if (filter) *req.mutable_filter() = *filter;
  v1::ListPodSandboxResponse resp;
  auto s = d.runtime().ListPodSandbox(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  auto ids = ids_of(resp.items());
  // The streaming form answers the same.
  v1::StreamPodSandboxesRequest sreq;
  if (filter) *sreq.mutable_filter() = *filter;
  auto ctx = call_context();
  auto reader = d.runtime().StreamPodSandboxes(ctx.get(), sreq);
  std::set<std::string> streamed;
  v1::StreamPodSandboxesResponse part;
  while (reader->Read(&part))
    for (auto& p : part.pod_sandboxes()) streamed.insert(p.id());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, ids) << "StreamPodSandboxes and ListPodSandbox disagree";
  return ids;
}

std::set<std::string> list_container_ids(BerthdFixture& d, const v1::ContainerFilter* filter) {
  v1::ListContainersRequest req;
  if (filter) *req.mutable_filter() = *filter;
  v1::ListContainersResponse resp;
  auto s = d.runtime().ListContainers(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  auto ids = ids_of(resp.containers());
  v1::StreamContainersRequest sreq;
  if (filter) *sreq.mutable_filter() = *filter;
  auto ctx = call_context();
  auto reader = d.runtime().StreamContainers(ctx.get(), sreq);
  std::set<std::string> streamed;
  v1::StreamContainersResponse part;
  while (reader->Read(&part))
    for (auto& c : part.containers()) streamed.insert(c.id());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, ids) << "StreamContainers and ListContainers disagree";
  return ids;
}

TEST_F(CriCallsTest, RuntimeDescribesItself) {
  v1::VersionResponse version;
  ASSERT_TRUE(d_->runtime().Version(call_context().get(), {}, &version).ok());
  EXPECT_EQ(version.runtime_name(), "berth");
  EXPECT_EQ(version.runtime_api_version(), "v1");
  EXPECT_FALSE(version.runtime_version().empty());

  v1::StatusRequest sreq;
  sreq.set_verbose(true);
  v1::StatusResponse status;
  ASSERT_TRUE(d_->runtime().Status(call_context().get(), sreq, &status).ok());
  std::map<std::string, bool> conditions;
  for (auto& c : status.status().conditions()) conditions[c.type()] = c.status();
  EXPECT_TRUE(conditions.at("RuntimeReady"));
  EXPECT_TRUE(conditions.at("NetworkReady"));
  ASSERT_TRUE(status.info().contains("config"));
  EXPECT_FALSE(json::parse(status.info().at("config"), nullptr, false).is_discarded());
  ASSERT_TRUE(status.info().contains("recovery"));
  EXPECT_TRUE(json::parse(status.info().at("recovery"), nullptr, false).is_array());
  ASSERT_GE(status.runtime_handlers_size(), 1);
  EXPECT_EQ(status.runtime_handlers(0).name(), "");

  v1::RuntimeConfigResponse config;
  ASSERT_TRUE(d_->runtime().RuntimeConfig(call_context().get(), {}, &config).ok());
  EXPECT_EQ(config.linux().cgroup_driver(), v1::CGROUPFS);

  v1::UpdateRuntimeConfigRequest update;
  update.mutable_runtime_config()->mutable_network_config()->set_pod_cidr("10.244.0.0/24");
  v1::UpdateRuntimeConfigResponse updated;
  EXPECT_TRUE(d_->runtime().UpdateRuntimeConfig(call_context().get(), update, &updated).ok());
  // An empty CIDR is "nothing to say", not an error.
  EXPECT_TRUE(d_->runtime().UpdateRuntimeConfig(call_context().get(), {}, &updated).ok());
}

// Exec, Attach and PortForward are served (cri_streaming_test.cc); only checkpoints are not.
TEST_F(CriCallsTest, CallsBerthDoesNotServeSayUnimplemented) {
  auto expect_unimplemented = [](const ::grpc::Status& s, const char* call) {
    EXPECT_EQ(s.error_code(), ::grpc::StatusCode::UNIMPLEMENTED) << call << ": " << s.error_message();
    EXPECT_FALSE(s.error_message().empty()) << call << " must say why";
  };
  v1::CheckpointContainerRequest cp;
  cp.set_container_id("whatever");
  cp.set_location("/tmp/x.tar");
  v1::CheckpointContainerResponse cp_resp;
  expect_unimplemented(d_->runtime().CheckpointContainer(call_context().get(), cp, &cp_resp), "CheckpointContainer");
}

TEST_F(CriCallsTest, ListPodSandboxFilters) {
  auto a_config = d_->pod_config("list-a");
  (*a_config.mutable_labels())["tier"] = "front";
  (*a_config.mutable_annotations())["note"] = "first";
  auto b_config = d_->pod_config("list-b");
  (*b_config.mutable_labels())["tier"] = "back";
  std::string a = d_->run_pod(a_config);
  std::string b = d_->run_pod(b_config);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(b);
  v1::StopPodSandboxResponse stopped;
  ASSERT_TRUE(d_->runtime().StopPodSandbox(call_context().get(), stop, &stopped).ok());

  EXPECT_EQ(list_pod_ids(*d_, nullptr), (std::set<std::string>{a, b}));
  v1::PodSandboxFilter f;
  f.set_id(a);
  EXPECT_EQ(list_pod_ids(*d_, &f), std::set<std::string>{a});
  f.set_id(b.substr(0, 10));  // a unique prefix, as crictl passes them
  EXPECT_EQ(list_pod_ids(*d_, &f), std::set<std::string>{b});
  f.set_id("0000no-such-pod");
  EXPECT_TRUE(list_pod_ids(*d_, &f).empty());

  f.Clear();
  f.mutable_state()->set_state(v1::SANDBOX_READY);
  EXPECT_EQ(list_pod_ids(*d_, &f), std::set<std::string>{a});
  f.mutable_state()->set_state(v1::SANDBOX_NOTREADY);
  EXPECT_EQ(list_pod_ids(*d_, &f), std::set<std::string>{b});

  f.Clear();
  (*f.mutable_label_selector())["tier"] = "back";
  EXPECT_EQ(list_pod_ids(*d_, &f), std::set<std::string>{b});
  (*f.mutable_label_selector())["test"] = "list-b";
  EXPECT_EQ(list_pod_ids(*d_, &f), std::set<std::string>{b});
  (*f.mutable_label_selector())["test"] = "list-a";
  EXPECT_TRUE(list_pod_ids(*d_, &f).empty()) << "every label must match";
  f.Clear();
  (*f.mutable_label_selector())["tier"] = "front";
  f.mutable_state()->set_state(v1::SANDBOX_NOTREADY);
  EXPECT_TRUE(list_pod_ids(*d_, &f).empty()) << "label and state together";

  // What the list reports of a pod.
  v1::ListPodSandboxRequest req;
  req.mutable_filter()->set_id(a);
  v1::ListPodSandboxResponse resp;
  ASSERT_TRUE(d_->runtime().ListPodSandbox(call_context().get(), req, &resp).ok());
  ASSERT_EQ(resp.items_size(), 1);
  const auto& item = resp.items(0);
  EXPECT_EQ(item.metadata().name(), a_config.metadata().name());
  EXPECT_EQ(item.metadata().uid(), a_config.metadata().uid());
  EXPECT_EQ(item.metadata().namespace_(), "berth-test");
  EXPECT_EQ(item.state(), v1::SANDBOX_READY);
  EXPECT_GT(item.created_at(), 0);
  EXPECT_EQ(item.labels().at("tier"), "front");
  EXPECT_EQ(item.annotations().at("note"), "first");

  ASSERT_TRUE(d_->remove_pod(a).ok());
  ASSERT_TRUE(d_->remove_pod(b).ok());
  EXPECT_TRUE(list_pod_ids(*d_, nullptr).empty());
}

TEST_F(CriCallsTest, PodSandboxStatusVerbose) {
  auto config = d_->pod_config("status");
  (*config.mutable_annotations())["a"] = "b";
  std::string id = d_->run_pod(config);
  ASSERT_FALSE(id.empty());
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  req.set_verbose(true);
  v1::PodSandboxStatusResponse resp;
  ASSERT_TRUE(d_->runtime().PodSandboxStatus(call_context().get(), req, &resp).ok());
  const auto& st = resp.status();
  EXPECT_EQ(st.id(), id);
  EXPECT_EQ(st.metadata().name(), config.metadata().name());
  EXPECT_EQ(st.state(), v1::SANDBOX_READY);
  EXPECT_TRUE(st.network().ip().starts_with(d_->subnet_prefix())) << st.network().ip();
  EXPECT_EQ(st.linux().namespaces().options().network(), v1::POD);
  EXPECT_EQ(st.annotations().at("a"), "b");
  ASSERT_TRUE(resp.info().contains("info"));
  auto info = json::parse(resp.info().at("info"), nullptr, false);
  ASSERT_TRUE(info.is_object()) << resp.info().at("info");
  std::string netns = info.value("netNamespacePath", "");
  EXPECT_TRUE(netns.starts_with(d_->state())) << netns;
  EXPECT_FALSE(info.value("netNamespaceClosed", true));
  ASSERT_TRUE(info["cniResult"].is_object()) << info.dump();
  EXPECT_NE(info["cniResult"].dump().find(st.network().ip()), std::string::npos);
  EXPECT_EQ(info["config"]["metadata"]["name"], config.metadata().name());

  // A unique prefix works as the id; an unknown id is NOT_FOUND.
  req.set_pod_sandbox_id(id.substr(0, 12));
  req.set_verbose(false);
  ASSERT_TRUE(d_->runtime().PodSandboxStatus(call_context().get(), req, &resp).ok());
  EXPECT_EQ(resp.status().id(), id);
  req.set_pod_sandbox_id("ffffffffffffnothere");
  auto missing = d_->runtime().PodSandboxStatus(call_context().get(), req, &resp);
  EXPECT_EQ(missing.error_code(), ::grpc::StatusCode::NOT_FOUND) << missing.error_message();

  // Stopped: NOTREADY, the namespace gone.
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse stopped;
  ASSERT_TRUE(d_->runtime().StopPodSandbox(call_context().get(), stop, &stopped).ok());
  ASSERT_TRUE(d_->runtime().StopPodSandbox(call_context().get(), stop, &stopped).ok()) << "stop is idempotent";
  EXPECT_EQ(d_->pod_status(id).state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(read_text_file("/proc/self/mountinfo").find(netns), std::string::npos) << "netns still pinned";
  EXPECT_EQ(d_->bridge_ports(), 0);

  // Removal by a unique prefix, as crictl passes it, removes the pod.
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(id.substr(0, 12));
  v1::RemovePodSandboxResponse removed;
  ASSERT_TRUE(d_->runtime().RemovePodSandbox(call_context().get(), rm, &removed).ok());
  v1::PodSandboxStatusResponse gone;
  req.set_pod_sandbox_id(id);
  EXPECT_EQ(d_->runtime().PodSandboxStatus(call_context().get(), req, &gone).error_code(),
            ::grpc::StatusCode::NOT_FOUND)
      << "the pod is still there";
  rm.set_pod_sandbox_id(id);
  EXPECT_TRUE(d_->runtime().RemovePodSandbox(call_context().get(), rm, &removed).ok()) << "remove is idempotent";
  EXPECT_EQ(d_->leftovers_of(id), "");
}

TEST_F(CriCallsTest, ListContainersFilters) {
  auto pod = d_->pod_config("ctrs");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto other_pod = d_->pod_config("ctrs-other");
  std::string other_id = d_->run_pod(other_pod);
  ASSERT_FALSE(other_id.empty());

  auto created_cfg = d_->container_config("created", {"/bin/true"});
  (*created_cfg.mutable_labels())["role"] = "idle";
  std::string created = d_->create_container(pod_id, created_cfg, pod);
  auto running_cfg = d_->container_config("running", {"/bin/sleep", "1000"});
  (*running_cfg.mutable_labels())["role"] = "worker";
  std::string running = d_->create_container(pod_id, running_cfg, pod);
  ASSERT_TRUE(d_->start_container(running));
  auto exited = d_->run_to_exit(pod_id, d_->container_config("exited", {"/bin/true"}), pod);
  ASSERT_TRUE(exited.has_value());
  std::string elsewhere = d_->create_container(other_id, d_->container_config("elsewhere", {"/bin/true"}), other_pod);
  ASSERT_FALSE(created.empty() || running.empty() || elsewhere.empty());

  EXPECT_EQ(list_container_ids(*d_, nullptr), (std::set<std::string>{created, running, exited->id(), elsewhere}));
  v1::ContainerFilter f;
  f.set_pod_sandbox_id(pod_id);
  EXPECT_EQ(list_container_ids(*d_, &f), (std::set<std::string>{created, running, exited->id()}));
  f.set_pod_sandbox_id(other_id.substr(0, 10));
  EXPECT_EQ(list_container_ids(*d_, &f), std::set<std::string>{elsewhere});
  f.Clear();
  f.set_id(running);
  EXPECT_EQ(list_container_ids(*d_, &f), std::set<std::string>{running});
  f.set_id(running.substr(0, 10));
  EXPECT_EQ(list_container_ids(*d_, &f), std::set<std::string>{running});
  f.set_pod_sandbox_id(other_id);
  EXPECT_TRUE(list_container_ids(*d_, &f).empty()) << "id and pod together";
  for (auto [state, want] : {std::pair{v1::CONTAINER_CREATED, created}, std::pair{v1::CONTAINER_RUNNING, running},
                             std::pair{v1::CONTAINER_EXITED, exited->id()}}) {
    f.Clear();
    f.set_pod_sandbox_id(pod_id);
    f.mutable_state()->set_state(state);
    EXPECT_EQ(list_container_ids(*d_, &f), std::set<std::string>{want}) << v1::ContainerState_Name(state);
  }
  f.Clear();
  (*f.mutable_label_selector())["role"] = "worker";
  EXPECT_EQ(list_container_ids(*d_, &f), std::set<std::string>{running});
  (*f.mutable_label_selector())["role"] = "nobody";
  EXPECT_TRUE(list_container_ids(*d_, &f).empty());

  // What the list reports of a container.
  v1::ListContainersRequest req;
  req.mutable_filter()->set_id(running);
  v1::ListContainersResponse resp;
  ASSERT_TRUE(d_->runtime().ListContainers(call_context().get(), req, &resp).ok());
  ASSERT_EQ(resp.containers_size(), 1);
  const auto& c = resp.containers(0);
  EXPECT_EQ(c.pod_sandbox_id(), pod_id);
  EXPECT_EQ(c.metadata().name(), "running");
  EXPECT_EQ(c.state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(c.image().image(), "docker.io/library/busybox:latest");
  EXPECT_TRUE(c.image_ref().starts_with("sha256:")) << c.image_ref();
  EXPECT_EQ(c.labels().at("role"), "worker");
  EXPECT_GT(c.created_at(), 0);

  // Removing a pod takes its containers with it.
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(list_container_ids(*d_, nullptr), std::set<std::string>{elsewhere});
  ASSERT_TRUE(d_->remove_pod(other_id).ok());
  EXPECT_TRUE(list_container_ids(*d_, nullptr).empty());
}

TEST_F(CriCallsTest, ContainerStatusReportsTheRequest) {
  auto pod = d_->pod_config("cstatus");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string vol = d_->dir() + "/cstatus-vol";
  ASSERT_EQ(::mkdir(vol.c_str(), 0755), 0);

  auto config = d_->container_config("reported", {"/bin/sh", "-c", "sleep 0.2"});
  config.mutable_metadata()->set_attempt(2);
  (*config.mutable_labels())["l1"] = "v1";
  (*config.mutable_annotations())["an1"] = "av1";
  auto* m = config.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(vol);
  m->set_readonly(true);
  std::string id = d_->create_container(pod_id, config, pod);
  ASSERT_FALSE(id.empty());

  auto created = d_->container_status(id);
  EXPECT_EQ(created.state(), v1::CONTAINER_CREATED);
  EXPECT_GT(created.created_at(), 0);
  EXPECT_EQ(created.started_at(), 0);
  EXPECT_EQ(created.finished_at(), 0);

  auto began = std::chrono::system_clock::now();
  ASSERT_TRUE(d_->start_container(id));
  auto running = d_->container_status(id);
  EXPECT_EQ(running.state(), v1::CONTAINER_RUNNING);
  EXPECT_GE(running.started_at(), running.created_at());
  auto info = json::parse(d_->container_info(id), nullptr, false);
  ASSERT_TRUE(info.is_object());
  EXPECT_EQ(info.value("sandboxID", ""), pod_id);
  EXPECT_GT(info.value("pid", 0), 0);
  EXPECT_EQ(info["config"]["metadata"]["name"], "reported");

  auto st = d_->wait_exited(id, std::chrono::seconds(20));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->id(), id);
  EXPECT_EQ(st->metadata().name(), "reported");
  EXPECT_EQ(st->metadata().attempt(), 2u);
  EXPECT_EQ(st->exit_code(), 0);
  EXPECT_EQ(st->reason(), "Completed");
  int64_t began_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(began.time_since_epoch()).count();
  EXPECT_GE(st->started_at(), began_ns - 1'000'000'000);
  EXPECT_GE(st->finished_at() - st->started_at(), 150'000'000) << "it slept 0.2s";
  EXPECT_EQ(st->image().image(), "docker.io/library/busybox:latest");
  EXPECT_TRUE(st->image_ref().starts_with("sha256:") || st->image_ref().find("@sha256:") != std::string::npos)
      << st->image_ref();
  EXPECT_EQ(st->log_path(), pod.log_directory() + "/reported.log");
  EXPECT_EQ(st->labels().at("l1"), "v1");
  EXPECT_EQ(st->annotations().at("an1"), "av1");
  ASSERT_EQ(st->mounts_size(), 1);
  EXPECT_EQ(st->mounts(0).container_path(), "/data");
  EXPECT_EQ(st->mounts(0).host_path(), vol);
  EXPECT_TRUE(st->mounts(0).readonly());

  // The ID the image store gives is what ContainerStatus reports as the image id.
  v1::ImageStatusRequest ireq;
  ireq.mutable_image()->set_image("docker.io/library/busybox:latest");
  v1::ImageStatusResponse iresp;
  ASSERT_TRUE(d_->images().ImageStatus(call_context().get(), ireq, &iresp).ok());
  EXPECT_EQ(st->image_id(), iresp.image().id());

  v1::ContainerStatusRequest missing;
  missing.set_container_id("ffffffffffffnothere");
  v1::ContainerStatusResponse resp;
  auto s = d_->runtime().ContainerStatus(call_context().get(), missing, &resp);
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::NOT_FOUND) << s.error_message();

  v1::RemoveContainerRequest rm;
  rm.set_container_id(id.substr(0, 12));  // a unique prefix
  v1::RemoveContainerResponse removed;
  ASSERT_TRUE(d_->runtime().RemoveContainer(call_context().get(), rm, &removed).ok());
  v1::ContainerStatusRequest gone;
  gone.set_container_id(id);
  EXPECT_EQ(d_->runtime().ContainerStatus(call_context().get(), gone, &resp).error_code(),
            ::grpc::StatusCode::NOT_FOUND)
      << "the container is still there";
  rm.set_container_id(id);
  EXPECT_TRUE(d_->runtime().RemoveContainer(call_context().get(), rm, &removed).ok()) << "remove is idempotent";
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriCallsTest, StopContainerSendsTheStopSignal) {
  auto pod = d_->pod_config("stopsig");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  // The request's stop signal; then the image's (the users image says SIGQUIT);
  // each container exits with a code that tells which signal came.
  auto asked = d_->container_config(
      "asked",
      {"/bin/sh", "-c", "trap 'exit 10' USR1; trap 'exit 15' TERM; echo ready; while true; do sleep 0.1; done"});
  v1::Signal usr1 = v1::RUNTIME_DEFAULT;  // by name: <signal.h> owns the SIG* identifiers
  ASSERT_TRUE(v1::Signal_Parse("SIGUSR1", &usr1));
  asked.set_stop_signal(usr1);
  auto image = d_->container_config(
      "image", {"/bin/sh", "-c", "trap 'exit 3' QUIT; trap 'exit 15' TERM; echo ready; while true; do sleep 0.1; done"},
      "example.com/test/users:latest");
  for (auto* config : {&asked, &image}) {
    std::string id = d_->create_container(pod_id, *config, pod);
    ASSERT_TRUE(d_->start_container(id));
    ASSERT_TRUE(d_->wait_log_line(pod, *config, "ready"));
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(10);
    v1::StopContainerResponse resp;
    auto began = std::chrono::steady_clock::now();
    ASSERT_TRUE(d_->runtime().StopContainer(call_context().get(), req, &resp).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(5)) << "it did not wait for the timeout";
    auto st = d_->container_status(id);
    EXPECT_EQ(st.state(), v1::CONTAINER_EXITED);
    EXPECT_EQ(st.exit_code(), config == &asked ? 10 : 3) << config->metadata().name();
    EXPECT_EQ(v1::Signal_Name(st.stop_signal()), config == &asked ? "SIGUSR1" : "SIGQUIT") << config->metadata().name();
  }
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
}

TEST_F(CriCallsTest, RemovePodSandboxEndsRunningContainers) {
  // kubelet stops first, but CRI wants removal to force what still runs.
  auto pod = d_->pod_config("force");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string id = d_->create_container(pod_id, d_->container_config("running", {"/bin/sleep", "1000"}), pod);
  ASSERT_TRUE(d_->start_container(id));
  int pid = json::parse(d_->container_info(id)).value("pid", 0);
  ASSERT_GT(pid, 0);
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(pod_id);
  v1::RemovePodSandboxResponse removed;
  auto s = d_->runtime().RemovePodSandbox(call_context().get(), rm, &removed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(wait_process_gone(pid)) << "the container outlived its pod";
  EXPECT_TRUE(list_container_ids(*d_, nullptr).empty());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriCallsTest, UpdatePodSandboxResourcesIsAccepted) {
  auto pod = d_->pod_config("podres");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  v1::UpdatePodSandboxResourcesRequest req;
  req.set_pod_sandbox_id(pod_id);
  req.mutable_resources()->set_cpu_shares(512);
  req.mutable_resources()->set_memory_limit_in_bytes(256ll << 20);
  v1::UpdatePodSandboxResourcesResponse resp;
  auto s = d_->runtime().UpdatePodSandboxResources(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  req.set_pod_sandbox_id("ffffffffffffnothere");
  s = d_->runtime().UpdatePodSandboxResources(call_context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::NOT_FOUND) << s.error_message();
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
}

}  // namespace
}  // namespace berth::testing

// What kubelet watches: container and pod stats (and their 1.36 streams), the
// metrics calls, the GetContainerEvents stream, and OOMKilled from the memory
// cgroup when a container outgrows its limit.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

class CriStatsEventsTest : public SharedBerthdTest<CriStatsEventsTest> {};

template <typename Items, typename Id>
std::set<std::string> ids(const Items& items, Id id) {
  std::set<std::string> out;
  for (auto& i : items) out.insert(id(i));
  return out;
}

std::set<std::string> container_stats_ids(BerthdFixture& d, const v1::ContainerStatsFilter& filter) {
  v1::ListContainerStatsRequest req;
  *req.mutable_filter() = filter;
  v1::ListContainerStatsResponse resp;
  EXPECT_TRUE(d.runtime().ListContainerStats(call_context().get(), req, &resp).ok());
  auto id = [](const v1::ContainerStats& s) { return s.attributes().id(); };
  auto listed = ids(resp.stats(), id);
  v1::StreamContainerStatsRequest sreq;
  *sreq.mutable_filter() = filter;
  auto ctx = call_context();
  auto reader = d.runtime().StreamContainerStats(ctx.get(), sreq);
  std::set<std::string> streamed;
  v1::StreamContainerStatsResponse part;
  while (reader->Read(&part))
    for (auto& s : part.container_stats()) streamed.insert(s.attributes().id());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, listed) << "StreamContainerStats and ListContainerStats disagree";
  return listed;
}

std::set<std::string> pod_stats_ids(BerthdFixture& d, const v1::PodSandboxStatsFilter& filter) {
  v1::ListPodSandboxStatsRequest req;
  *req.mutable_filter() = filter;
  v1::ListPodSandboxStatsResponse resp;
  EXPECT_TRUE(d.runtime().ListPodSandboxStats(call_context().get(), req, &resp).ok());
  auto id = [](const v1::PodSandboxStats& s) { return s.attributes().id(); };
  auto listed = ids(resp.stats(), id);
  v1::StreamPodSandboxStatsRequest sreq;
  *sreq.mutable_filter() = filter;
  auto ctx = call_context();
  auto reader = d.runtime().StreamPodSandboxStats(ctx.get(), sreq);
  std::set<std::string> streamed;
  v1::StreamPodSandboxStatsResponse part;
  while (reader->Read(&part))
    for (auto& s : part.pod_sandbox_stats()) streamed.insert(s.attributes().id());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, listed) << "StreamPodSandboxStats and ListPodSandboxStats disagree";
  return listed;
}

TEST_F(CriStatsEventsTest, ContainerAndPodStats) {
  auto pod = d_->pod_config("stats");
  (*pod.mutable_labels())["kind"] = "measured";
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto other = d_->pod_config("stats-other");
  std::string other_id = d_->run_pod(other);
  ASSERT_FALSE(other_id.empty());

  // Holds ~20 MB in a shell variable and writes 2 MB into its writable layer.
  auto c =
      d_->container_config("hog", {"/bin/sh", "-c",
                                   "head -c 2000000 /dev/zero > /big; x=$(head -c 20000000 /dev/zero | tr '\\0' a);"
                                   " echo ready; sleep 1000; echo ${#x}"});
  (*c.mutable_labels())["role"] = "hog";
  std::string id = d_->create_container(pod_id, c, pod);
  ASSERT_TRUE(d_->start_container(id));
  std::string quiet = d_->create_container(other_id, d_->container_config("quiet", {"/bin/sleep", "1000"}), other);
  ASSERT_TRUE(d_->start_container(quiet));

  v1::ContainerStatsResponse resp;
  bool big = false;
  for (int i = 0; i < 200 && !big; ++i) {
    v1::ContainerStatsRequest req;
    req.set_container_id(id);
    auto s = d_->runtime().ContainerStats(call_context().get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    big = resp.stats().memory().working_set_bytes().value() >= 15'000'000 &&
          resp.stats().writable_layer().used_bytes().value() >= 2'000'000;
    if (!big) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto& stats = resp.stats();
  EXPECT_TRUE(big) << stats.DebugString();
  EXPECT_EQ(stats.attributes().id(), id);
  EXPECT_EQ(stats.attributes().metadata().name(), "hog");
  EXPECT_EQ(stats.attributes().labels().at("role"), "hog");
  EXPECT_GT(stats.cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GT(stats.cpu().timestamp(), 0);
  EXPECT_GE(stats.memory().usage_bytes().value(), stats.memory().working_set_bytes().value());
  EXPECT_FALSE(stats.writable_layer().fs_id().mountpoint().empty());

  v1::ContainerStatsFilter cf;
  EXPECT_EQ(container_stats_ids(*d_, cf), (std::set<std::string>{id, quiet}));
  cf.set_pod_sandbox_id(pod_id);
  EXPECT_EQ(container_stats_ids(*d_, cf), std::set<std::string>{id});
  cf.Clear();
  cf.set_id(quiet);
  EXPECT_EQ(container_stats_ids(*d_, cf), std::set<std::string>{quiet});
  cf.Clear();
  (*cf.mutable_label_selector())["role"] = "hog";
  EXPECT_EQ(container_stats_ids(*d_, cf), std::set<std::string>{id});

  v1::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(pod_id);
  v1::PodSandboxStatsResponse presp;
  auto s = d_->runtime().PodSandboxStats(call_context().get(), preq, &presp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto& ps = presp.stats();
  EXPECT_EQ(ps.attributes().id(), pod_id);
  EXPECT_EQ(ps.attributes().metadata().name(), pod.metadata().name());
  EXPECT_EQ(ps.attributes().labels().at("kind"), "measured");
  EXPECT_GE(ps.linux().memory().working_set_bytes().value(), 15'000'000u) << "the pod's cgroup holds its containers";
  EXPECT_GT(ps.linux().cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GE(ps.linux().process().process_count().value(), 1u);
  ASSERT_EQ(ps.linux().containers_size(), 1);
  EXPECT_EQ(ps.linux().containers(0).attributes().id(), id);

  v1::PodSandboxStatsFilter pf;
  EXPECT_EQ(pod_stats_ids(*d_, pf), (std::set<std::string>{pod_id, other_id}));
  pf.set_id(other_id);
  EXPECT_EQ(pod_stats_ids(*d_, pf), std::set<std::string>{other_id});
  pf.Clear();
  (*pf.mutable_label_selector())["kind"] = "measured";
  EXPECT_EQ(pod_stats_ids(*d_, pf), std::set<std::string>{pod_id});

  // Metrics: every metric named by a descriptor, with its labels.
  v1::ListMetricDescriptorsResponse descriptors;
  ASSERT_TRUE(d_->runtime().ListMetricDescriptors(call_context().get(), {}, &descriptors).ok());
  std::map<std::string, int> label_count;
  for (auto& desc : descriptors.descriptors()) {
    EXPECT_FALSE(desc.help().empty()) << desc.name();
    label_count[desc.name()] = desc.label_keys_size();
  }
  ASSERT_TRUE(label_count.contains("container_memory_working_set_bytes"));
  v1::ListPodSandboxMetricsResponse metrics;
  ASSERT_TRUE(d_->runtime().ListPodSandboxMetrics(call_context().get(), {}, &metrics).ok());
  const v1::PodSandboxMetrics* mine = nullptr;
  for (auto& m : metrics.pod_metrics())
    if (m.pod_sandbox_id() == pod_id) mine = &m;
  ASSERT_NE(mine, nullptr);
  ASSERT_EQ(mine->container_metrics_size(), 1);
  EXPECT_EQ(mine->container_metrics(0).container_id(), id);
  uint64_t working_set = 0;
  for (auto& m : mine->container_metrics(0).metrics()) {
    ASSERT_TRUE(label_count.contains(m.name())) << m.name() << " has no descriptor";
    EXPECT_EQ(m.label_values_size(), label_count[m.name()]) << m.name();
    if (m.name() == "container_memory_working_set_bytes") working_set = m.value().value();
  }
  EXPECT_GE(working_set, 15'000'000u);
  auto ctx = call_context();
  auto reader = d_->runtime().StreamPodSandboxMetrics(ctx.get(), {});
  std::set<std::string> streamed;
  v1::StreamPodSandboxMetricsResponse part;
  while (reader->Read(&part))
    for (auto& m : part.pod_sandbox_metrics()) streamed.insert(m.pod_sandbox_id());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, (std::set<std::string>{pod_id, other_id}));

  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  ASSERT_TRUE(d_->remove_pod(other_id).ok());
}

// Collects GetContainerEvents in the background.
class EventWatcher {
 public:
  explicit EventWatcher(BerthdFixture& d) {
    ctx_ = std::make_unique<::grpc::ClientContext>();
    reader_ = d.runtime().GetContainerEvents(ctx_.get(), {});
    thread_ = std::thread([this] {
      v1::ContainerEventResponse e;
      while (reader_->Read(&e)) {
        std::lock_guard g(mu_);
        events_.push_back(e);
        cv_.notify_all();
      }
    });
  }
  ~EventWatcher() {
    ctx_->TryCancel();
    thread_.join();
    reader_->Finish();
  }
  // Waits until an event of `type` for `id` arrived.
  bool wait_for(const std::string& id, v1::ContainerEventType type, std::chrono::milliseconds timeout) {
    std::unique_lock g(mu_);
    return cv_.wait_for(g, timeout, [&] {
      for (auto& e : events_)
        if (e.container_id() == id && e.container_event_type() == type) return true;
      return false;
    });
  }
  std::vector<v1::ContainerEventResponse> of(const std::string& id) {
    std::lock_guard g(mu_);
    std::vector<v1::ContainerEventResponse> out;
    for (auto& e : events_)
      if (e.container_id() == id) out.push_back(e);
    return out;
  }

 private:
  std::unique_ptr<::grpc::ClientContext> ctx_;
  std::unique_ptr<::grpc::ClientReader<v1::ContainerEventResponse>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::ContainerEventResponse> events_;
};

TEST_F(CriStatsEventsTest, ContainerEventsStream) {
  EventWatcher events(*d_);
  // The subscription is live once a pod's events come through.
  bool live = false;
  for (int i = 0; i < 10 && !live; ++i) {
    std::string probe = d_->run_pod(d_->pod_config("events-probe"));
    ASSERT_FALSE(probe.empty());
    live = events.wait_for(probe, v1::CONTAINER_STARTED_EVENT, std::chrono::seconds(1));
    ASSERT_TRUE(d_->remove_pod(probe).ok());
  }
  ASSERT_TRUE(live) << "GetContainerEvents delivers nothing";

  auto pod = d_->pod_config("events");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto st = d_->run_to_exit(pod_id, d_->container_config("brief", {"/bin/sh", "-c", "exit 4"}), pod);
  ASSERT_TRUE(st.has_value());
  std::string id = st->id();
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_TRUE(events.wait_for(id, v1::CONTAINER_DELETED_EVENT, std::chrono::seconds(10)));
  EXPECT_TRUE(events.wait_for(pod_id, v1::CONTAINER_DELETED_EVENT, std::chrono::seconds(10)));

  std::vector<v1::ContainerEventType> types;
  for (auto& e : events.of(id)) {
    types.push_back(e.container_event_type());
    EXPECT_GT(e.created_at(), 0);
    EXPECT_EQ(e.pod_sandbox_status().id(), pod_id);
    EXPECT_EQ(e.pod_sandbox_status().metadata().name(), pod.metadata().name())
        << "kubelet finds the pod by its metadata, in every event";
    if (e.container_event_type() == v1::CONTAINER_STOPPED_EVENT) {
      bool found = false;
      for (auto& cs : e.containers_statuses())
        if (cs.id() == id) {
          found = true;
          EXPECT_EQ(cs.state(), v1::CONTAINER_EXITED);
          EXPECT_EQ(cs.exit_code(), 4);
        }
      EXPECT_TRUE(found) << "the stopped event carries the container's status";
    }
  }
  EXPECT_EQ(types, (std::vector<v1::ContainerEventType>{v1::CONTAINER_CREATED_EVENT, v1::CONTAINER_STARTED_EVENT,
                                                        v1::CONTAINER_STOPPED_EVENT, v1::CONTAINER_DELETED_EVENT}));
  types.clear();
  for (auto& e : events.of(pod_id)) types.push_back(e.container_event_type());
  EXPECT_EQ(types, (std::vector<v1::ContainerEventType>{v1::CONTAINER_CREATED_EVENT, v1::CONTAINER_STARTED_EVENT,
                                                        v1::CONTAINER_STOPPED_EVENT, v1::CONTAINER_DELETED_EVENT}));
}

TEST_F(CriStatsEventsTest, OomKilledFromTheMemoryCgroup) {
  auto pod = d_->pod_config("oom");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  // dd's 64 MiB buffer is filled by the read: far over the 32 MiB limit.
  auto c = d_->container_config("hungry", {"/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"});
  c.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32ll << 20);
  auto st = d_->run_to_exit(pod_id, c, pod, std::chrono::seconds(30));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->reason(), "OOMKilled");
  EXPECT_EQ(st->exit_code(), 137);
  // One that stays under its limit is not.
  auto fine = d_->container_config("modest", {"/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"});
  fine.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32ll << 20);
  st = d_->run_to_exit(pod_id, fine, pod);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->reason(), "Completed");
  EXPECT_EQ(st->exit_code(), 0);
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
}

}  // namespace
}  // namespace berth::testing

// runtime.v1.RuntimeService over the Containerizer: every RPC of the newest schema.
// Requests are checked and translated here (cri_translate), the engine does the
// work, and its answers are turned into CRI messages (cri_report). Nothing here
// touches the kernel. Handlers are public so they can be driven without a server.
//
// Served as containerd serves them, where CRI leaves room:
//  - ids may be given as unique prefixes, in filters and in single-object calls;
//  - RemovePodSandbox / RemoveContainer of something already gone succeed, while
//    Stop* and the status calls answer NOT_FOUND;
//  - an ExecSync that runs out of time ends with DEADLINE_EXCEEDED (kubelet's probe
//    timeout), and its output is capped at 16 MiB per stream;
//  - ContainerStatus names the image by tag, its image_ref by repo digest, and its
//    image_id by the ID PullImage returned.
// Exec, Attach and PortForward answer with a URL on the streaming server given to
// set_streaming_server (UNIMPLEMENTED without one). CheckpointContainer has no
// engine support and answers UNIMPLEMENTED with a message saying so. UpdatePodSandboxResources checks the pod
// and acknowledges: kubelet has already resized the pod cgroup itself.
#pragma once

#include "cri/proto/runtime_api.h"

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "cri/grpc/call_context.h"
#include "cri/grpc/status.h"
#include "cri/grpc/stream_writer.h"
#include "cri/service/cpu_usage_rate.h"
#include "cri/service/cri_report.h"
#include "cri/streaming/request_cache.h"
#include "runtime/containerizer/containerizer.h"

namespace berth::storage {
class ImageStore;
}

namespace berth::grpc {
class GrpcServer;
}

namespace berth::streaming {
class StreamingServer;
}

namespace berth::cri {

namespace v1 = ::runtime::v1;

class RuntimeService {
 public:
  struct Options {
    std::string runtime_name = "berth";
    std::string runtime_version = "0.1.0";
    std::string cgroup_driver = "cgroupfs";  // or "systemd": what RuntimeConfig tells kubelet
    // RuntimeClass handlers accepted besides "" (the default one).
    std::vector<std::string> runtime_handlers;
    // Events a GetContainerEvents subscriber may fall behind by before it is cut off.
    size_t event_queue_capacity = 1024;
    // Stream* replies: items per message, and a byte budget well under kubelet's
    // 16 MiB receive limit.
    size_t stream_batch_items = 500;
    size_t stream_batch_bytes = 2u << 20;
    // PodSandboxStatus also carries its containers' statuses and a timestamp, which
    // only kubelet's evented PLEG reads (CRI-O's enable_pod_events). Off, it saves
    // a container listing per pod per kubelet relist.
    bool pod_events = false;
  };

  // `images`, when given, lets statuses name images by tag and digest; the service
  // does not own either object.
  RuntimeService(pod::Containerizer& containerizer, Options options, storage::ImageStore* images = nullptr);

  void register_with(grpc::GrpcServer& server);
  // Where Exec, Attach and PortForward send their clients; not owned.
  void set_streaming_server(streaming::StreamingServer* server);

  using Ctx = grpc::CallContext;
  using Status = grpc::CallStatus;
  template <class Resp>
  using Writer = grpc::StreamWriter<Resp>;

  Status version(Ctx&, const v1::VersionRequest&, v1::VersionResponse&);
  Status run_pod_sandbox(Ctx&, const v1::RunPodSandboxRequest&, v1::RunPodSandboxResponse&);
  Status stop_pod_sandbox(Ctx&, const v1::StopPodSandboxRequest&, v1::StopPodSandboxResponse&);
  Status remove_pod_sandbox(Ctx&, const v1::RemovePodSandboxRequest&, v1::RemovePodSandboxResponse&);
  Status pod_sandbox_status(Ctx&, const v1::PodSandboxStatusRequest&, v1::PodSandboxStatusResponse&);
  Status list_pod_sandbox(Ctx&, const v1::ListPodSandboxRequest&, v1::ListPodSandboxResponse&);
  Status stream_pod_sandboxes(Ctx&, const v1::StreamPodSandboxesRequest&, Writer<v1::StreamPodSandboxesResponse>&);

  Status create_container(Ctx&, const v1::CreateContainerRequest&, v1::CreateContainerResponse&);
  Status start_container(Ctx&, const v1::StartContainerRequest&, v1::StartContainerResponse&);
  Status stop_container(Ctx&, const v1::StopContainerRequest&, v1::StopContainerResponse&);
  Status remove_container(Ctx&, const v1::RemoveContainerRequest&, v1::RemoveContainerResponse&);
  Status list_containers(Ctx&, const v1::ListContainersRequest&, v1::ListContainersResponse&);
  Status stream_containers(Ctx&, const v1::StreamContainersRequest&, Writer<v1::StreamContainersResponse>&);
  Status container_status(Ctx&, const v1::ContainerStatusRequest&, v1::ContainerStatusResponse&);
  Status update_container_resources(Ctx&, const v1::UpdateContainerResourcesRequest&,
                                    v1::UpdateContainerResourcesResponse&);
  Status reopen_container_log(Ctx&, const v1::ReopenContainerLogRequest&, v1::ReopenContainerLogResponse&);

  Status exec_sync(Ctx&, const v1::ExecSyncRequest&, v1::ExecSyncResponse&);
  Status exec(Ctx&, const v1::ExecRequest&, v1::ExecResponse&);
  Status attach(Ctx&, const v1::AttachRequest&, v1::AttachResponse&);
  Status port_forward(Ctx&, const v1::PortForwardRequest&, v1::PortForwardResponse&);

  Status container_stats(Ctx&, const v1::ContainerStatsRequest&, v1::ContainerStatsResponse&);
  Status list_container_stats(Ctx&, const v1::ListContainerStatsRequest&, v1::ListContainerStatsResponse&);
  Status stream_container_stats(Ctx&, const v1::StreamContainerStatsRequest&,
                                Writer<v1::StreamContainerStatsResponse>&);
  Status pod_sandbox_stats(Ctx&, const v1::PodSandboxStatsRequest&, v1::PodSandboxStatsResponse&);
  Status list_pod_sandbox_stats(Ctx&, const v1::ListPodSandboxStatsRequest&, v1::ListPodSandboxStatsResponse&);
  Status stream_pod_sandbox_stats(Ctx&, const v1::StreamPodSandboxStatsRequest&,
                                  Writer<v1::StreamPodSandboxStatsResponse>&);

  Status update_runtime_config(Ctx&, const v1::UpdateRuntimeConfigRequest&, v1::UpdateRuntimeConfigResponse&);
  Status status(Ctx&, const v1::StatusRequest&, v1::StatusResponse&);
  Status checkpoint_container(Ctx&, const v1::CheckpointContainerRequest&, v1::CheckpointContainerResponse&);
  Status get_container_events(Ctx&, const v1::GetEventsRequest&, Writer<v1::ContainerEventResponse>&);
  Status list_metric_descriptors(Ctx&, const v1::ListMetricDescriptorsRequest&, v1::ListMetricDescriptorsResponse&);
  Status list_pod_sandbox_metrics(Ctx&, const v1::ListPodSandboxMetricsRequest&, v1::ListPodSandboxMetricsResponse&);
  Status stream_pod_sandbox_metrics(Ctx&, const v1::StreamPodSandboxMetricsRequest&,
                                    Writer<v1::StreamPodSandboxMetricsResponse>&);
  Status runtime_config(Ctx&, const v1::RuntimeConfigRequest&, v1::RuntimeConfigResponse&);
  Status update_pod_sandbox_resources(Ctx&, const v1::UpdatePodSandboxResourcesRequest&,
                                      v1::UpdatePodSandboxResourcesResponse&);

 private:
  // Runs `call` with the id as given and, when that finds nothing, once more with
  // the full id the text is a unique prefix of.
  template <typename Call>
  auto with_pod_id(const std::string& id, Call&& call) -> decltype(call(id));
  template <typename Call>
  auto with_container_id(const std::string& id, Call&& call) -> decltype(call(id));

  // Tags, digests and the default stop signal of an image, looked up once per call.
  struct ImageFacts {
    bool found = false;
    std::vector<std::string> tags, digests;
    std::string stop_signal;
  };
  using ImageFactsCache = std::unordered_map<std::string, ImageFacts>;
  ImageNames image_names(const pod::ContainerStatus& container, ImageFactsCache& cache);
  void fill_container_statuses(const std::string& pod_id, const std::vector<pod::ContainerStatus>& all,
                               google::protobuf::RepeatedPtrField<v1::ContainerStatus>& out);
  // Pods (ready ones when `ready_only`) matching `filter`, with their stats.
  std::vector<v1::PodSandboxStats> gather_pod_stats(const v1::PodSandboxStatsFilter* filter);
  std::vector<v1::ContainerStats> gather_container_stats(const v1::ContainerStatsFilter* filter);
  std::vector<v1::PodSandboxMetrics> gather_pod_metrics();
  void build_event(const pod::Event& event, std::unordered_map<std::string, v1::PodSandboxStatus>& last_pod_status,
                   v1::ContainerEventResponse& out);
  bool known_handler(const std::string& handler) const;
  Status issue_url(streaming::CachedRequest request, std::string& url);

  pod::Containerizer& containerizer_;
  Options options_;
  storage::ImageStore* images_;
  streaming::StreamingServer* streaming_ = nullptr;
  CpuUsageRate cpu_rate_;
  bool recursive_read_only_mounts_ = false;
};

}  // namespace berth::cri

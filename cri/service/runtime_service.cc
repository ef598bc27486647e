#include "cri/service/runtime_service.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/log.h"
#include "cri/grpc/grpc_server.h"
#include "cri/service/cri_errors.h"
#include "cri/service/cri_filters.h"
#include "cri/service/cri_metrics.h"
#include "cri/service/cri_translate.h"
#include "cri/service/event_queue.h"
#include "cri/service/stream_batches.h"
#include "cri/streaming/streaming_server.h"
#include "storage/image_reference.h"
#include "storage/image_store.h"

namespace berth::cri {

namespace {

using grpc::StatusCode;

constexpr size_t kExecOutputCap = 16u << 20;
constexpr const char* kStreamingMessage = "this berthd runs no streaming server (exec/attach/port-forward)";

grpc::CallStatus ok() { return {}; }

grpc::CallStatus failed(const Error& error, std::string_view context) {
  return to_call_status(error.wrap(context));
}

grpc::CallStatus missing(std::string_view field) {
  return {StatusCode::invalid_argument, std::string(field) + " is required"};
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// mount_setattr(2) with AT_RECURSIVE, which read-only-for-real mounts need, came in 5.12.
bool kernel_has_recursive_read_only() {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 5 || (major == 5 && minor >= 12);
}

std::vector<std::string> ids_of(const auto& items) {
  std::vector<std::string> ids;
  ids.reserve(items.size());
  for (const auto& item : items) ids.push_back(item.id);
  return ids;
}

v1::ContainerEventType to_cri_event(pod::EventType type) {
  switch (type) {
    case pod::EventType::container_created: return v1::CONTAINER_CREATED_EVENT;
    case pod::EventType::container_started: return v1::CONTAINER_STARTED_EVENT;
    case pod::EventType::container_stopped: return v1::CONTAINER_STOPPED_EVENT;
    case pod::EventType::container_deleted: break;
  }
  return v1::CONTAINER_DELETED_EVENT;
}

// Retries `call` with the full id when the text given is a unique prefix of one.
template <typename Call>
auto retry_with_full_id(const std::string& id, const std::vector<std::string>& ids, Call&& call,
                        decltype(call(id)) first) -> decltype(call(id)) {
  auto full = resolve_id(id, ids);
  if (!full) {
    if (full.error().code == EINVAL) return std::unexpected(full.error());
    return first;
  }
  if (*full == id) return first;
  return call(*full);
}

// The full id a unique prefix stands for; an id that matches nothing as it is
// (its removal is then a no-op); EINVAL when the prefix is ambiguous.
Result<std::string> whole_id(const std::string& id, const std::vector<std::string>& ids) {
  auto full = resolve_id(id, ids);
  if (full || full.error().code != ENOENT) return full;
  return id;
}

std::string truncate_output(std::string data) {
  if (data.size() > kExecOutputCap) data.resize(kExecOutputCap);
  return data;
}

}  // namespace

RuntimeService::RuntimeService(pod::Containerizer& containerizer, Options options, storage::ImageStore* images)
    : containerizer_(containerizer),
      options_(std::move(options)),
      images_(images),
      recursive_read_only_mounts_(kernel_has_recursive_read_only()) {}

template <typename Call>
auto RuntimeService::with_pod_id(const std::string& id, Call&& call) -> decltype(call(id)) {
  auto first = call(id);
  if (first || first.error().code != ENOENT) return first;
  return retry_with_full_id(id, ids_of(containerizer_.list_pods()), call, std::move(first));
}

template <typename Call>
auto RuntimeService::with_container_id(const std::string& id, Call&& call) -> decltype(call(id)) {
  auto first = call(id);
  if (first || first.error().code != ENOENT) return first;
  return retry_with_full_id(id, ids_of(containerizer_.list_containers()), call, std::move(first));
}

bool RuntimeService::known_handler(const std::string& handler) const {
  return handler.empty() || std::ranges::find(options_.runtime_handlers, handler) != options_.runtime_handlers.end();
}

ImageNames RuntimeService::image_names(const pod::ContainerStatus& container, ImageFactsCache& cache) {
  ImageNames names = fallback_image_names(container);
  if (!images_ || names.id.empty()) return names;
  auto [it, fresh] = cache.try_emplace(names.id);
  ImageFacts& facts = it->second;
  if (fresh) {
    if (auto image = images_->get(names.id)) {
      facts.found = true;
      facts.tags = image->repo_tags;
      facts.digests = image->repo_digests;
      facts.stop_signal = image->config.defaults.stop_signal.empty() ? "SIGTERM" : image->config.defaults.stop_signal;
    }
  }
  if (!facts.found) return names;
  names.stop_signal = facts.stop_signal;
  // The tag the container was asked for by, when it is one of the image's tags;
  // else its first tag (containerd reports the first).
  if (!facts.tags.empty()) {
    names.spec = facts.tags.front();
    if (auto asked = storage::ImageReference::parse(container.spec.image); asked && !asked->tag.empty())
      if (std::ranges::find(facts.tags, asked->with_tag()) != facts.tags.end()) names.spec = asked->with_tag();
  }
  if (!facts.digests.empty()) names.ref = facts.digests.front();
  return names;
}

void RuntimeService::fill_container_statuses(const std::string& pod_id, const std::vector<pod::ContainerStatus>& all,
                                             google::protobuf::RepeatedPtrField<v1::ContainerStatus>& out) {
  ImageFactsCache cache;
  for (const auto& c : all)
    if (c.pod_id == pod_id) to_cri_status(c, image_names(c, cache), *out.Add());
}

// ---- version, pods -----------------------------------------------------------------

grpc::CallStatus RuntimeService::version(Ctx&, const v1::VersionRequest&, v1::VersionResponse& resp) {
  resp.set_version("0.1.0");
  resp.set_runtime_name(options_.runtime_name);
  resp.set_runtime_version(options_.runtime_version);
  resp.set_runtime_api_version("v1");
  return ok();
}

grpc::CallStatus RuntimeService::run_pod_sandbox(Ctx&, const v1::RunPodSandboxRequest& req,
                                                 v1::RunPodSandboxResponse& resp) {
  if (!req.has_config()) return missing("config");
  if (!known_handler(req.runtime_handler()))
    return {StatusCode::invalid_argument, "unknown runtime handler \"" + req.runtime_handler() + "\""};
  auto spec = to_pod_spec(req.config(), req.runtime_handler());
  if (!spec) return to_call_status(spec.error());
  auto id = containerizer_.run_pod(*spec);
  if (!id) return failed(id.error(), "run pod sandbox " + spec->namespace_ + "/" + spec->name);
  resp.set_pod_sandbox_id(*id);
  return ok();
}

grpc::CallStatus RuntimeService::stop_pod_sandbox(Ctx&, const v1::StopPodSandboxRequest& req,
                                                  v1::StopPodSandboxResponse&) {
  if (req.pod_sandbox_id().empty()) return missing("pod_sandbox_id");
  auto r = with_pod_id(req.pod_sandbox_id(), [&](const std::string& id) { return containerizer_.stop_pod(id); });
  return r ? ok() : failed(r.error(), "stop pod sandbox");
}

grpc::CallStatus RuntimeService::remove_pod_sandbox(Ctx&, const v1::RemovePodSandboxRequest& req,
                                                    v1::RemovePodSandboxResponse&) {
  if (req.pod_sandbox_id().empty()) return missing("pod_sandbox_id");
  // Removing what is already gone is success (kubelet retries removals), so the
  // engine never says ENOENT here: a short id has to be made whole first.
  auto id = whole_id(req.pod_sandbox_id(), ids_of(containerizer_.list_pods()));
  if (!id) return failed(id.error(), "remove pod sandbox");
  auto r = containerizer_.remove_pod(*id);
  if (!r && r.error().code != ENOENT) return failed(r.error(), "remove pod sandbox");
  return ok();
}

grpc::CallStatus RuntimeService::pod_sandbox_status(Ctx&, const v1::PodSandboxStatusRequest& req,
                                                    v1::PodSandboxStatusResponse& resp) {
  if (req.pod_sandbox_id().empty()) return missing("pod_sandbox_id");
  auto pod = with_pod_id(req.pod_sandbox_id(), [&](const std::string& id) { return containerizer_.pod_status(id); });
  if (!pod) return failed(pod.error(), "pod sandbox status");
  to_cri_status(*pod, *resp.mutable_status());
  if (options_.pod_events) {
    fill_container_statuses(pod->id, containerizer_.list_containers(), *resp.mutable_containers_statuses());
    resp.set_timestamp(now_ns());
  }
  if (req.verbose()) (*resp.mutable_info())["info"] = pod_info_json(*pod);
  return ok();
}

grpc::CallStatus RuntimeService::list_pod_sandbox(Ctx&, const v1::ListPodSandboxRequest& req,
                                                  v1::ListPodSandboxResponse& resp) {
  auto pods = containerizer_.list_pods();
  for (const auto* p : select_pods(pods, req.has_filter() ? &req.filter() : nullptr))
    to_cri_sandbox(*p, *resp.add_items());
  return ok();
}

grpc::CallStatus RuntimeService::stream_pod_sandboxes(Ctx& ctx, const v1::StreamPodSandboxesRequest& req,
                                                      Writer<v1::StreamPodSandboxesResponse>& writer) {
  auto pods = containerizer_.list_pods();
  std::vector<v1::PodSandbox> items;
  for (const auto* p : select_pods(pods, req.has_filter() ? &req.filter() : nullptr))
    to_cri_sandbox(*p, items.emplace_back());
  return send_in_batches(ctx, writer, std::move(items), &v1::StreamPodSandboxesResponse::mutable_pod_sandboxes,
                         options_.stream_batch_items, options_.stream_batch_bytes);
}

// ---- containers ------------------------------------------------------------------

grpc::CallStatus RuntimeService::create_container(Ctx&, const v1::CreateContainerRequest& req,
                                                  v1::CreateContainerResponse& resp) {
  if (req.pod_sandbox_id().empty()) return missing("pod_sandbox_id");
  if (!req.has_config()) return missing("config");
  auto spec = to_container_spec(req.config());
  if (!spec) return to_call_status(spec.error());
  // The engine's record of the pod is the authority, not the request's copy of it.
  auto pod = with_pod_id(req.pod_sandbox_id(), [&](const std::string& id) { return containerizer_.pod_status(id); });
  if (!pod) return failed(pod.error(), "create container " + spec->name);
  if (spec->security.privileged && !pod->spec.privileged)
    return {StatusCode::invalid_argument, "create container " + spec->name + ": pod sandbox " + pod->id +
                                              " is not privileged, so its containers cannot be"};
  auto id = containerizer_.create_container(pod->id, *spec);
  if (!id) return failed(id.error(), "create container " + spec->name + " in pod sandbox " + pod->id);
  resp.set_container_id(*id);
  return ok();
}

grpc::CallStatus RuntimeService::start_container(Ctx&, const v1::StartContainerRequest& req,
                                                 v1::StartContainerResponse&) {
  if (req.container_id().empty()) return missing("container_id");
  auto r = with_container_id(req.container_id(),
                             [&](const std::string& id) { return containerizer_.start_container(id); });
  return r ? ok() : failed(r.error(), "start container");
}

grpc::CallStatus RuntimeService::stop_container(Ctx&, const v1::StopContainerRequest& req,
                                                v1::StopContainerResponse&) {
  if (req.container_id().empty()) return missing("container_id");
  std::chrono::seconds timeout{std::max<int64_t>(req.timeout(), 0)};
  auto r = with_container_id(req.container_id(),
                             [&](const std::string& id) { return containerizer_.stop_container(id, timeout); });
  return r ? ok() : failed(r.error(), "stop container");
}

grpc::CallStatus RuntimeService::remove_container(Ctx&, const v1::RemoveContainerRequest& req,
                                                  v1::RemoveContainerResponse&) {
  if (req.container_id().empty()) return missing("container_id");
  // As for pods: the engine's removal of an unknown id succeeds.
  auto id = whole_id(req.container_id(), ids_of(containerizer_.list_containers()));
  if (!id) return failed(id.error(), "remove container");
  auto r = containerizer_.remove_container(*id);
  if (!r && r.error().code != ENOENT) return failed(r.error(), "remove container");
  return ok();
}

grpc::CallStatus RuntimeService::list_containers(Ctx&, const v1::ListContainersRequest& req,
                                                 v1::ListContainersResponse& resp) {
  auto containers = containerizer_.list_containers();
  auto pods = req.filter().pod_sandbox_id().empty() ? std::vector<pod::PodStatus>{} : containerizer_.list_pods();
  for (const auto* c : select_containers(containers, pods, req.has_filter() ? &req.filter() : nullptr))
    to_cri_container(*c, *resp.add_containers());
  return ok();
}

grpc::CallStatus RuntimeService::stream_containers(Ctx& ctx, const v1::StreamContainersRequest& req,
                                                   Writer<v1::StreamContainersResponse>& writer) {
  auto containers = containerizer_.list_containers();
  auto pods = req.filter().pod_sandbox_id().empty() ? std::vector<pod::PodStatus>{} : containerizer_.list_pods();
  std::vector<v1::Container> items;
  for (const auto* c : select_containers(containers, pods, req.has_filter() ? &req.filter() : nullptr))
    to_cri_container(*c, items.emplace_back());
  return send_in_batches(ctx, writer, std::move(items), &v1::StreamContainersResponse::mutable_containers,
                         options_.stream_batch_items, options_.stream_batch_bytes);
}

grpc::CallStatus RuntimeService::container_status(Ctx&, const v1::ContainerStatusRequest& req,
                                                  v1::ContainerStatusResponse& resp) {
  if (req.container_id().empty()) return missing("container_id");
  auto c = with_container_id(req.container_id(),
                             [&](const std::string& id) { return containerizer_.container_status(id); });
  if (!c) return failed(c.error(), "container status");
  ImageFactsCache cache;
  to_cri_status(*c, image_names(*c, cache), *resp.mutable_status());
  if (req.verbose()) (*resp.mutable_info())["info"] = container_info_json(*c);
  return ok();
}

grpc::CallStatus RuntimeService::update_container_resources(Ctx&, const v1::UpdateContainerResourcesRequest& req,
                                                            v1::UpdateContainerResourcesResponse&) {
  if (req.container_id().empty()) return missing("container_id");
  if (!req.has_linux()) return missing("linux (berth runs Linux containers only)");
  pod::Resources resources = to_resources(req.linux());
  auto r = with_container_id(req.container_id(), [&](const std::string& id) {
    return containerizer_.update_container_resources(id, resources);
  });
  return r ? ok() : failed(r.error(), "update container resources");
}

grpc::CallStatus RuntimeService::reopen_container_log(Ctx&, const v1::ReopenContainerLogRequest& req,
                                                      v1::ReopenContainerLogResponse&) {
  if (req.container_id().empty()) return missing("container_id");
  auto r = with_container_id(req.container_id(),
                             [&](const std::string& id) { return containerizer_.reopen_container_log(id); });
  return r ? ok() : failed(r.error(), "reopen container log");
}

// ---- exec ------------------------------------------------------------------------

grpc::CallStatus RuntimeService::exec_sync(Ctx&, const v1::ExecSyncRequest& req, v1::ExecSyncResponse& resp) {
  if (req.container_id().empty()) return missing("container_id");
  if (req.cmd().empty()) return missing("cmd");
  if (req.timeout() < 0) return {StatusCode::invalid_argument, "timeout must not be negative"};
  std::vector<std::string> argv(req.cmd().begin(), req.cmd().end());
  std::chrono::milliseconds timeout = std::chrono::seconds(req.timeout());  // 0: no deadline
  auto r = with_container_id(req.container_id(), [&](const std::string& id) {
    return containerizer_.exec_sync(id, argv, timeout);
  });
  if (!r) return failed(r.error(), "exec in container");
  if (r->timed_out)
    return {StatusCode::deadline_exceeded,
            "command \"" + argv.front() + "\" timed out after " + std::to_string(req.timeout()) + "s"};
  resp.set_stdout(truncate_output(std::move(r->stdout_data)));
  resp.set_stderr(truncate_output(std::move(r->stderr_data)));
  resp.set_exit_code(r->exit_code);
  return ok();
}

// Exec, Attach and PortForward check the request and the target now, so kubelet hears
// of a bad request from the RPC, then hand out a one-time URL on the streaming server.

namespace {

grpc::CallStatus check_stream_flags(bool in, bool out, bool err, bool tty) {
  if (!in && !out && !err) return {StatusCode::invalid_argument, "one of stdin, stdout, or stderr must be set"};
  if (tty && err) return {StatusCode::invalid_argument, "tty and stderr cannot both be true"};
  return ok();
}

}  // namespace

void RuntimeService::set_streaming_server(streaming::StreamingServer* server) { streaming_ = server; }

grpc::CallStatus RuntimeService::issue_url(streaming::CachedRequest request, std::string& url) {
  auto r = streaming_->url_for(std::move(request));
  if (!r) return {StatusCode::resource_exhausted, r.error().message};
  url = std::move(*r);
  return ok();
}

grpc::CallStatus RuntimeService::exec(Ctx&, const v1::ExecRequest& req, v1::ExecResponse& resp) {
  if (!streaming_) return {StatusCode::unimplemented, kStreamingMessage};
  if (req.container_id().empty()) return missing("container_id");
  if (req.cmd().empty()) return missing("cmd");
  if (auto s = check_stream_flags(req.stdin(), req.stdout(), req.stderr(), req.tty()); !s.ok()) return s;
  auto c = with_container_id(req.container_id(),
                             [&](const std::string& id) { return containerizer_.container_status(id); });
  if (!c) return failed(c.error(), "exec");
  if (c->state != pod::ContainerState::running)
    return {StatusCode::failed_precondition, "container " + c->id + " is not running"};
  streaming::ExecRequest cached{c->id, {req.cmd().begin(), req.cmd().end()}, req.tty(), req.stdin(), req.stdout(),
                                req.stderr()};
  return issue_url(std::move(cached), *resp.mutable_url());
}

grpc::CallStatus RuntimeService::attach(Ctx&, const v1::AttachRequest& req, v1::AttachResponse& resp) {
  if (!streaming_) return {StatusCode::unimplemented, kStreamingMessage};
  if (req.container_id().empty()) return missing("container_id");
  if (auto s = check_stream_flags(req.stdin(), req.stdout(), req.stderr(), req.tty()); !s.ok()) return s;
  auto c = with_container_id(req.container_id(),
                             [&](const std::string& id) { return containerizer_.container_status(id); });
  if (!c) return failed(c.error(), "attach");
  if (c->state != pod::ContainerState::running)
    return {StatusCode::failed_precondition, "container " + c->id + " is not running"};
  // The container's stdio was set up at creation; attach cannot change it.
  if (req.tty() != c->spec.tty)
    return {StatusCode::invalid_argument, "container " + c->id + (c->spec.tty ? " has" : " has no") +
                                              " terminal; attach with tty=" + (c->spec.tty ? "true" : "false")};
  if (req.stdin() && !c->spec.stdin_open)
    return {StatusCode::invalid_argument, "container " + c->id + " was not created with stdin open"};
  streaming::AttachRequest cached{c->id, req.tty(), req.stdin(), req.stdout(), req.stderr()};
  return issue_url(std::move(cached), *resp.mutable_url());
}

grpc::CallStatus RuntimeService::port_forward(Ctx&, const v1::PortForwardRequest& req, v1::PortForwardResponse& resp) {
  if (!streaming_) return {StatusCode::unimplemented, kStreamingMessage};
  if (req.pod_sandbox_id().empty()) return missing("pod_sandbox_id");
  std::vector<uint16_t> ports;
  for (int32_t port : req.port()) {
    if (port < 1 || port > 65535)
      return {StatusCode::invalid_argument, "port " + std::to_string(port) + " is not in 1-65535"};
    ports.push_back(static_cast<uint16_t>(port));
  }
  auto pod = with_pod_id(req.pod_sandbox_id(), [&](const std::string& id) { return containerizer_.pod_status(id); });
  if (!pod) return failed(pod.error(), "port forward");
  if (pod->state != pod::PodState::ready) return {StatusCode::failed_precondition, "pod sandbox " + pod->id + " is not ready"};
  return issue_url(streaming::PortForwardRequest{pod->id, std::move(ports)}, *resp.mutable_url());
}

// ---- stats -----------------------------------------------------------------------

grpc::CallStatus RuntimeService::container_stats(Ctx&, const v1::ContainerStatsRequest& req,
                                                 v1::ContainerStatsResponse& resp) {
  if (req.container_id().empty()) return missing("container_id");
  auto c = with_container_id(req.container_id(),
                             [&](const std::string& id) { return containerizer_.container_status(id); });
  if (!c) return failed(c.error(), "container stats");
  auto stats = containerizer_.container_stats(c->id);
  if (!stats) return failed(stats.error(), "container stats of " + c->id);
  std::optional<uint64_t> rate;
  if (stats->cgroup.has_cpu) rate = cpu_rate_.sample(c->id, stats->cgroup.timestamp_ns, stats->cgroup.cpu_usage_ns);
  to_cri_stats(*stats, *c, rate, *resp.mutable_stats());
  return ok();
}

std::vector<v1::ContainerStats> RuntimeService::gather_container_stats(const v1::ContainerStatsFilter* filter) {
  auto containers = containerizer_.list_containers();
  auto pods = filter && !filter->pod_sandbox_id().empty() ? containerizer_.list_pods() : std::vector<pod::PodStatus>{};
  std::vector<v1::ContainerStats> out;
  std::set<std::string> live;
  for (const auto* c : select_containers(containers, pods, filter)) {
    // A container removed since the listing, or one whose cgroup is gone, is left
    // out rather than failing everyone's stats.
    auto stats = containerizer_.container_stats(c->id);
    if (!stats) {
      if (stats.error().code != ENOENT) log::debug("container stats of " + c->id + ": " + stats.error().message);
      continue;
    }
    std::optional<uint64_t> rate;
    if (stats->cgroup.has_cpu) {
      rate = cpu_rate_.sample(c->id, stats->cgroup.timestamp_ns, stats->cgroup.cpu_usage_ns);
      live.insert(c->id);
    }
    to_cri_stats(*stats, *c, rate, out.emplace_back());
  }
  if (!filter) {
    for (const auto& p : containerizer_.list_pods()) live.insert(p.id);
    cpu_rate_.retain(live);
  }
  return out;
}

grpc::CallStatus RuntimeService::list_container_stats(Ctx&, const v1::ListContainerStatsRequest& req,
                                                      v1::ListContainerStatsResponse& resp) {
  for (auto& s : gather_container_stats(req.has_filter() ? &req.filter() : nullptr))
    *resp.add_stats() = std::move(s);
  return ok();
}

grpc::CallStatus RuntimeService::stream_container_stats(Ctx& ctx, const v1::StreamContainerStatsRequest& req,
                                                        Writer<v1::StreamContainerStatsResponse>& writer) {
  return send_in_batches(ctx, writer, gather_container_stats(req.has_filter() ? &req.filter() : nullptr),
                         &v1::StreamContainerStatsResponse::mutable_container_stats, options_.stream_batch_items,
                         options_.stream_batch_bytes);
}

namespace {

// The pod's figures and those of its containers the engine measured.
void pod_stats_message(const pod::PodStats& stats, const pod::PodStatus& pod,
                       const std::vector<pod::ContainerStatus>& containers, CpuUsageRate& rates,
                       v1::PodSandboxStats& out) {
  std::optional<uint64_t> rate;
  if (stats.cgroup.has_cpu) rate = rates.sample(pod.id, stats.cgroup.timestamp_ns, stats.cgroup.cpu_usage_ns);
  to_cri_stats(stats, pod, rate, out);
  for (const auto& cs : stats.containers) {
    auto it = std::ranges::find_if(containers, [&](const pod::ContainerStatus& c) { return c.id == cs.id; });
    if (it == containers.end()) continue;
    std::optional<uint64_t> crate;
    if (cs.cgroup.has_cpu) crate = rates.sample(cs.id, cs.cgroup.timestamp_ns, cs.cgroup.cpu_usage_ns);
    to_cri_stats(cs, *it, crate, *out.mutable_linux()->add_containers());
  }
}

}  // namespace

grpc::CallStatus RuntimeService::pod_sandbox_stats(Ctx&, const v1::PodSandboxStatsRequest& req,
                                                   v1::PodSandboxStatsResponse& resp) {
  if (req.pod_sandbox_id().empty()) return missing("pod_sandbox_id");
  auto pod = with_pod_id(req.pod_sandbox_id(), [&](const std::string& id) { return containerizer_.pod_status(id); });
  if (!pod) return failed(pod.error(), "pod sandbox stats");
  auto stats = containerizer_.pod_stats(pod->id);
  if (!stats) return failed(stats.error(), "pod sandbox stats of " + pod->id);
  pod_stats_message(*stats, *pod, containerizer_.list_containers(), cpu_rate_, *resp.mutable_stats());
  return ok();
}

std::vector<v1::PodSandboxStats> RuntimeService::gather_pod_stats(const v1::PodSandboxStatsFilter* filter) {
  auto pods = containerizer_.list_pods();
  auto containers = containerizer_.list_containers();
  std::vector<v1::PodSandboxStats> out;
  for (const auto* p : select_pods(pods, filter)) {
    // A stopped pod has no cgroup left to measure; containerd skips those too.
    if (p->state != pod::PodState::ready) continue;
    auto stats = containerizer_.pod_stats(p->id);
    if (!stats) {
      if (stats.error().code != ENOENT) log::debug("pod sandbox stats of " + p->id + ": " + stats.error().message);
      continue;
    }
    pod_stats_message(*stats, *p, containers, cpu_rate_, out.emplace_back());
  }
  return out;
}

grpc::CallStatus RuntimeService::list_pod_sandbox_stats(Ctx&, const v1::ListPodSandboxStatsRequest& req,
                                                        v1::ListPodSandboxStatsResponse& resp) {
  for (auto& s : gather_pod_stats(req.has_filter() ? &req.filter() : nullptr)) *resp.add_stats() = std::move(s);
  return ok();
}

grpc::CallStatus RuntimeService::stream_pod_sandbox_stats(Ctx& ctx, const v1::StreamPodSandboxStatsRequest& req,
                                                          Writer<v1::StreamPodSandboxStatsResponse>& writer) {
  return send_in_batches(ctx, writer, gather_pod_stats(req.has_filter() ? &req.filter() : nullptr),
                         &v1::StreamPodSandboxStatsResponse::mutable_pod_sandbox_stats, options_.stream_batch_items,
                         options_.stream_batch_bytes);
}

// ---- runtime ---------------------------------------------------------------------

grpc::CallStatus RuntimeService::update_runtime_config(Ctx&, const v1::UpdateRuntimeConfigRequest& req,
                                                       v1::UpdateRuntimeConfigResponse&) {
  // An empty CIDR means "nothing to say", not "forget the CIDR" (containerd alike).
  const std::string& cidr = req.runtime_config().network_config().pod_cidr();
  if (!cidr.empty()) containerizer_.set_pod_cidr(cidr);
  return ok();
}

grpc::CallStatus RuntimeService::status(Ctx&, const v1::StatusRequest& req, v1::StatusResponse& resp) {
  auto* runtime_ready = resp.mutable_status()->add_conditions();
  runtime_ready->set_type("RuntimeReady");
  runtime_ready->set_status(true);
  auto* network_ready = resp.mutable_status()->add_conditions();
  network_ready->set_type("NetworkReady");
  auto network = containerizer_.network_ready();
  network_ready->set_status(network.has_value());
  if (!network) {
    network_ready->set_reason("NetworkPluginNotReady");
    network_ready->set_message("Network plugin returns error: " + network.error().message);
  }

  std::vector<std::string> handlers{""};
  handlers.insert(handlers.end(), options_.runtime_handlers.begin(), options_.runtime_handlers.end());
  for (const auto& name : handlers) {
    auto* handler = resp.add_runtime_handlers();
    handler->set_name(name);
    handler->mutable_features()->set_recursive_read_only_mounts(recursive_read_only_mounts_);
    handler->mutable_features()->set_user_namespaces(false);
  }
  // Strict supplemental groups work, but the policy feature also promises
  // ContainerStatus.user, which the engine does not report yet.
  resp.mutable_features()->set_supplemental_groups_policy(false);
  resp.mutable_features()->set_user_namespaces_host_network(false);

  if (req.verbose()) {
    nlohmann::json config = {{"runtimeName", options_.runtime_name},
                             {"runtimeVersion", options_.runtime_version},
                             {"cgroupDriver", options_.cgroup_driver},
                             {"runtimeHandlers", handlers},
                             {"eventQueueCapacity", options_.event_queue_capacity}};
    auto& info = *resp.mutable_info();
    info["config"] = config.dump();
    info["lastCNILoadStatus"] = nlohmann::json(network ? std::string("OK") : network.error().message).dump();
    info["recovery"] = nlohmann::json(containerizer_.recovery_report()).dump();
  }
  return ok();
}

grpc::CallStatus RuntimeService::checkpoint_container(Ctx&, const v1::CheckpointContainerRequest&,
                                                      v1::CheckpointContainerResponse&) {
  return {StatusCode::unimplemented, "checkpointing containers is not supported by berth"};
}

grpc::CallStatus RuntimeService::runtime_config(Ctx&, const v1::RuntimeConfigRequest&, v1::RuntimeConfigResponse& resp) {
  resp.mutable_linux()->set_cgroup_driver(options_.cgroup_driver == "systemd" ? v1::SYSTEMD : v1::CGROUPFS);
  return ok();
}

grpc::CallStatus RuntimeService::update_pod_sandbox_resources(Ctx&, const v1::UpdatePodSandboxResourcesRequest& req,
                                                              v1::UpdatePodSandboxResourcesResponse&) {
  if (req.pod_sandbox_id().empty()) return missing("pod_sandbox_id");
  auto pod = with_pod_id(req.pod_sandbox_id(), [&](const std::string& id) { return containerizer_.pod_status(id); });
  if (!pod) return failed(pod.error(), "update pod sandbox resources");
  // kubelet resizes the pod cgroup itself before this call and treats the call as
  // best effort; berth keeps no pod-level resource state of its own to change, so
  // like containerd (without NRI plugins) it acknowledges the pod and is done.
  return ok();
}

// ---- metrics ---------------------------------------------------------------------

grpc::CallStatus RuntimeService::list_metric_descriptors(Ctx&, const v1::ListMetricDescriptorsRequest&,
                                                         v1::ListMetricDescriptorsResponse& resp) {
  fill_metric_descriptors(resp);
  return ok();
}

std::vector<v1::PodSandboxMetrics> RuntimeService::gather_pod_metrics() {
  auto pods = containerizer_.list_pods();
  auto containers = containerizer_.list_containers();
  std::vector<v1::PodSandboxMetrics> out;
  for (const auto& p : pods) {
    if (p.state != pod::PodState::ready) continue;
    auto stats = containerizer_.pod_stats(p.id);
    if (!stats) continue;
    std::vector<const pod::ContainerStatus*> mine;
    for (const auto& c : containers)
      if (c.pod_id == p.id) mine.push_back(&c);
    to_cri_metrics(*stats, p, mine, out.emplace_back());
  }
  return out;
}

grpc::CallStatus RuntimeService::list_pod_sandbox_metrics(Ctx&, const v1::ListPodSandboxMetricsRequest&,
                                                          v1::ListPodSandboxMetricsResponse& resp) {
  for (auto& m : gather_pod_metrics()) *resp.add_pod_metrics() = std::move(m);
  return ok();
}

grpc::CallStatus RuntimeService::stream_pod_sandbox_metrics(Ctx& ctx, const v1::StreamPodSandboxMetricsRequest&,
                                                            Writer<v1::StreamPodSandboxMetricsResponse>& writer) {
  return send_in_batches(ctx, writer, gather_pod_metrics(),
                         &v1::StreamPodSandboxMetricsResponse::mutable_pod_sandbox_metrics,
                         options_.stream_batch_items, options_.stream_batch_bytes);
}

// ---- events ----------------------------------------------------------------------

void RuntimeService::build_event(const pod::Event& event,
                                 std::unordered_map<std::string, v1::PodSandboxStatus>& last_pod_status,
                                 v1::ContainerEventResponse& out) {
  out.set_container_id(event.container_id);
  out.set_container_event_type(to_cri_event(event.type));
  out.set_created_at(event.at_ns);
  const std::string& pod_id = event.pod_id.empty() ? event.container_id : event.pod_id;
  // kubelet finds the pod by the sandbox metadata even in a deletion event, when
  // the engine no longer knows the pod: the last status seen stands in.
  if (auto pod = containerizer_.pod_status(pod_id)) {
    to_cri_status(*pod, last_pod_status[pod_id]);
  }
  if (auto it = last_pod_status.find(pod_id); it != last_pod_status.end()) {
    *out.mutable_pod_sandbox_status() = it->second;
  } else {
    out.mutable_pod_sandbox_status()->set_id(pod_id);
  }
  fill_container_statuses(pod_id, containerizer_.list_containers(), *out.mutable_containers_statuses());
  if (event.type == pod::EventType::container_deleted && event.container_id == pod_id) last_pod_status.erase(pod_id);
}

grpc::CallStatus RuntimeService::get_container_events(Ctx& ctx, const v1::GetEventsRequest&,
                                                      Writer<v1::ContainerEventResponse>& writer) {
  auto queue = std::make_shared<EventQueue>(options_.event_queue_capacity);
  // The sink runs on engine threads, maybe under engine locks: it only queues.
  uint64_t handle = containerizer_.subscribe([queue, capacity = options_.event_queue_capacity](const pod::Event& e) {
    if (queue->push(e) == EventQueue::Push::overflowed)
      log::warn("GetContainerEvents: a subscriber fell " + std::to_string(capacity) +
                " events behind; dropping it so the engine never waits for it");
  });
  struct Unsubscribe {
    pod::Containerizer& c;
    uint64_t handle;
    std::shared_ptr<EventQueue> queue;
    ~Unsubscribe() {
      c.unsubscribe(handle);
      queue->close();
    }
  } unsubscribe{containerizer_, handle, queue};

  // Seeded before the first event so that a deletion seen first still carries its
  // pod's metadata.
  std::unordered_map<std::string, v1::PodSandboxStatus> last_pod_status;
  for (const auto& p : containerizer_.list_pods()) to_cri_status(p, last_pod_status[p.id]);

  using Clock = std::chrono::steady_clock;
  while (!ctx.cancelled()) {
    auto event = queue->pop(Clock::now() + std::chrono::milliseconds(500));
    if (!event) {
      if (queue->overflowed())
        return {StatusCode::resource_exhausted, "too many container events queued for this client; subscribe again"};
      continue;
    }
    v1::ContainerEventResponse resp;
    build_event(*event, last_pod_status, resp);
    if (!writer.write(resp)) break;
  }
  return {StatusCode::cancelled, "the client went away"};
}

// ---- registration ----------------------------------------------------------------

void RuntimeService::register_with(grpc::GrpcServer& server) {
  const std::string prefix = "/runtime.v1.RuntimeService/";
#define BERTH_UNARY(Name, method, Req, Resp)                                                                \
  server.unary<v1::Req, v1::Resp>(prefix + #Name, [this](Ctx& ctx, const v1::Req& req, v1::Resp& resp) { \
    return method(ctx, req, resp);                                                                        \
  })
#define BERTH_STREAM(Name, method, Req, Resp)                                                        \
  server.server_stream<v1::Req, v1::Resp>(prefix + #Name,                                            \
                                          [this](Ctx& ctx, const v1::Req& req, Writer<v1::Resp>& w) { \
                                            return method(ctx, req, w);                              \
                                          })
  BERTH_UNARY(Version, version, VersionRequest, VersionResponse);
  BERTH_UNARY(RunPodSandbox, run_pod_sandbox, RunPodSandboxRequest, RunPodSandboxResponse);
  BERTH_UNARY(StopPodSandbox, stop_pod_sandbox, StopPodSandboxRequest, StopPodSandboxResponse);
  BERTH_UNARY(RemovePodSandbox, remove_pod_sandbox, RemovePodSandboxRequest, RemovePodSandboxResponse);
  BERTH_UNARY(PodSandboxStatus, pod_sandbox_status, PodSandboxStatusRequest, PodSandboxStatusResponse);
  BERTH_UNARY(ListPodSandbox, list_pod_sandbox, ListPodSandboxRequest, ListPodSandboxResponse);
  BERTH_STREAM(StreamPodSandboxes, stream_pod_sandboxes, StreamPodSandboxesRequest, StreamPodSandboxesResponse);
  BERTH_UNARY(CreateContainer, create_container, CreateContainerRequest, CreateContainerResponse);
  BERTH_UNARY(StartContainer, start_container, StartContainerRequest, StartContainerResponse);
  BERTH_UNARY(StopContainer, stop_container, StopContainerRequest, StopContainerResponse);
  BERTH_UNARY(RemoveContainer, remove_container, RemoveContainerRequest, RemoveContainerResponse);
  BERTH_UNARY(ListContainers, list_containers, ListContainersRequest, ListContainersResponse);
  BERTH_STREAM(StreamContainers, stream_containers, StreamContainersRequest, StreamContainersResponse);
  BERTH_UNARY(ContainerStatus, container_status, ContainerStatusRequest, ContainerStatusResponse);
  BERTH_UNARY(UpdateContainerResources, update_container_resources, UpdateContainerResourcesRequest,
              UpdateContainerResourcesResponse);
  BERTH_UNARY(ReopenContainerLog, reopen_container_log, ReopenContainerLogRequest, ReopenContainerLogResponse);
  BERTH_UNARY(ExecSync, exec_sync, ExecSyncRequest, ExecSyncResponse);
  BERTH_UNARY(Exec, exec, ExecRequest, ExecResponse);
  BERTH_UNARY(Attach, attach, AttachRequest, AttachResponse);
  BERTH_UNARY(PortForward, port_forward, PortForwardRequest, PortForwardResponse);
  BERTH_UNARY(ContainerStats, container_stats, ContainerStatsRequest, ContainerStatsResponse);
  BERTH_UNARY(ListContainerStats, list_container_stats, ListContainerStatsRequest, ListContainerStatsResponse);
  BERTH_STREAM(StreamContainerStats, stream_container_stats, StreamContainerStatsRequest,
               StreamContainerStatsResponse);
  BERTH_UNARY(PodSandboxStats, pod_sandbox_stats, PodSandboxStatsRequest, PodSandboxStatsResponse);
  BERTH_UNARY(ListPodSandboxStats, list_pod_sandbox_stats, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse);
  BERTH_STREAM(StreamPodSandboxStats, stream_pod_sandbox_stats, StreamPodSandboxStatsRequest,
               StreamPodSandboxStatsResponse);
  BERTH_UNARY(UpdateRuntimeConfig, update_runtime_config, UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse);
  BERTH_UNARY(Status, status, StatusRequest, StatusResponse);
  BERTH_UNARY(CheckpointContainer, checkpoint_container, CheckpointContainerRequest, CheckpointContainerResponse);
  BERTH_STREAM(GetContainerEvents, get_container_events, GetEventsRequest, ContainerEventResponse);
  BERTH_UNARY(ListMetricDescriptors, list_metric_descriptors, ListMetricDescriptorsRequest,
              ListMetricDescriptorsResponse);
  BERTH_UNARY(ListPodSandboxMetrics, list_pod_sandbox_metrics, ListPodSandboxMetricsRequest,
              ListPodSandboxMetricsResponse);
  BERTH_STREAM(StreamPodSandboxMetrics, stream_pod_sandbox_metrics, StreamPodSandboxMetricsRequest,
               StreamPodSandboxMetricsResponse);
  BERTH_UNARY(RuntimeConfig, runtime_config, RuntimeConfigRequest, RuntimeConfigResponse);
  BERTH_UNARY(UpdatePodSandboxResources, update_pod_sandbox_resources, UpdatePodSandboxResourcesRequest,
              UpdatePodSandboxResourcesResponse);
#undef BERTH_UNARY
#undef BERTH_STREAM
}

}  // namespace berth::cri

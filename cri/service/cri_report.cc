#include "cri/service/cri_report.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cri/service/cri_translate.h"

namespace berth::cri {

namespace {

template <typename Map>
void fill_map(const std::map<std::string, std::string>& from, Map& to) {
  for (const auto& [k, v] : from) to[k] = v;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void fill_metadata(const pod::PodSandboxSpec& spec, v1::PodSandboxMetadata& out) {
  out.set_name(spec.name);
  out.set_uid(spec.uid);
  out.set_namespace_(spec.namespace_);
  out.set_attempt(spec.attempt);
}

void fill_metadata(const pod::ContainerSpec& spec, v1::ContainerMetadata& out) {
  out.set_name(spec.name);
  out.set_attempt(spec.attempt);
}

void fill_cpu(const pod::CgroupStats& cg, std::optional<uint64_t> nano_cores, v1::CpuUsage& out) {
  out.set_timestamp(cg.timestamp_ns);
  out.mutable_usage_core_nano_seconds()->set_value(cg.cpu_usage_ns);
  if (nano_cores) out.mutable_usage_nano_cores()->set_value(*nano_cores);
}

void fill_memory(const pod::CgroupStats& cg, v1::MemoryUsage& out) {
  out.set_timestamp(cg.timestamp_ns);
  out.mutable_working_set_bytes()->set_value(cg.memory_working_set_bytes);
  out.mutable_available_bytes()->set_value(cg.memory_available_bytes);
  out.mutable_usage_bytes()->set_value(cg.memory_usage_bytes);
  out.mutable_rss_bytes()->set_value(cg.memory_rss_bytes);
  out.mutable_page_faults()->set_value(cg.page_faults);
  out.mutable_major_page_faults()->set_value(cg.major_page_faults);
}

nlohmann::json proto_json(const google::protobuf::Message& message) {
  auto parsed = nlohmann::json::parse(to_json(message), nullptr, false);
  return parsed.is_discarded() ? nlohmann::json() : parsed;
}

}  // namespace

ImageNames fallback_image_names(const pod::ContainerStatus& status) {
  std::string id = status.image_id.empty() ? status.image_ref : status.image_id;
  return ImageNames{status.spec.image, id, id, {}};
}

v1::PodSandboxState to_cri_state(pod::PodState state) {
  return state == pod::PodState::ready ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
}

v1::ContainerState to_cri_state(pod::ContainerState state) {
  switch (state) {
    case pod::ContainerState::created: return v1::CONTAINER_CREATED;
    case pod::ContainerState::running: return v1::CONTAINER_RUNNING;
    case pod::ContainerState::exited: return v1::CONTAINER_EXITED;
    case pod::ContainerState::unknown: break;
  }
  return v1::CONTAINER_UNKNOWN;
}

void to_cri_status(const pod::PodStatus& pod, v1::PodSandboxStatus& out) {
  out.set_id(pod.id);
  fill_metadata(pod.spec, *out.mutable_metadata());
  out.set_state(to_cri_state(pod.state));
  out.set_created_at(pod.created_at_ns);
  // A host-network pod's address is the node's, which kubelet knows itself; like
  // containerd, report none.
  auto* network = out.mutable_network();
  if (pod.spec.namespaces.network != pod::NamespaceMode::node && !pod.ips.empty()) {
    network->set_ip(pod.ips.front());
    for (size_t i = 1; i < pod.ips.size(); ++i) network->add_additional_ips()->set_ip(pod.ips[i]);
  }
  to_cri_namespaces(pod.spec.namespaces, *out.mutable_linux()->mutable_namespaces()->mutable_options());
  fill_map(pod.spec.labels, *out.mutable_labels());
  fill_map(pod.spec.annotations, *out.mutable_annotations());
  out.set_runtime_handler(pod.spec.runtime_handler);
}

void to_cri_sandbox(const pod::PodStatus& pod, v1::PodSandbox& out) {
  out.set_id(pod.id);
  fill_metadata(pod.spec, *out.mutable_metadata());
  out.set_state(to_cri_state(pod.state));
  out.set_created_at(pod.created_at_ns);
  fill_map(pod.spec.labels, *out.mutable_labels());
  fill_map(pod.spec.annotations, *out.mutable_annotations());
  out.set_runtime_handler(pod.spec.runtime_handler);
}

void to_cri_status(const pod::ContainerStatus& c, const ImageNames& image, v1::ContainerStatus& out) {
  out.set_id(c.id);
  fill_metadata(c.spec, *out.mutable_metadata());
  out.set_state(to_cri_state(c.state));
  out.set_created_at(c.created_at_ns);
  // Times that have not happened yet for this state stay 0, as CRI defines them.
  bool started = c.state != pod::ContainerState::created;
  bool finished = c.state == pod::ContainerState::exited || c.state == pod::ContainerState::unknown;
  if (started) out.set_started_at(c.started_at_ns);
  if (finished) {
    out.set_finished_at(c.finished_at_ns);
    out.set_exit_code(c.exit_code);
  }
  std::string reason = c.reason;
  if (c.state == pod::ContainerState::exited && reason.empty()) reason = c.exit_code == 0 ? "Completed" : "Error";
  out.set_reason(reason);
  out.set_message(c.message);
  out.mutable_image()->set_image(image.spec);
  out.set_image_ref(image.ref);
  out.set_image_id(image.id);
  fill_map(c.spec.labels, *out.mutable_labels());
  fill_map(c.spec.annotations, *out.mutable_annotations());
  for (const auto& m : c.spec.mounts) to_cri_mount(m, *out.add_mounts());
  out.set_log_path(c.log_path);
  if (c.spec.resources) to_cri_resources(*c.spec.resources, *out.mutable_resources()->mutable_linux());
  std::string signal = c.spec.stop_signal.empty() ? image.stop_signal : c.spec.stop_signal;
  out.set_stop_signal(static_cast<v1::Signal>(stop_signal_value(signal)));
}

void to_cri_container(const pod::ContainerStatus& c, v1::Container& out) {
  out.set_id(c.id);
  out.set_pod_sandbox_id(c.pod_id);
  fill_metadata(c.spec, *out.mutable_metadata());
  // Listed as created, with the image ID as the reference, like containerd does;
  // kubelet created it with the ID PullImage gave, so both usually agree.
  std::string id = c.image_id.empty() ? c.image_ref : c.image_id;
  out.mutable_image()->set_image(c.spec.image);
  out.set_image_ref(id);
  out.set_image_id(id);
  out.set_state(to_cri_state(c.state));
  out.set_created_at(c.created_at_ns);
  fill_map(c.spec.labels, *out.mutable_labels());
  fill_map(c.spec.annotations, *out.mutable_annotations());
}

void to_cri_stats(const pod::ContainerStats& stats, const pod::ContainerStatus& c, std::optional<uint64_t> nano_cores,
                  v1::ContainerStats& out) {
  auto* attributes = out.mutable_attributes();
  attributes->set_id(c.id);
  fill_metadata(c.spec, *attributes->mutable_metadata());
  fill_map(c.spec.labels, *attributes->mutable_labels());
  fill_map(c.spec.annotations, *attributes->mutable_annotations());
  const auto& cg = stats.cgroup;
  if (cg.has_cpu) fill_cpu(cg, nano_cores, *out.mutable_cpu());
  if (cg.has_memory) fill_memory(cg, *out.mutable_memory());
  // kubelet's ephemeral-storage accounting needs the writable layer even for
  // containers that no longer run, so it is always reported.
  auto* layer = out.mutable_writable_layer();
  layer->set_timestamp(cg.timestamp_ns > 0 ? cg.timestamp_ns : now_ns());
  layer->mutable_fs_id()->set_mountpoint(stats.filesystem_mountpoint);
  layer->mutable_used_bytes()->set_value(stats.writable_layer_bytes);
  layer->mutable_inodes_used()->set_value(stats.writable_layer_inodes);
}

void to_cri_stats(const pod::PodStats& stats, const pod::PodStatus& pod, std::optional<uint64_t> nano_cores,
                  v1::PodSandboxStats& out) {
  auto* attributes = out.mutable_attributes();
  attributes->set_id(pod.id);
  fill_metadata(pod.spec, *attributes->mutable_metadata());
  fill_map(pod.spec.labels, *attributes->mutable_labels());
  fill_map(pod.spec.annotations, *attributes->mutable_annotations());
  auto* linux = out.mutable_linux();
  const auto& cg = stats.cgroup;
  if (cg.has_cpu) fill_cpu(cg, nano_cores, *linux->mutable_cpu());
  if (cg.has_memory) fill_memory(cg, *linux->mutable_memory());
  auto* process = linux->mutable_process();
  process->set_timestamp(cg.timestamp_ns > 0 ? cg.timestamp_ns : now_ns());
  process->mutable_process_count()->set_value(cg.pids);
}

std::string pod_info_json(const pod::PodStatus& pod) {
  v1::PodSandboxConfig config;
  to_cri_config(pod.spec, config);
  bool host_network = pod.spec.namespaces.network == pod::NamespaceMode::node;
  nlohmann::json info = {
      {"pid", pod.pid_holder},
      {"processStatus", pod.pid_holder > 0 ? "running" : "stopped"},
      {"netNamespaceClosed", !host_network && pod.netns_path.empty()},
      {"netNamespacePath", pod.netns_path},
      {"cgroupPath", pod.cgroup_path},
      {"runtimeHandler", pod.spec.runtime_handler},
      {"runtimeType", "berth"},
      {"config", proto_json(config)},
  };
  auto cni = nlohmann::json::parse(pod.cni_result_json, nullptr, false);
  info["cniResult"] = pod.cni_result_json.empty() || cni.is_discarded() ? nlohmann::json() : cni;
  return info.dump();
}

std::string container_info_json(const pod::ContainerStatus& c) {
  v1::ContainerConfig config;
  to_cri_config(c.spec, config);
  nlohmann::json info = {
      {"sandboxID", c.pod_id},
      {"pid", c.pid},
      {"removing", false},
      {"imageRef", c.image_ref},
      {"imageID", c.image_id},
      {"cgroupPath", c.cgroup_path},
      {"logPath", c.log_path},
      {"runtimeType", "berth"},
      {"config", proto_json(config)},
  };
  return info.dump();
}

std::string to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

}  // namespace berth::cri

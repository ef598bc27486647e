#include "cri/service/cri_metrics.h"

#include <optional>
#include <string>

namespace berth::cri {

namespace {

struct Descriptor {
  const char* name;
  const char* help;
  bool cpu_label;
  v1::MetricType type;
};

constexpr Descriptor kDescriptors[] = {
    {"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", true, v1::COUNTER},
    {"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", false, v1::GAUGE},
    {"container_memory_working_set_bytes", "Current working set in bytes.", false, v1::GAUGE},
    {"container_memory_rss", "Size of RSS in bytes.", false, v1::GAUGE},
    {"container_processes", "Number of processes running inside the container.", false, v1::GAUGE},
    {"container_spec_cpu_period", "CPU period of the container.", false, v1::GAUGE},
    {"container_spec_cpu_quota", "CPU quota of the container.", false, v1::GAUGE},
    {"container_spec_cpu_shares", "CPU share of the container.", false, v1::GAUGE},
    {"container_spec_memory_limit_bytes", "Memory limit for the container.", false, v1::GAUGE},
};

const Descriptor& descriptor(std::string_view name) {
  for (const auto& d : kDescriptors)
    if (name == d.name) return d;
  return kDescriptors[0];
}

class MetricWriter {
 public:
  MetricWriter(std::vector<std::string> base_labels, google::protobuf::RepeatedPtrField<v1::Metric>& out)
      : base_(std::move(base_labels)), out_(out) {}

  void add(std::string_view name, uint64_t value) {
    const Descriptor& d = descriptor(name);
    v1::Metric* m = out_.Add();
    m->set_name(d.name);
    // Gathered live for this call: CRI wants timestamp 0 then.
    m->set_timestamp(0);
    m->set_metric_type(d.type);
    for (const auto& l : base_) m->add_label_values(l);
    if (d.cpu_label) m->add_label_values("total");
    m->mutable_value()->set_value(value);
  }

  void cgroup(const pod::CgroupStats& cg) {
    if (cg.has_cpu) add("container_cpu_usage_seconds_total", cg.cpu_usage_ns / 1'000'000'000u);
    if (cg.has_memory) {
      add("container_memory_usage_bytes", cg.memory_usage_bytes);
      add("container_memory_working_set_bytes", cg.memory_working_set_bytes);
      add("container_memory_rss", cg.memory_rss_bytes);
    }
    add("container_processes", cg.pids);
  }

  // Limits kubelet asked for; an unset limit is not a limit of 0, so it is left out.
  void spec(const std::optional<pod::Resources>& r) {
    if (!r) return;
    if (r->cpu_period > 0) add("container_spec_cpu_period", static_cast<uint64_t>(r->cpu_period));
    if (r->cpu_quota > 0) add("container_spec_cpu_quota", static_cast<uint64_t>(r->cpu_quota));
    if (r->cpu_shares > 0) add("container_spec_cpu_shares", static_cast<uint64_t>(r->cpu_shares));
    if (r->memory_limit_in_bytes > 0)
      add("container_spec_memory_limit_bytes", static_cast<uint64_t>(r->memory_limit_in_bytes));
  }

 private:
  std::vector<std::string> base_;
  google::protobuf::RepeatedPtrField<v1::Metric>& out_;
};

}  // namespace

void fill_metric_descriptors(v1::ListMetricDescriptorsResponse& out) {
  for (const auto& d : kDescriptors) {
    auto* desc = out.add_descriptors();
    desc->set_name(d.name);
    desc->set_help(d.help);
    for (const char* key : {"id", "name", "image"}) desc->add_label_keys(key);
    if (d.cpu_label) desc->add_label_keys("cpu");
  }
}

void to_cri_metrics(const pod::PodStats& stats, const pod::PodStatus& pod,
                    const std::vector<const pod::ContainerStatus*>& containers, v1::PodSandboxMetrics& out) {
  out.set_pod_sandbox_id(pod.id);
  MetricWriter pod_writer({pod.id, "POD", ""}, *out.mutable_metrics());
  pod_writer.cgroup(stats.cgroup);
  pod_writer.spec(pod.spec.resources);
  for (const auto* c : containers) {
    const pod::ContainerStats* cs = nullptr;
    for (const auto& s : stats.containers)
      if (s.id == c->id) cs = &s;
    if (!cs) continue;
    auto* cm = out.add_container_metrics();
    cm->set_container_id(c->id);
    MetricWriter writer({c->id, c->spec.name, c->spec.image}, *cm->mutable_metrics());
    writer.cgroup(cs->cgroup);
    writer.spec(c->spec.resources);
  }
}

}  // namespace berth::cri

// ListMetricDescriptors / ListPodSandboxMetrics: cAdvisor-named metrics from the
// stats berth gathers anyway, so kubelet can serve /metrics/cadvisor from CRI alone.
// Label keys are id, name and image (plus cpu where cAdvisor has it); kubelet adds
// namespace, pod and container itself, so they must not appear here. CRI carries
// integers only, so seconds are whole seconds, as CRI-O reports them.
#pragma once

#include "cri/proto/runtime_api.h"

#include <vector>

#include "runtime/containerizer/containerizer.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// The fixed set, the same for the whole life of the process as CRI requires.
void fill_metric_descriptors(v1::ListMetricDescriptorsResponse& out);

// The pod's own cgroup figures (name "POD") and each container's. Containers
// missing from stats.containers are left out.
void to_cri_metrics(const pod::PodStats& stats, const pod::PodStatus& pod,
                    const std::vector<const pod::ContainerStatus*>& containers, v1::PodSandboxMetrics& out);

}  // namespace berth::cri

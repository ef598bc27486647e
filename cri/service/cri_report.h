// What the engine knows about pods and containers -> the runtime.v1 status, list,
// stats and verbose-info messages kubelet reads. Pure functions of their inputs;
// the runtime service gathers the inputs.
#pragma once

#include "cri/proto/runtime_api.h"

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/containerizer/containerizer.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// How a container status names its image. The engine records only what the request
// named and the image ID; tags and digests come from the image store when it has them.
struct ImageNames {
  std::string spec;         // ContainerStatus.image.image: first repo tag, else the requested name
  std::string ref;          // ContainerStatus.image_ref: first repo digest, else the image ID
  std::string id;           // the image ID, as PullImage returned it
  std::string stop_signal;  // the image's default stop signal; "" when unknown
};
// The names when the image store cannot say more (image removed, or no store).
ImageNames fallback_image_names(const pod::ContainerStatus& status);

v1::PodSandboxState to_cri_state(pod::PodState state);
v1::ContainerState to_cri_state(pod::ContainerState state);

void to_cri_status(const pod::PodStatus& pod, v1::PodSandboxStatus& out);
void to_cri_sandbox(const pod::PodStatus& pod, v1::PodSandbox& out);
void to_cri_status(const pod::ContainerStatus& container, const ImageNames& image, v1::ContainerStatus& out);
void to_cri_container(const pod::ContainerStatus& container, v1::Container& out);

// `nano_cores` is the CPU rate since the previous sample, when there was one.
void to_cri_stats(const pod::ContainerStats& stats, const pod::ContainerStatus& container,
                  std::optional<uint64_t> nano_cores, v1::ContainerStats& out);
// The pod's own figures; the caller appends its containers to out.linux().containers.
void to_cri_stats(const pod::PodStats& stats, const pod::PodStatus& pod, std::optional<uint64_t> nano_cores,
                  v1::PodSandboxStats& out);

// The JSON kept under the "info" key of verbose status replies, shaped like
// containerd's (pid, config, runtime details) so crictl inspect users find their way.
std::string pod_info_json(const pod::PodStatus& pod);
std::string container_info_json(const pod::ContainerStatus& container);

// A proto message as JSON with its .proto field names (what Go's encoding/json
// prints for the CRI structs too).
std::string to_json(const google::protobuf::Message& message);

}  // namespace berth::cri

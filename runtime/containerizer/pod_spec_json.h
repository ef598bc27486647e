// Pod and container specs as JSON: how the database keeps the request each pod and
// container was made from, so recovery and status calls can answer from it.
#pragma once

#include <string>

#include "common/error.h"
#include "runtime/containerizer/pod_spec.h"

namespace berth::pod {

std::string to_json(const PodSandboxSpec& spec);
std::string to_json(const ContainerSpec& spec);
std::string to_json(const Resources& resources);
Result<PodSandboxSpec> pod_spec_from_json(const std::string& text);
Result<ContainerSpec> container_spec_from_json(const std::string& text);
Result<Resources> resources_from_json(const std::string& text);

}  // namespace berth::pod

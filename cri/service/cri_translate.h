// runtime.v1 request configs <-> the Containerizer's plain request model, both ways.
// Inbound, every rule CRI states about a config is checked here, so a bad request is
// refused with EINVAL (INVALID_ARGUMENT) before the engine makes anything. Outbound
// (spec -> config) serves status replies and the verbose info kubelet and crictl show.
#pragma once

#include "cri/proto/runtime_api.h"

#include <string>
#include <string_view>

#include "common/error.h"
#include "runtime/containerizer/pod_spec.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Pod sandbox config (plus RunPodSandboxRequest.runtime_handler) -> PodSandboxSpec.
Result<pod::PodSandboxSpec> to_pod_spec(const v1::PodSandboxConfig& config, const std::string& runtime_handler);
// The inverse, for status metadata and verbose info.
void to_cri_config(const pod::PodSandboxSpec& spec, v1::PodSandboxConfig& out);

Result<pod::ContainerSpec> to_container_spec(const v1::ContainerConfig& config);
void to_cri_config(const pod::ContainerSpec& spec, v1::ContainerConfig& out);

pod::Resources to_resources(const v1::LinuxContainerResources& resources);
void to_cri_resources(const pod::Resources& resources, v1::LinuxContainerResources& out);

pod::NamespaceMode to_namespace_mode(v1::NamespaceMode mode);
v1::NamespaceMode to_cri_namespace_mode(pod::NamespaceMode mode);
void to_cri_namespaces(const pod::NamespaceOptions& options, v1::NamespaceOption& out);

pod::MountPropagation to_propagation(v1::MountPropagation propagation);
v1::MountPropagation to_cri_propagation(pod::MountPropagation propagation);
Result<pod::Mount> to_mount(const v1::Mount& mount);
void to_cri_mount(const pod::Mount& mount, v1::Mount& out);

// Seccomp and AppArmor choices. The structured SecurityProfile wins when present;
// otherwise the deprecated string ("runtime/default", "docker/default", "unconfined",
// "localhost/<ref>", or "" for unset) is read. A seccomp localhost ref must be an
// absolute path; an AppArmor one is a profile name.
enum class ProfileKind { seccomp, apparmor };
Result<pod::SecurityProfile> to_security_profile(const v1::SecurityProfile* structured, std::string_view legacy,
                                                 ProfileKind kind);
Result<pod::SecurityProfile> parse_legacy_profile(std::string_view text, ProfileKind kind);
// False for an unset profile (nothing to report).
bool to_cri_security_profile(const pod::SecurityProfile& profile, v1::SecurityProfile& out);

// CRI Signal enum value -> signal name as the engine parses it ("SIGTERM",
// "SIGRTMIN+3"); "" for RUNTIME_DEFAULT. Aliases come out canonical (SIGCLD ->
// SIGCHLD, SIGPOLL -> SIGIO, SIGIOT -> SIGABRT). EINVAL for a value outside the enum.
Result<std::string> stop_signal_name(int cri_signal);
// Signal name ("SIGTERM", "TERM", "SIGRTMAX-2") -> CRI Signal enum value;
// RUNTIME_DEFAULT (0) for "" or a name CRI cannot express.
int stop_signal_value(std::string_view name);

}  // namespace berth::cri

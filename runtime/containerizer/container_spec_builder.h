// CreateContainer's translation: a pod, its running sandbox, the container request
// and the image's defaults become the OCI config.json berth's launcher runs. The
// rules follow containerd's CRI plugin (process, user, capabilities, seccomp, mounts,
// devices, namespaces, resources, annotations) so workloads behave as they do
// there; where berth differs, container_spec_builder.cc says so next to the rule.
// Every check that can fail runs here, so a bad request fails CreateContainer and
// never a later StartContainer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "runtime/containerizer/pod_spec.h"
#include "storage/image_config.h"

namespace berth::pod {

// Facts about a running sandbox that its containers' specs refer to.
struct SandboxRuntimeInfo {
  std::string id;
  std::string netns_path;   // "" = host network
  std::string ipc_ns_path;  // "" = host ipc
  std::string uts_ns_path;  // "" = host uts (host network pods)
  std::string pid_ns_path;  // pod-level pid namespace ("" unless PID mode POD)
  std::string hostname;
  // Bind-mounted to /etc/hostname, /etc/hosts, /etc/resolv.conf ("" skips).
  std::string hostname_file, hosts_file, resolv_conf_file;
  // The pod's /dev/shm (shared when IPC is POD); "" = a private tmpfs, or the host's
  // /dev/shm when the pod uses the host IPC namespace (as containerd does).
  std::string shm_dir;
};

struct ContainerSpecInputs {
  const PodSandboxSpec* pod = nullptr;
  const SandboxRuntimeInfo* sandbox = nullptr;
  const ContainerSpec* container = nullptr;
  const storage::ContainerDefaults* image = nullptr;
  std::string image_name;          // for annotations
  std::string container_id;
  std::string rootfs;              // host path of the container's mounted rootfs (to resolve users safely)
  std::string cgroups_path;        // OCI linux.cgroupsPath
  std::string target_pid_ns_path;  // NamespaceMode::target
  bool cgroup_namespace = false;   // true only on a pure cgroup v2 host
  bool restrict_oom_score_adj = false;  // never ask for a lower oom_score_adj than berthd's own (no CAP_SYS_RESOURCE)
};

struct BuiltSpec {
  nlohmann::json config;  // the OCI config.json
  uint32_t uid = 0, gid = 0;
  std::vector<std::string> argv;
  int stop_signal = 0;
};

// EINVAL for a request that cannot be run as given, ENOENT for something it names
// that does not exist (a mount source, a device, a user, a seccomp profile); the
// message names the field.
Result<BuiltSpec> build_container_spec(const ContainerSpecInputs& inputs);

// "SIGQUIT", "QUIT", "sigquit", "3", "SIGRTMIN+2" -> signal number; EINVAL otherwise.
Result<int> parse_stop_signal(const std::string& text);

// containerd's default capability set for CRI containers, as CAP_* names.
const std::vector<std::string>& default_container_capabilities();

// Whether this host can limit memory+swap (v1 memory.memsw, v2 memory.swap.max).
// When it can, a memory limit without a swap limit means "no swap": memory+swap is
// set to the memory limit, at create and at every update (containerd alike).
bool memory_swap_controller_available();

}  // namespace berth::pod

// What a control plane asks the Containerizer for: a pod sandbox and the containers
// in it, as plain data. The CRI front end fills these from runtime.v1 messages (the
// Mesos front end will fill them from its own calls); nothing here knows either wire
// format. Zero or empty means "not set" unless a field says otherwise.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace berth::pod {

// Which namespace a container (or the whole pod) uses, as CRI's NamespaceMode.
enum class NamespaceMode { pod, container, node, target };

struct NamespaceOptions {
  NamespaceMode network = NamespaceMode::pod;
  NamespaceMode pid = NamespaceMode::container;
  NamespaceMode ipc = NamespaceMode::pod;
  std::string target_id;  // container whose pid namespace `target` joins
};

struct PortMapping {
  std::string protocol = "tcp";  // tcp, udp, sctp
  int32_t container_port = 0;
  int32_t host_port = 0;  // 0: not published on the host
  std::string host_ip;
};

struct DnsConfig {
  std::vector<std::string> servers, searches, options;
};

enum class MountPropagation { private_, host_to_container, bidirectional };

struct Mount {
  std::string container_path;
  std::string host_path;
  bool readonly = false;
  bool recursive_readonly = false;
  bool selinux_relabel = false;  // accepted; no SELinux on the hosts berth targets
  MountPropagation propagation = MountPropagation::private_;
};

struct Device {
  std::string container_path;
  std::string host_path;
  std::string permissions = "rwm";
};

struct HugepageLimit {
  std::string page_size;  // "2MB", "1GB"
  uint64_t limit = 0;
};

// CRI LinuxContainerResources / pod resources: the cgroup knobs kubelet sets.
struct Resources {
  int64_t cpu_period = 0;
  int64_t cpu_quota = 0;
  int64_t cpu_shares = 0;
  int64_t memory_limit_in_bytes = 0;
  int64_t memory_swap_limit_in_bytes = 0;
  int64_t oom_score_adj = 0;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, std::string> unified;  // cgroup v2 files
};

// Seccomp or AppArmor profile choice. An empty legacy string and no profile both
// mean "unset": seccomp then defaults to RuntimeDefault unless privileged.
struct SecurityProfile {
  enum class Type { unset, runtime_default, unconfined, localhost };
  Type type = Type::unset;
  std::string localhost_ref;  // absolute path of a local profile (seccomp: OCI JSON)
};

struct ContainerSecurity {
  bool privileged = false;
  std::vector<std::string> add_capabilities;   // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL" allowed
  std::vector<std::string> drop_capabilities;  // "ALL" drops everything not added
  std::vector<std::string> add_ambient_capabilities;
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  std::string run_as_username;  // resolved in the image's /etc/passwd
  std::vector<int64_t> supplemental_groups;
  bool supplemental_groups_strict = false;  // CRI SupplementalGroupsPolicy Strict: no groups from /etc/group
  bool readonly_rootfs = false;
  bool no_new_privs = true;  // kubelet sets it from allowPrivilegeEscalation=false; berth defaults to on
  SecurityProfile seccomp;
  SecurityProfile apparmor;  // accepted and recorded; no AppArmor on the hosts berth targets
  std::vector<std::string> masked_paths;    // empty: berth's defaults (unless privileged)
  std::vector<std::string> readonly_paths;  // empty: berth's defaults (unless privileged)
  bool masked_paths_set = false;    // true when the request gave the list (even empty: unmasked)
  bool readonly_paths_set = false;
  NamespaceOptions namespaces;
};

struct PodSandboxSpec {
  // Metadata: name + namespace + uid + attempt identify the pod to kubelet.
  std::string name;
  std::string uid;
  std::string namespace_;
  uint32_t attempt = 0;

  std::string hostname;
  std::string log_directory;
  DnsConfig dns;
  std::vector<PortMapping> port_mappings;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string cgroup_parent;  // as kubelet gives it (cgroupfs path or systemd slice)
  std::map<std::string, std::string> sysctls;

  // Pod-level security.
  NamespaceOptions namespaces;  // network node = host network; pid pod = shared pid ns
  bool privileged = false;
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  std::vector<int64_t> supplemental_groups;
  bool readonly_rootfs = false;
  SecurityProfile seccomp;

  std::optional<Resources> overhead;
  std::optional<Resources> resources;
  std::string runtime_handler;
};

struct KeyValue {
  std::string key, value;
};

struct ContainerSpec {
  std::string name;
  uint32_t attempt = 0;
  std::string image;  // as requested (name or ID); resolved against the image store
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<KeyValue> envs;
  std::vector<Mount> mounts;
  std::vector<Device> devices;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string log_path;  // relative to the pod's log_directory
  bool stdin_open = false;
  bool stdin_once = false;
  bool tty = false;
  std::optional<Resources> resources;
  ContainerSecurity security;
  std::string stop_signal;  // "SIGTERM" …; empty: the image's, else SIGTERM
};

}  // namespace berth::pod

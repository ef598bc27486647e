// The engine behind both front ends: pod sandboxes and their containers, from
// request to removal, and recovery after berthd was killed at any point.
//
// Crash safety rests on two rules. Every kernel object a pod or container gets
// (netns pin, shm mount, CNI attachment, snapshot, shim) is recorded as intent in
// the database before it is made, so a restart can always undo or finish it. And
// berthd is never a container's parent: each container's berth-shim holds its
// stdio and records its exit, so nothing is lost while berthd is down.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "runtime/containerizer/exec_process.h"
#include "runtime/containerizer/pod_spec.h"

namespace berth::storage {
class ImageStore;
}

namespace berth::pod {

struct ContainerizerOptions {
  std::string root = "/var/lib/berth";   // database, image store, CNI cache
  std::string state = "/run/berth";      // pods, containers, launcher state, sockets
  std::string shim_binary;               // berth-shim
  std::string runtime_binary;            // berth (runc-compatible CLI): create and exec
  std::vector<std::string> cni_conf_dirs = {"/etc/cni/net.d"};
  std::vector<std::string> cni_bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
  std::chrono::seconds cni_timeout{60};
  std::string cgroup_root = "/berth";    // parent of pod cgroups kubelet did not place
  bool restrict_oom_score_adj = true;    // root here lacks CAP_SYS_RESOURCE
  int64_t shm_size_bytes = 64ll << 20;
  // Fault injection for recovery tests: the daemon kills itself (SIGKILL) when it
  // reaches a step named here, e.g. "run_pod.after_cni_add". Never set in service.
  std::vector<std::string> crash_points;
};

enum class PodState { ready, notready };
enum class ContainerState { created, running, exited, unknown };

struct PodStatus {
  std::string id;
  PodSandboxSpec spec;
  PodState state = PodState::notready;
  int64_t created_at_ns = 0;
  std::vector<std::string> ips;  // first is the primary pod IP
  std::string netns_path;        // "" for host network
  std::string cgroup_path;
  std::string cni_result_json;   // for verbose status
  pid_t pid_holder = 0;
};

struct ContainerStatus {
  std::string id;
  std::string pod_id;
  ContainerSpec spec;
  std::string image_ref;  // what the request named
  std::string image_id;   // config digest it resolved to
  ContainerState state = ContainerState::created;
  int64_t created_at_ns = 0, started_at_ns = 0, finished_at_ns = 0;
  int32_t exit_code = 0;
  std::string reason;   // Completed, Error, OOMKilled, Unknown
  std::string message;
  std::string log_path;  // absolute: pod log_directory + log_path ("" if none)
  pid_t pid = 0;
  std::string cgroup_path;
};

struct CgroupStats {
  int64_t timestamp_ns = 0;
  uint64_t cpu_usage_ns = 0;
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_working_set_bytes = 0;
  uint64_t memory_rss_bytes = 0;
  uint64_t memory_available_bytes = 0;  // limit - working set; 0 without limit
  uint64_t page_faults = 0, major_page_faults = 0;
  uint64_t pids = 0;
  bool has_memory = false, has_cpu = false;
};

struct ContainerStats {
  std::string id;
  CgroupStats cgroup;
  uint64_t writable_layer_bytes = 0;
  uint64_t writable_layer_inodes = 0;
  std::string filesystem_mountpoint;
};

struct PodStats {
  std::string id;
  CgroupStats cgroup;
  std::vector<ContainerStats> containers;
};

struct ExecResult {
  int exit_code = 0;
  std::string stdout_data, stderr_data;
  bool timed_out = false;
};

enum class EventType { container_created, container_started, container_stopped, container_deleted };
struct Event {
  EventType type;
  std::string container_id;  // pod events carry the pod id here (CRI reports sandboxes as containers)
  std::string pod_id;
  int64_t at_ns = 0;
};
using EventSink = std::function<void(const Event&)>;

class Containerizer {
 public:
  // Opens (or creates) the state and database, recovers every pod and container
  // recorded there, rolls back half-done creations and sweeps orphans. Records that
  // cannot be loaded are reported in recovery_report() and skipped, never fatal.
  static Result<std::unique_ptr<Containerizer>> open(ContainerizerOptions options,
                                                     std::shared_ptr<storage::ImageStore> images);
  ~Containerizer();

  const std::vector<std::string>& recovery_report() const;
  // Whether the CNI config dir holds a usable network (Status's NetworkReady).
  Result<> network_ready() const;
  void set_pod_cidr(const std::string& cidr);

  Result<std::string> run_pod(const PodSandboxSpec& spec);
  Result<> stop_pod(const std::string& pod_id);
  Result<> remove_pod(const std::string& pod_id);
  Result<PodStatus> pod_status(const std::string& pod_id);
  std::vector<PodStatus> list_pods();
  Result<PodStats> pod_stats(const std::string& pod_id);

  Result<std::string> create_container(const std::string& pod_id, const ContainerSpec& spec);
  Result<> start_container(const std::string& id);
  // Stop signal, wait up to `timeout`, then SIGKILL; returns once the exit is recorded.
  Result<> stop_container(const std::string& id, std::chrono::seconds timeout);
  Result<> remove_container(const std::string& id);
  Result<ContainerStatus> container_status(const std::string& id);
  std::vector<ContainerStatus> list_containers();
  Result<ContainerStats> container_stats(const std::string& id);
  Result<> update_container_resources(const std::string& id, const Resources& resources);
  Result<> reopen_container_log(const std::string& id);
  Result<ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout);

  // Streaming (CRI Exec, Attach, PortForward). The caller relays the fds.
  // A command in a running container, with the container's process settings.
  Result<std::unique_ptr<ExecProcess>> exec(const std::string& id, const std::vector<std::string>& argv,
                                            const ExecIo& io);
  // A connection to the running container's own stdio, held by its shim (protocol in
  // runtime/shim/shim_protocol.h). EBUSY when the container does not run.
  struct AttachTarget {
    UniqueFd connection;
    bool tty = false;
    bool stdin = false;  // the container was created with stdin open
  };
  Result<AttachTarget> attach(const std::string& id);
  // A TCP connection to `port` on the pod's loopback, made inside the pod's network
  // namespace (the host's for host-network pods). ENOENT for an unknown pod, EBUSY
  // for one that is not ready.
  Result<UniqueFd> connect_pod_port(const std::string& pod_id, uint16_t port);

  // Every lifecycle change, as it is recorded. Returns a handle for unsubscribe.
  uint64_t subscribe(EventSink sink);
  void unsubscribe(uint64_t handle);

  struct Impl;

 private:
  explicit Containerizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::pod

// Containerizer internals shared by its source files (pods, containers, recovery).
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "isolators/cgroups/cgroups.h"
#include "network/cni_config.h"
#include "network/cni_invoker.h"
#include "runtime/containerizer/containerizer.h"
#include "runtime/containerizer/exit_monitor.h"
#include "runtime/containerizer/runtime_records.h"
#include "storage/image_store.h"

namespace berth::pod {

struct Containerizer::Impl {
  ContainerizerOptions options;
  std::shared_ptr<storage::ImageStore> images;
  std::unique_ptr<RuntimeRecords> records;
  cgroups::Layout layout;
  std::unique_ptr<network::CniInvoker> cni;
  std::unique_ptr<ExitMonitor> monitor;
  std::vector<std::string> report;
  std::string pod_cidr;

  // Record read-modify-write; never held across a slow step.
  std::mutex records_mu;
  // One row, read under records_mu; nullopt when there is none.
  Result<std::optional<PodRecord>> load_pod(const std::string& id);
  Result<std::optional<ContainerRecord>> load_container(const std::string& id);
  // Exits land here; waiters re-read the record.
  std::condition_variable exit_cv;
  // Containers inside start_container, under records_mu, and whether their exit
  // arrived meanwhile: that exit's stopped event waits for the started event.
  std::map<std::string, bool> starting;

  // One operation at a time per pod or container id.
  std::mutex locks_mu;
  std::map<std::string, std::weak_ptr<std::mutex>> op_locks;
  std::shared_ptr<std::mutex> op_lock(const std::string& id);

  std::mutex events_mu;
  uint64_t next_sink = 1;
  std::map<uint64_t, EventSink> sinks;
  void emit(EventType type, const std::string& container_id, const std::string& pod_id);

  // Paths.
  std::string pods_dir() const { return options.state + "/pods"; }
  std::string containers_dir() const { return options.state + "/containers"; }
  std::string runtime_root() const { return options.state + "/runtime"; }
  std::string cni_cache_dir() const { return options.root + "/cni/cache"; }
  std::string container_dir(const std::string& id) const { return containers_dir() + "/" + id; }
  std::string shim_dir(const std::string& id) const { return container_dir(id) + "/shim"; }
  std::string rootfs_dir(const std::string& id) const { return container_dir(id) + "/rootfs"; }

  // Pods (pod_lifecycle.cc).
  Result<std::string> run_pod(const PodSandboxSpec& spec);
  Result<> stop_pod(const std::string& id);
  Result<> remove_pod(const std::string& id);
  // Undoes whatever of the pod's kernel objects exist. `keep_dir` leaves the pod's
  // files (stop); removal deletes them. CNI DEL failures are retried, then the
  // namespace is destroyed anyway and the cache kept for the next sweep.
  Result<> teardown_pod(PodRecord& record, bool keep_dir);
  network::CniAttachment attachment_for(const PodRecord& record) const;

  // Containers (container_lifecycle.cc).
  Result<std::string> create_container(const std::string& pod_id, const ContainerSpec& spec);
  Result<> start_container(const std::string& id);
  Result<> stop_container(const std::string& id, std::chrono::seconds timeout);
  Result<> remove_container(const std::string& id);
  Result<> teardown_container(const ContainerRecord& record);
  // Reads the shim's exit record into the container's row (monitor callback).
  void on_shim_exit(const std::string& id);
  Result<> kill_container(const std::string& id, int sig, bool all);
  bool wait_exited(const std::string& id, std::chrono::milliseconds timeout);
  Result<ContainerStatus> status_of(const ContainerRecord& record);
  Result<std::string> container_cgroup(const ContainerRecord& record) const;

  // SIGKILLs the daemon at a configured crash point (recovery tests).
  void crash_point(const char* name) const;

  // Recovery (recovery.cc).
  void recover();
};

std::string random_id();
int64_t now_ns();

}  // namespace berth::pod

// The pods and containers tables of berth.db. A row is written before the kernel
// objects it names exist (phase "creating"), so recovery knows what to undo, and
// it is deleted only after they are gone.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/containerizer/pod_spec.h"

namespace berth::storage {
class Database;
}

namespace berth::pod {

// creating: RunPodSandbox has not returned; ready; notready: stopped.
enum class PodPhase { creating, ready, notready };
// creating: CreateContainer has not returned; created; running; exited.
enum class ContainerPhase { creating, created, running, exited };

struct PodRecord {
  std::string id;
  PodSandboxSpec spec;
  PodPhase phase = PodPhase::creating;
  int64_t created_at_ns = 0;
  std::string dir;          // <state>/pods/<id>: namespace pins, shm, etc files
  std::string netns_path;   // "" = host network
  std::string ipc_ns_path, uts_ns_path, pid_ns_path;
  std::string shm_dir;
  std::string cgroup_path;
  bool cgroup_owned = false;  // berth made it (no cgroup_parent), so berth removes it
  pid_t pid_holder = 0;
  unsigned long long pid_holder_start = 0;
  std::string cni_result;     // raw final ADD result
  std::vector<std::string> ips;
};

struct ContainerRecord {
  std::string id;
  std::string pod_id;
  ContainerSpec spec;
  ContainerPhase phase = ContainerPhase::creating;
  int64_t created_at_ns = 0, started_at_ns = 0, finished_at_ns = 0;
  int32_t exit_code = 0;
  std::string reason, message;
  std::string image_ref, image_id;
  std::string snapshot_key;
  std::string log_path;
  std::string cgroup_path;
  int stop_signal = 15;  // resolved at create: request, else image, else SIGTERM
};

const char* phase_name(PodPhase);
const char* phase_name(ContainerPhase);

class RuntimeRecords {
 public:
  static Result<RuntimeRecords> open(std::shared_ptr<storage::Database> db);

  // EEXIST when a pod with the same name, namespace, uid and attempt exists.
  Result<> insert_pod(const PodRecord& record);
  Result<> update_pod(const PodRecord& record);
  Result<> delete_pod(const std::string& id);
  Result<std::optional<PodRecord>> pod(const std::string& id);
  // Rows that fail to load are returned as `broken` (id + reason) instead.
  struct Broken {
    std::string id, reason;
  };
  Result<std::vector<PodRecord>> pods(std::vector<Broken>* broken = nullptr);

  // EEXIST when the pod already has a container of that name and attempt.
  Result<> insert_container(const ContainerRecord& record);
  Result<> update_container(const ContainerRecord& record);
  Result<> delete_container(const std::string& id);
  Result<std::optional<ContainerRecord>> container(const std::string& id);
  Result<std::vector<ContainerRecord>> containers(std::vector<Broken>* broken = nullptr);

 private:
  explicit RuntimeRecords(std::shared_ptr<storage::Database> db) : db_(std::move(db)) {}
  std::shared_ptr<storage::Database> db_;
};

}  // namespace berth::pod

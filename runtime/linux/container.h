// One OCI container on this host: the engine behind the `berth` CLI (and later
// berthd). Creating forks the container's init into its namespaces and cgroup and
// leaves it waiting for start; every other operation loads the recorded state and
// acts on the live process and cgroup.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/linux/container_state.h"
#include "runtime/oci/spec.h"

namespace berth {

struct CreateOptions {
  std::string id;
  std::string bundle;
  std::string console_socket;
  std::string pid_file;
  bool no_pivot = false;
  int preserve_fds = 0;
};

struct RunOptions {
  bool detach = false;
  bool keep = false;  // leave the stopped container for an explicit delete
};

struct ExecOptions {
  oci::Process process;
  std::string console_socket;
  std::string pid_file;
  bool detach = false;
  int preserve_fds = 0;
};

class Container {
 public:
  static Result<Container> load(const std::string& root, const std::string& id);
  // Leaves the container "created": its init waits for start().
  static Result<Container> create(const std::string& root, const CreateOptions& opts);
  // create + start; in the foreground berth stays the parent, relays signals and the
  // terminal, deletes the container after it exits and returns its exit code
  // (128+N for signal N). Detached, returns 0 once the process runs.
  static Result<int> run(const std::string& root, const CreateOptions& opts, const RunOptions& run);
  static std::vector<std::string> list(const std::string& root);

  Status status() const;
  const ContainerState& state() const { return state_; }
  std::string state_json() const { return oci_state_json(state_, status()); }

  Result<> start();
  Result<> kill(int sig, bool all);
  Result<> remove(bool force);
  Result<> pause();
  Result<> resume();
  Result<> update(const oci::Resources& resources);
  Result<std::vector<pid_t>> pids() const;
  // Foreground: the process's exit code. Detached: 0 once it runs.
  Result<int> exec(const ExecOptions& opts);
  // The config the container was created from (parsed once, then kept).
  Result<std::shared_ptr<const oci::Spec>> spec() const;

 private:
  friend struct ContainerLaunch;
  Container(std::string dir, ContainerState state) : dir_(std::move(dir)), state_(std::move(state)) {}
  Result<> destroy_cgroup_and_state();

  std::string dir_;
  ContainerState state_;
  mutable std::shared_ptr<const oci::Spec> spec_;
};

// Container ids are single path components made of [A-Za-z0-9_.+-].
Result<> validate_container_id(const std::string& id);

}  // namespace berth

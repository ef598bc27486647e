// Everything about the process a container runs, resolved in the runtime before
// any fork (names to numbers, seccomp to BPF), then applied in the child in the one
// order the kernel allows: rlimits, LSM label, bounding set, ids, capabilities,
// no_new_privs, seccomp, exec.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "isolators/process/capabilities.h"
#include "isolators/process/rlimits.h"
#include "isolators/seccomp/seccomp.h"
#include "runtime/oci/spec.h"

namespace berth {

struct ProcessPlan {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  mode_t umask = 022;
  process::CapabilitySets caps;
  std::vector<process::ResolvedRlimit> rlimits;
  bool no_new_privs = false;
  std::optional<seccomp::Program> seccomp;
  bool seccomp_loaded = false;  // set in the child once the filter is in (notify case)
  std::string apparmor_profile;
  std::string selinux_label;
  bool terminal = false;
  std::optional<oci::ConsoleSize> console_size;
  int preserve_fds = 0;
  std::optional<int> oom_score_adj;
};

Result<ProcessPlan> plan_process(const oci::Process& process, const std::optional<oci::Seccomp>& seccomp);

// "sh" -> "/bin/sh" using the process's PATH, looked up in the current root.
Result<std::string> find_executable(const ProcessPlan& plan);

// Child side: applies the plan and execs. Returns only on failure.
Result<> exec_process(ProcessPlan& plan);

// Loads the seccomp filter early (notify case) and returns the listener fd.
Result<int> load_seccomp_early(ProcessPlan& plan);

bool apparmor_enabled();
bool selinux_enabled();

}  // namespace berth

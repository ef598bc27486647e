// Pod sandbox namespaces without a pause container: net, ipc and uts are created
// once and kept alive by bind mounts of their nsfs files, so every container of the
// pod (and CNI) joins them by path. A pod-wide PID namespace cannot be pinned that
// way (it dies with its init), so it gets one small holder process as PID 1.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"

namespace berth::linux_ns {

struct PinRequest {
  bool net = true, ipc = true, uts = true;
  std::string hostname;  // set in the new uts namespace; empty leaves the host's copy
  // Applied inside the new namespaces, e.g. {"net.ipv4.ip_unprivileged_port_start", "0"}.
  // Names use '.' (or '/', when a part itself holds a dot). Net sysctls must start
  // with "net."; IPC ones are kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.*.
  std::map<std::string, std::string> net_sysctls;
  std::map<std::string, std::string> ipc_sysctls;
};

struct PinnedNamespaces {
  std::string dir;
  std::string net, ipc, uts;  // <dir>/net ...; empty for kinds not requested
};

// Creates new namespaces of the requested kinds and bind-mounts them at <dir>/net,
// <dir>/ipc, <dir>/uts (files created 0444; <dir> is created if missing). In a new
// netns lo is brought up. All or nothing: on failure nothing stays mounted or
// created. EEXIST when a pin file is already there; EINVAL for a bad request (a
// sysctl that is unknown or not namespaced, a hostname without uts, ...).
Result<PinnedNamespaces> pin_new_namespaces(const std::string& dir, const PinRequest& request);

// Unmounts (detached) and unlinks whatever of net, ipc, uts and pid exists under dir.
// Idempotent. Does not stop a PID namespace holder.
Result<> release_pinned_namespaces(const std::string& dir);

struct PidNamespaceHolder {
  pid_t pid = 0;                      // host pid of the holder (PID 1 in its namespace)
  unsigned long long start_time = 0;  // /proc/<pid>/stat field 22, guards against reuse
  std::string pid_ns;                 // <dir>/pid
};

// Starts `holder_binary holder_args...` as PID 1 of a new PID namespace, detached
// from the caller (own session, double fork: the daemon never reaps it and it
// outlives the daemon), and bind-mounts its namespace at <dir>/pid.
Result<PidNamespaceHolder> start_pid_namespace_holder(const std::string& dir, const std::string& holder_binary,
                                                      std::vector<std::string> holder_args);

// SIGKILLs the holder if `pid` still is the process started at `start_time`, and
// waits for it to exit. Success when it is already gone.
Result<> stop_pid_namespace_holder(pid_t pid, unsigned long long start_time);

}  // namespace berth::linux_ns

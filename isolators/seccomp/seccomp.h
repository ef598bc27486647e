// Seccomp for containers: the OCI "linux.seccomp" section is validated and compiled
// to classic BPF with libseccomp in the runtime process, then loaded by the
// container's init right before execve, where nothing should allocate.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/oci/spec.h"

namespace berth::seccomp {

// A ready-to-load classic BPF filter.
struct Program {
  std::vector<sock_filter> instructions;
  // SECCOMP_FILTER_FLAG_* from the spec's "flags", plus NEW_LISTENER when a rule
  // uses SCMP_ACT_NOTIFY (and TSYNC_ESRCH when TSYNC is combined with it, which
  // the kernel demands).
  unsigned int flags = 0;
  // Some rule uses SCMP_ACT_NOTIFY: load() returns a listener fd that the
  // launcher must hand to send_listener_fd(). listenerPath is known to be set.
  bool wants_listener = false;
  // Names skipped because libseccomp cannot resolve them on any architecture;
  // only filled when CompileOptions::skip_unknown_syscalls is set.
  std::vector<std::string> skipped_syscalls;
};

struct CompileOptions {
  // runc and crun skip syscall names libseccomp does not know (a profile newer
  // than the library, e.g. Docker's listing "cachestat" or "fchmodat2" against
  // libseccomp 2.5.4). By default berth refuses them; set this to skip them
  // the way runc does and report them in Program::skipped_syscalls.
  bool skip_unknown_syscalls = false;
};

// Validates the spec section and compiles it. Errors are EINVAL and name the
// culprit (unknown action, syscall, architecture, flag or operator; errnoRet on
// a non-errno action; arg index > 5; NOTIFY without listenerPath; ...).
Result<Program> compile(const oci::Seccomp& spec, const CompileOptions& options = {});

// Installs the filter in the calling thread with seccomp(SECCOMP_SET_MODE_FILTER).
// Allocates nothing and touches no locks: safe in a child made by clone/vfork.
// Returns 0 and stores the listener fd (or -1 without NEW_LISTENER) in
// *listener_fd, or returns a positive errno. The caller must already have
// no_new_privs set or hold CAP_SYS_ADMIN.
int load_raw(const Program& program, int* listener_fd) noexcept;

// load_raw() with an Error on failure. Returns the listener fd (>= 0) when
// NEW_LISTENER was set, else -1. The success path does not allocate; the error
// path builds a message.
Result<int> load(const Program& program);

// Sends the seccomp listener fd to the agent at listener_path as the OCI
// runtime-spec "container process state": one SOCK_STREAM connection, the fd in
// SCM_RIGHTS on the first sendmsg, the JSON
//   {"ociVersion", "fds": ["seccompFd"], "pid", "metadata"?, "state"}
// as payload, then the connection is closed. state_json is the container's
// state JSON (as `berth state` prints it) and is embedded as an object; pid is
// the container process as seen by the runtime. Does not close fd.
Result<> send_listener_fd(const std::string& listener_path, int fd, pid_t pid,
                          const std::string& metadata, const std::string& state_json);

// The container process state JSON that send_listener_fd() sends.
Result<std::string> container_process_state(pid_t pid, const std::string& metadata,
                                            const std::string& state_json);

// For `berth features` (runtime-spec features.md, "linux.seccomp").
std::vector<std::string> known_actions();
std::vector<std::string> known_operators();
std::vector<std::string> known_architectures();
std::vector<std::string> known_flags();
// The known flags the running kernel accepts ("supportedFlags").
std::vector<std::string> supported_flags();

}  // namespace berth::seccomp

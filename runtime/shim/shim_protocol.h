// Everything berth-shim and its caller (berthd) exchange, in one place so the two
// sides cannot drift: the state dir layout, the state file formats, the ready line
// and the control socket protocol.
//
// State dir (given with --state-dir; the shim creates it if missing, chdirs into it):
//   init.pid      the runtime's --pid-file
//   runtime.log   the runtime's --log (create's diagnostics)
//   console.sock  tty mode only, while the runtime hands over the pty master
//   shim.sock     control socket (0600); exists while the shim runs
//   shim.state    written once, after a successful create, before the ready line
//   exit.state    written once, durably (file and dir fsynced), after the container
//                 exited and its output was drained; the shim exits right after
//   shim.log      the shim's own diagnostics (it has no stderr)
//
// State files: one `key=value` per line, decimal numbers, `version=1` first.
// Readers ignore keys they do not know, so fields can be added without a version bump;
// a missing required key is an error.
//   shim.state: version, shim_pid, shim_start_time, container_pid, container_start_time
//               (start times are field 22 of /proc/<pid>/stat: clock ticks since boot;
//               with the pid they tell a live process from a recycled pid)
//   exit.state: version, exit_code (status, or 128+signal), signal (0 unless killed by
//               one), exited_at_ns (CLOCK_REALTIME at the reap), oom_killed (0 or 1)
//
// Ready line, written once on fd 3 by `berth-shim create`, then fd 3 is closed:
//   "ok <shim pid> <container pid>\n"  or  "error <one-line message>\n"
// If the caller has gone away (the write fails), the shim deletes the container and
// its state and exits: nobody would know about it.
//
// Control socket: a unix stream connection carries one request line and gets one reply
// line, then the shim closes it. Requests:
//   "ping"   -> "ok"
//   "reopen" -> "ok" once the log file at --log-path is open again (kubelet renamed the
//               old one for rotation), or "error <message>" (the old file stays in use)
// Anything else -> "error unknown request". Lines are at most kMaxRequestLine bytes.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"

namespace berth {

// What berthd needs to re-adopt a shim after a restart.
struct ShimState {
  pid_t shim_pid = 0;
  unsigned long long shim_start_time = 0;
  pid_t container_pid = 0;
  unsigned long long container_start_time = 0;
};

struct ExitState {
  int exit_code = 0;  // exit status, or 128+signal
  int signal = 0;     // the signal that killed the container's init, 0 for a normal exit
  int64_t exited_at_ns = 0;
  bool oom_killed = false;
};

namespace shim {

inline constexpr char kInitPidFile[] = "init.pid";
inline constexpr char kRuntimeLogFile[] = "runtime.log";
inline constexpr char kConsoleSocket[] = "console.sock";
inline constexpr char kControlSocket[] = "shim.sock";
inline constexpr char kShimStateFile[] = "shim.state";
inline constexpr char kExitStateFile[] = "exit.state";
inline constexpr char kShimLogFile[] = "shim.log";

// The fd `berth-shim create` reports readiness on.
inline constexpr int kReadyFd = 3;
inline constexpr std::string_view kReplyOk = "ok";
inline constexpr std::string_view kReplyError = "error";
inline constexpr std::string_view kRequestPing = "ping";
inline constexpr std::string_view kRequestReopen = "reopen";
inline constexpr size_t kMaxRequestLine = 256;
inline constexpr size_t kMaxReadyLine = 4096;

// Render a state file into `buf`; returns its length, or 0 if `size` is too small.
// Plain snprintf: the static shim uses these without a heap.
size_t format_shim_state(const ShimState& state, char* buf, size_t size);
size_t format_exit_state(const ExitState& state, char* buf, size_t size);

Result<ShimState> parse_shim_state(std::string_view text);
Result<ExitState> parse_exit_state(std::string_view text);

}  // namespace shim
}  // namespace berth

// A command started in a running container through the runtime CLI's `exec` (the
// launcher path the container itself took: its namespaces, cgroup, user, env,
// capabilities, seccomp), with its stdio handed to the caller. ExecSync collects the
// output; the streaming server relays it to kubectl.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace berth::pod {

struct ExecIo {
  bool stdin = false;
  bool stdout = true;
  bool stderr = true;
  // One pty carries stdin and the combined output; there is no separate stderr.
  bool tty = false;
};

struct ExecInvocation {
  std::string runtime_binary;
  std::string runtime_root;
  std::string container_id;
  std::string process_json;  // OCI process object: args, env, cwd, user, caps, ...
  std::string work_dir;      // process, pid and log files, console socket (removed after)
  ExecIo io;
};

// How the runtime process ended.
struct ExecExit {
  int exit_code = 0;          // the command's, 128+N when signal N killed it
  std::string runtime_error;  // set when the runtime could not start the command at all
};

class ExecProcess {
 public:
  static Result<std::unique_ptr<ExecProcess>> start(const ExecInvocation& inv);
  // Kills whatever still runs, reaps the runtime and removes the work files.
  ~ExecProcess();
  ExecProcess(const ExecProcess&) = delete;
  ExecProcess& operator=(const ExecProcess&) = delete;

  // -1 where the stream was not asked for. Under a tty, stdin and stdout are the same
  // pty master.
  int stdin_fd() const { return io_.stdin ? (io_.tty ? pty_.get() : stdin_.get()) : -1; }
  int stdout_fd() const { return io_.tty ? pty_.get() : stdout_.get(); }
  int stderr_fd() const { return io_.tty ? -1 : stderr_.get(); }
  // The client's stdin ended: the pipe is closed, or the terminal gets its EOF (^D).
  void close_stdin();
  Result<> resize(uint16_t width, uint16_t height);
  // Becomes readable (POLLIN) once the runtime process exited.
  int exit_fd() const { return pidfd_.get(); }
  // Blocks until the runtime process exits (once; later calls repeat the answer).
  ExecExit wait();
  // SIGKILL for the command, everything it started, and the runtime process.
  void kill();

 private:
  ExecProcess() = default;

  ExecIo io_;
  pid_t child_ = 0;
  UniqueFd pidfd_;
  UniqueFd stdin_, stdout_, stderr_, pty_;
  std::string process_file_, pid_file_, log_file_;
  bool reaped_ = false;
  ExecExit exit_;
};

}  // namespace berth::pod

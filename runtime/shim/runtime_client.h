// Runs the OCI runtime's command line (`berth`, or runc-compatible ones) on behalf of
// the shim: `create` with the container's stdio, and `delete --force` to undo a
// create nobody will hear about.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "common/unique_fd.h"

namespace berth::shim {

struct CreatedContainer {
  pid_t pid = 0;
  UniqueFd stdout_reader;  // pipes, when not a tty
  UniqueFd stderr_reader;
  UniqueFd pty_master;     // tty mode
  UniqueFd stdin_writer;   // --stdin without a tty: held so the container's reads block;
                           // non-blocking (the container's end blocks)
};

class RuntimeClient {
 public:
  // All paths absolute.
  RuntimeClient(std::string runtime, std::string root, std::string state_dir)
      : runtime_(std::move(runtime)), root_(std::move(root)), state_dir_(std::move(state_dir)) {}

  // `<runtime> --root R --log <state>/runtime.log create --bundle B --pid-file
  // <state>/init.pid [--console-socket <state>/console.sock] ID`, with stdio the
  // container's pipes (it inherits them) or /dev/null plus a capture pipe under a tty.
  // On failure returns false and puts the runtime's complaint, as one line, in `error`.
  bool create(const std::string& id, const std::string& bundle, bool tty, bool stdin_open, CreatedContainer& out,
              char* error, size_t error_size);
  // Best effort; waits for the runtime to finish.
  void force_delete(const std::string& id);

 private:
  pid_t spawn(const char* const* argv, int stdin_fd, int stdout_fd, int stderr_fd);

  std::string runtime_;
  std::string root_;
  std::string state_dir_;
};

}  // namespace berth::shim

// The body of `berth-shim create` once it runs as a daemon in the state dir: creates
// the container through the runtime, reports on the ready fd, then copies the
// container's output into the CRI log and to attached clients, feeds their input to
// the container's stdin, answers the control socket, reaps every child (it is a
// subreaper) and records the container's exit. It never kills the container:
// berthd stops containers by signalling them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/shim/attach_server.h"
#include "runtime/shim/control_server.h"
#include "runtime/shim/cri_log_writer.h"
#include "runtime/shim/log_file.h"
#include "runtime/shim/memory_cgroup.h"
#include "runtime/shim/runtime_client.h"

namespace berth::shim {

struct ShimOptions {
  std::string id;
  std::string bundle;        // absolute paths from here on
  std::string state_dir;
  std::string runtime;
  std::string runtime_root;
  std::string log_path;      // empty: output is drained and discarded
  bool tty = false;
  bool stdin_open = false;
  // Close the container's stdin when the first attached client is done with it.
  bool stdin_once = false;
};

class ShimMonitor final : ControlHandler, AttachHandler {
 public:
  // How long output may still trickle in after the container's init exited (from
  // processes that outlived it holding its stdio).
  static constexpr int kDrainAfterExitMs = 2000;

  explicit ShimMonitor(ShimOptions options);

  // `ready_fd` may be -1 (nobody to tell); `signal_fd` is a non-blocking signalfd for
  // SIGCHLD, SIGTERM and SIGINT, which the caller blocked. Returns the exit status.
  int run(int ready_fd, int signal_fd);

 private:
  struct Stream {
    int fd = -1;
    CriLogWriter* writer = nullptr;
    char frame_type = 0;  // for attached clients
  };

  void handle_request(std::string_view request, char* reply, size_t reply_size) override;
  void close_stdin() override;
  int fail(int ready_fd, const char* message, bool remove_state);
  void monitor(int signal_fd);
  void on_signals(int signal_fd);
  void reap();
  void drain(Stream& stream);
  void close_stream(Stream& stream);
  bool record_exit();

  ShimOptions options_;
  LogFile log_;
  ControlServer control_;
  AttachServer attach_;
  CriLogWriter stdout_writer_;
  CriLogWriter stderr_writer_;
  CreatedContainer container_;
  std::optional<MemoryCgroup> memory_cgroup_;
  Stream streams_[2];
  int dir_fd_ = -1;
  bool exited_ = false;
  int exit_status_ = 0;
  int64_t exited_at_ns_ = 0;
  int64_t drain_deadline_ms_ = 0;
};

}  // namespace berth::shim

// berthd's side of berth-shim: start one for a container, read what it recorded, talk
// to its control socket, and attach to the container's stdio. Safe in a multithreaded process (posix_spawn, no fork).
// Formats and protocol: runtime/shim/shim_protocol.h.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/unique_fd.h"
#include "runtime/shim/shim_protocol.h"

namespace berth {

struct ShimLaunch {
  std::string shim_binary;
  std::string id;
  std::string bundle;
  std::string state_dir;
  std::string runtime_binary;
  std::string runtime_root;
  std::string log_path;  // empty: the container's output is discarded
  bool tty = false;
  bool stdin_open = false;
  bool stdin_once = false;
};

struct ShimStarted {
  pid_t shim_pid = 0;
  pid_t container_pid = 0;
};

// Starts the shim and waits (up to `timeout`) until the container is created. The
// runtime's own complaint comes back as an EIO error naming the container; a shim
// that dies without a word is EIO too; ETIMEDOUT when it takes too long (the shim
// then finds its caller gone and deletes the container itself).
Result<ShimStarted> launch_shim(const ShimLaunch& launch,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));

Result<ShimState> read_shim_state(const std::string& state_dir);
// nullopt while the container has not exited (or its exit is not recorded yet).
Result<std::optional<ExitState>> read_exit_state(const std::string& state_dir);

// Sends one control request ("ping", "reopen") and returns the reply line without its
// newline, e.g. "ok" or "error <message>". ECONNREFUSED/ENOENT: no shim is running.
Result<std::string> shim_request(const std::string& state_dir, const std::string& line,
                                 std::chrono::milliseconds timeout);

// Connects to a running shim's attach socket; the connection then carries attach
// frames both ways (shim_protocol.h: encode_attach_header, AttachDecoder). The fd is
// blocking and close-on-exec. ECONNREFUSED/ENOENT: no shim (the container is gone).
Result<UniqueFd> connect_attach(const std::string& state_dir);

}  // namespace berth

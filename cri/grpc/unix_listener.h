// The listening unix socket of a daemon: created with its final mode before anyone
// can reach it, refusing to take over a live daemon's socket, replacing a stale one.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace berth::grpc {

class UnixListener {
 public:
  // Missing parent directories are made 0711. If `path` exists and something
  // accepts connections on it: EADDRINUSE. If it is a socket nobody serves: it is
  // removed and replaced. Anything else at `path`: EEXIST. The socket is bound in
  // a private 0700 directory, chmod-ed to `mode`, then hard-linked into place, so
  // it never exists at `path` with another mode and no process-wide umask changes.
  // The fd is non-blocking.
  static Result<UnixListener> bind(const std::string& path, mode_t mode, int backlog = 128);

  UnixListener() = default;
  UnixListener(UnixListener&& other) noexcept = default;
  UnixListener& operator=(UnixListener&& other) noexcept;
  ~UnixListener() { close(); }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // Stops listening and removes the socket file if it is still the one we made (a
  // successor daemon may already have replaced it).
  void close();

 private:
  UniqueFd fd_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace berth::grpc

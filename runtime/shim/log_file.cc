#include "runtime/shim/log_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/shim/shim_log.h"

namespace berth::shim {

LogFile::~LogFile() {
  if (fd_ >= 0) ::close(fd_);
}

int LogFile::open() {
  if (!enabled()) return 0;
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  if (fd < 0) return errno;
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  return 0;
}

int LogFile::reopen() {
  if (!enabled()) return ENOENT;
  int err = open();
  if (err) shim_log("reopen %s: %s", path_.c_str(), std::strerror(err));
  return err;
}

void LogFile::write_line(const iovec* parts, int count) {
  if (fd_ < 0) return;
  iovec iov[4];
  if (count > 4) count = 4;
  std::memcpy(iov, parts, sizeof(iovec) * static_cast<size_t>(count));
  iovec* next = iov;
  while (count > 0) {
    ssize_t n = ::writev(fd_, next, count);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (dropped_++ == 0)
        shim_log("write %s: %s; dropping log lines", path_.c_str(), n < 0 ? std::strerror(errno) : "no progress");
      return;
    }
    // A short write (nearly full disk): go on with the rest of the line.
    auto done = static_cast<size_t>(n);
    while (count > 0 && done >= next->iov_len) {
      done -= next->iov_len;
      ++next;
      --count;
    }
    if (count > 0) {
      next->iov_base = static_cast<char*>(next->iov_base) + done;
      next->iov_len -= done;
    }
  }
  if (dropped_ > 0) {
    shim_log("writing %s works again; %llu lines were dropped", path_.c_str(), dropped_);
    dropped_ = 0;
  }
}

}  // namespace berth::shim

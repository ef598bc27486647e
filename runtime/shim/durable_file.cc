#include "runtime/shim/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace berth::shim {

int write_file_durably(int dir_fd, const char* name, const char* data, size_t size, mode_t mode) {
  char tmp[256];
  int n = std::snprintf(tmp, sizeof tmp, ".%s.tmp", name);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof tmp) return ENAMETOOLONG;
  int fd = ::openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  int err = 0;
  for (size_t done = 0; done < size && !err;) {
    ssize_t w = ::write(fd, data + done, size - done);
    if (w > 0) done += static_cast<size_t>(w);
    else if (w < 0 && errno != EINTR) err = errno;
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err && errno != EINTR) err = errno;
  if (!err && ::renameat(dir_fd, tmp, dir_fd, name) != 0) err = errno;
  if (err) {
    ::unlinkat(dir_fd, tmp, 0);
    return err;
  }
  // The rename is durable only once the directory is.
  if (::fsync(dir_fd) != 0) return errno;
  return 0;
}

}  // namespace berth::shim

#include "runtime/shim/shim_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>

#include "runtime/shim/cri_log_writer.h"
#include "runtime/shim/shim_protocol.h"

namespace berth::shim {

void shim_log(const char* format, ...) {
  char line[1024];
  CriLogWriter::format_timestamp(CriLogWriter::realtime_ns(), line);
  size_t len = CriLogWriter::kTimestampSize;
  len += static_cast<size_t>(std::snprintf(line + len, sizeof line - len, " [%d] ", static_cast<int>(::getpid())));
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(line + len, sizeof line - len - 1, format, args);
  va_end(args);
  if (n < 0) return;
  len += static_cast<size_t>(n);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  int fd = ::open(kShimLogFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t ignored = ::write(fd, line, len);
  (void)ignored;
  ::close(fd);
}

}  // namespace berth::shim

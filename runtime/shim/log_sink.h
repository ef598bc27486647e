// Where formatted CRI log lines go. Each call carries exactly one line, so a sink on
// an O_APPEND file writes it with one writev(2) and lines from stdout and stderr never
// interleave mid-line.
#pragma once

#include <sys/uio.h>

namespace berth::shim {

class LogSink {
 public:
  virtual void write_line(const iovec* parts, int count) = 0;

 protected:
  ~LogSink() = default;
};

}  // namespace berth::shim

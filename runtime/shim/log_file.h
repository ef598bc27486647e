// The container's CRI log file. Writing must never hold the container back: when a
// write fails (disk full, file gone bad) the line is dropped, the shim keeps draining
// the container's output, and shim.log gets one note per run of failures.
#pragma once

#include <string>

#include "runtime/shim/log_sink.h"

namespace berth::shim {

class LogFile final : public LogSink {
 public:
  // An empty path discards everything.
  explicit LogFile(std::string path) : path_(std::move(path)) {}
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  bool enabled() const { return !path_.empty(); }
  // Opens (or creates, 0640) the file at the path. Returns 0 or an errno value.
  int open();
  // Rotation: kubelet renamed the file; start a new one at the path. The new file is
  // opened before the old one is let go, so a failure leaves logging as it was.
  int reopen();
  void write_line(const iovec* parts, int count) override;

 private:
  std::string path_;
  int fd_ = -1;
  unsigned long long dropped_ = 0;  // lines lost in the current run of failures
};

}  // namespace berth::shim

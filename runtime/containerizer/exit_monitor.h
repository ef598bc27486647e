// Watches the berth-shim of every live container through pidfds and reports when
// one ends; by then the shim has written the container's exit status. berthd is
// not the shims' parent, so pidfds (not SIGCHLD) are how it learns of exits, and
// they keep working for shims adopted after a restart.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/unique_fd.h"

namespace berth::pod {

class ExitMonitor {
 public:
  using Callback = std::function<void(const std::string& id)>;
  explicit ExitMonitor(Callback on_exit);
  ~ExitMonitor();
  ExitMonitor(const ExitMonitor&) = delete;
  ExitMonitor& operator=(const ExitMonitor&) = delete;

  Result<> start();
  // Watches `pid` for `id`. If the process is already gone (or is not the one
  // started at `start_time`), the callback runs at once on the monitor thread.
  Result<> watch(const std::string& id, pid_t pid, unsigned long long start_time);
  void forget(const std::string& id);

 private:
  void loop();

  Callback on_exit_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: stop, or an already-dead pid to report
  std::mutex mu_;
  std::map<int, std::string> by_fd_;
  std::map<std::string, UniqueFd> fds_;
  std::vector<std::string> dead_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace berth::pod

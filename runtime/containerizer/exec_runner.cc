#include "runtime/containerizer/exec_runner.h"

#include <poll.h>

namespace berth::pod {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

Result<ExecResult> run_exec(const ExecInvocation& inv, const ExecSyncLimits& limits) {
  ExecInvocation collect = inv;
  collect.io = ExecIo{.stdin = false, .stdout = true, .stderr = true, .tty = false};
  auto process = BERTH_TRY(ExecProcess::start(collect));

  ExecResult result;
  auto deadline = limits.timeout.count() > 0 ? Clock::now() + limits.timeout : Clock::time_point::max();
  auto drain_deadline = Clock::time_point::max();
  pollfd fds[2] = {{process->stdout_fd(), POLLIN, 0}, {process->stderr_fd(), POLLIN, 0}};
  std::string* sinks[2] = {&result.stdout_data, &result.stderr_data};
  int open_streams = 2;
  char buf[65536];
  while (open_streams > 0) {
    auto now = Clock::now();
    if (!result.timed_out && now >= deadline) {
      result.timed_out = true;
      process->kill();
      // Something outside the tree may still hold the pipes; do not wait on it.
      drain_deadline = now + std::chrono::seconds(2);
    }
    if (now >= drain_deadline) break;
    auto until = std::min(deadline, drain_deadline);
    int wait_ms = until == Clock::time_point::max()
                      ? -1
                      : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()) + 1;
    int n = ::poll(fds, 2, wait_ms);
    if (n < 0 && errno != EINTR) return sys_fail("poll exec output");
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        size_t room = limits.max_output_bytes - std::min(limits.max_output_bytes, sinks[i]->size());
        sinks[i]->append(buf, std::min(room, static_cast<size_t>(got)));
      } else if (got == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_streams;
      }
    }
  }
  auto exit = process->wait();
  result.exit_code = result.timed_out ? 137 : exit.exit_code;
  return result;
}

}  // namespace berth::pod

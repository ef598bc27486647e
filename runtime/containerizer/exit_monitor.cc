#include "runtime/containerizer/exit_monitor.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include <cstdint>
#include <vector>

#include "runtime/linux/container_state.h"

namespace berth::pod {

ExitMonitor::ExitMonitor(Callback on_exit) : on_exit_(std::move(on_exit)) {}

ExitMonitor::~ExitMonitor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (wake_) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

Result<> ExitMonitor::start() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return sys_fail("epoll_create1");
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) return sys_fail("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) return sys_fail("epoll_ctl");
  thread_ = std::thread([this] { loop(); });
  return {};
}

Result<> ExitMonitor::watch(const std::string& id, pid_t pid, unsigned long long start_time) {
  int fd = pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1;
  // The pidfd is taken before the identity check, so a pid reused after the check
  // cannot slip in: if the check passes, the fd refers to the right process.
  bool alive = fd >= 0 && process_matches(pid, start_time);
  std::lock_guard lock(mu_);
  if (!alive) {
    if (fd >= 0) ::close(fd);
    dead_.push_back(id);
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    return {};
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    ::close(fd);
    return sys_fail("watch shim of " + id, err);
  }
  by_fd_[fd] = id;
  fds_[id] = UniqueFd(fd);
  return {};
}

void ExitMonitor::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = fds_.find(id);
  if (it == fds_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.get(), nullptr);
  by_fd_.erase(it->second.get());
  fds_.erase(it);
}

void ExitMonitor::loop() {
  epoll_event events[16];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0 && errno != EINTR) return;
    std::vector<std::string> ended;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake_.get()) {
          uint64_t v;
          (void)!::read(wake_.get(), &v, sizeof v);
          continue;
        }
        auto it = by_fd_.find(fd);
        if (it == by_fd_.end()) continue;
        ended.push_back(it->second);
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        fds_.erase(it->second);
        by_fd_.erase(it);
      }
      ended.insert(ended.end(), dead_.begin(), dead_.end());
      dead_.clear();
    }
    for (auto& id : ended) on_exit_(id);
  }
}

}  // namespace berth::pod

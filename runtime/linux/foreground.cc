#include "runtime/linux/foreground.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <optional>

#include "common/unique_fd.h"

namespace berth {

namespace {

sigset_t relayed_set() {
  sigset_t set;
  sigfillset(&set);
  // Faults, SIGCHLD and the uncatchable ones stay ours.
  for (int sig : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGCHLD, SIGPIPE})
    sigdelset(&set, sig);
  return set;
}

class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (!::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

void copy_winsize(int from, int to) {
  winsize ws{};
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(to, TIOCSWINSZ, &ws);
}

// Moves what is readable now; false on EOF or error.
bool pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n <= 0) return n < 0 && (errno == EINTR || errno == EAGAIN);
  for (ssize_t off = 0; off < n;) {
    ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += w;
  }
  return true;
}

}  // namespace

void block_relayed_signals() {
  sigset_t set = relayed_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

Result<int> supervise(pid_t pid, int pidfd, int master_fd) {
  sigset_t set = relayed_set();
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sigfd) return sys_fail("signalfd");
  std::optional<RawTerminal> raw;
  bool stdin_open = master_fd >= 0;
  if (master_fd >= 0) {
    raw.emplace(STDIN_FILENO);
    copy_winsize(STDIN_FILENO, master_fd);
  }
  bool master_open = master_fd >= 0;
  for (;;) {
    pollfd fds[4] = {{sigfd.get(), POLLIN, 0}, {pidfd, POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
    if (master_open) fds[2].fd = master_fd;
    if (stdin_open) fds[3].fd = STDIN_FILENO;
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      return sys_fail("poll");
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sigfd.get(), &info, sizeof info) == sizeof info) {
        int sig = static_cast<int>(info.ssi_signo);
        if (sig == SIGWINCH && master_fd >= 0) {
          copy_winsize(STDIN_FILENO, master_fd);
        } else if (sig != SIGWINCH) {
          ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
        }
      }
    }
    if (master_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) master_open = pump(master_fd, STDOUT_FILENO);
    if (stdin_open && (fds[3].revents & (POLLIN | POLLHUP | POLLERR))) stdin_open = pump(STDIN_FILENO, master_fd);
    if (fds[1].revents & POLLIN) break;
  }
  // Whatever the process wrote last is still in the pty.
  while (master_open) {
    pollfd p{master_fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) break;
    master_open = pump(master_fd, STDOUT_FILENO);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno == EINTR) continue;
    if (errno == ECHILD) {
      // Not ours to reap (no subreaper): the exit status is lost to us.
      siginfo_t info{};
      if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) == 0)
        return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
      return sys_fail("wait for container process");
    }
    return sys_fail("wait for container process");
  }
  return exit_code_of(status);
}

}  // namespace berth

#include "runtime/linux/hooks.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace berth {

namespace {

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

Result<> run_hook(const oci::Hook& hook, const std::string& state_json) {
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<std::string> env = hook.env;
  auto argv = c_strings(args);
  auto envp = c_strings(env);
  // A socket, not a pipe: MSG_NOSIGNAL spares us SIGPIPE from a hook that ignores
  // stdin without touching the process-wide SIGPIPE disposition.
  int in[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return sys_fail("socketpair for hook");
  UniqueFd read_end(in[0]), write_end(in[1]);
  pid_t pid = ::fork();
  if (pid < 0) return sys_fail("fork hook");
  if (pid == 0) {
    ::dup2(read_end.get(), STDIN_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  read_end.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ::shutdown(write_end.get(), SHUT_RD);
  size_t off = 0;
  while (off < state_json.size()) {
    ssize_t n = ::send(write_end.get(), state_json.data() + off, state_json.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  write_end.reset();
  int64_t deadline = hook.timeout ? now_ms() + int64_t{*hook.timeout} * 1000 : -1;
  for (;;) {
    int wait_ms = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - now_ms()));
    pollfd pfd{pidfd.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return fail(ETIMEDOUT, "timed out after " + std::to_string(*hook.timeout) + "s");
    }
    break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return sys_fail("wait for hook");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return fail(ENOENT, "could not be executed");
  if (WIFEXITED(status)) return fail(EIO, "exited with status " + std::to_string(WEXITSTATUS(status)));
  return fail(EIO, "killed by signal " + std::to_string(WTERMSIG(status)));
}

Result<> run_hooks(const std::vector<oci::Hook>& hooks, const std::string& stage, const std::string& state_json) {
  for (auto& hook : hooks) {
    auto r = run_hook(hook, state_json);
    if (!r) return std::unexpected(r.error().wrap(stage + " hook " + hook.path));
  }
  return {};
}

}  // namespace berth

#include "network/cni_plugin_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "common/unique_fd.h"

namespace berth::network {

namespace {

// A plugin that floods its output is broken; keep memory bounded and let the JSON
// parse of the truncated text report it.
constexpr size_t kMaxCapture = 8 << 20;

struct Pipe {
  UniqueFd read, write;
};

// Pipe ends land above stdio even when the daemon runs with 0-2 closed, so the
// dup2 file actions never see fd == newfd (which would keep O_CLOEXEC set).
Result<UniqueFd> above_stdio(int fd) {
  if (fd > 2) return UniqueFd(fd);
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  ::close(fd);
  if (moved < 0) return sys_fail("fcntl F_DUPFD_CLOEXEC", err);
  return UniqueFd(moved);
}

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return sys_fail("pipe2");
  Pipe p;
  auto r = above_stdio(fds[0]);
  auto w = above_stdio(fds[1]);
  if (!r) return std::unexpected(r.error());
  if (!w) return std::unexpected(w.error());
  p.read = std::move(*r);
  p.write = std::move(*w);
  return p;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string describe(std::chrono::milliseconds d) {
  auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

long long now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// SIGPIPE from writing to a plugin that exited without reading stdin is directed at
// this thread; block it here (posix_spawn gives the child an empty mask) and drop a
// pending one before the mask is restored.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    timespec zero{};
    if (!sigismember(&old_, SIGPIPE)) {
      while (::sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t old_;
};

class SpawnConfig {
 public:
  SpawnConfig() {
    ::posix_spawn_file_actions_init(&actions_);
    ::posix_spawnattr_init(&attr_);
  }
  ~SpawnConfig() {
    ::posix_spawn_file_actions_destroy(&actions_);
    ::posix_spawnattr_destroy(&attr_);
  }
  SpawnConfig(const SpawnConfig&) = delete;
  SpawnConfig& operator=(const SpawnConfig&) = delete;

  Result<> setup(int in, int out, int err) {
    int rc = ::posix_spawn_file_actions_adddup2(&actions_, in, 0);
    if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions_, out, 1);
    if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions_, err, 2);
    // Nothing else of the daemon's leaks into plugins (glibc does close_range).
    if (rc == 0) rc = ::posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
    if (rc != 0) return sys_fail("posix_spawn file actions", rc);

    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    rc = ::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = ::posix_spawnattr_setpgroup(&attr_, 0);
    if (rc == 0) rc = ::posix_spawnattr_setsigmask(&attr_, &empty);
    if (rc == 0) rc = ::posix_spawnattr_setsigdefault(&attr_, &all);
    if (rc != 0) return sys_fail("posix_spawn attributes", rc);
    return {};
  }

  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

}  // namespace

Result<PluginOutput> run_cni_plugin(const PluginRun& run, bool* spawned) {
  if (spawned) *spawned = false;
  auto in = BERTH_TRY(make_pipe());
  auto out = BERTH_TRY(make_pipe());
  auto err = BERTH_TRY(make_pipe());

  SpawnConfig spawn;
  BERTH_TRY_VOID(spawn.setup(in.read.get(), out.write.get(), err.write.get()));

  std::vector<char*> argv = {const_cast<char*>(run.path.c_str()), nullptr};
  std::vector<char*> envp;
  for (auto& e : run.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  SigpipeBlock sigpipe_block;
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, run.path.c_str(), spawn.actions(), spawn.attr(), argv.data(), envp.data());
  if (rc != 0) return sys_fail("run CNI plugin " + run.path, rc);
  if (spawned) *spawned = true;
  in.read.reset();
  out.write.reset();
  err.write.reset();
  set_nonblocking(in.write.get());
  set_nonblocking(out.read.get());
  set_nonblocking(err.read.get());

  // A pidfd wakes poll() when the plugin exits; without one (old kernels) poll in
  // short slices and ask waitpid.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  PluginOutput result;
  size_t written = 0;
  if (run.input.empty()) in.write.reset();
  bool exited = false;
  int status = 0;
  const long long deadline = now_ms() + run.timeout.count();

  auto reap_if_exited = [&](int flags) {
    if (exited) return;
    pid_t r = ::waitpid(pid, &status, flags);
    if (r == pid) exited = true;
  };

  for (;;) {
    reap_if_exited(WNOHANG);
    if (exited && !out.read && !err.read) break;
    long long left = deadline - now_ms();
    if (left <= 0) break;

    pollfd fds[4];
    nfds_t n = 0;
    int in_slot = -1, out_slot = -1, err_slot = -1;
    if (in.write) {
      in_slot = static_cast<int>(n);
      fds[n++] = {in.write.get(), POLLOUT, 0};
    }
    if (out.read) {
      out_slot = static_cast<int>(n);
      fds[n++] = {out.read.get(), POLLIN, 0};
    }
    if (err.read) {
      err_slot = static_cast<int>(n);
      fds[n++] = {err.read.get(), POLLIN, 0};
    }
    if (pidfd && !exited) fds[n++] = {pidfd.get(), POLLIN, 0};
    int wait_ms = static_cast<int>(left);
    if (!pidfd && !exited && wait_ms > 50) wait_ms = 50;
    int ready = ::poll(fds, n, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      reap_if_exited(0);
      return sys_fail("poll CNI plugin " + run.path, e);
    }

    if (in_slot >= 0 && fds[in_slot].revents) {
      ssize_t w = ::write(in.write.get(), run.input.data() + written, run.input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      // EPIPE: the plugin does not want (the rest of) its config; let it report why.
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == run.input.size()) in.write.reset();
    }
    auto drain = [](UniqueFd& fd, std::string& into, short revents) {
      if (!revents) return;
      char buf[16384];
      for (;;) {
        ssize_t r = ::read(fd.get(), buf, sizeof buf);
        if (r > 0) {
          if (into.size() < kMaxCapture) into.append(buf, std::min(static_cast<size_t>(r), kMaxCapture - into.size()));
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        fd.reset();  // EOF or a real error: nothing more will come
        return;
      }
    };
    if (out_slot >= 0) drain(out.read, result.out, fds[out_slot].revents);
    if (err_slot >= 0) drain(err.read, result.err, fds[err_slot].revents);
  }

  if (!exited) {
    // Out of time: kill the whole group (a plugin may have started iptables or a
    // delegated IPAM plugin), then reap the plugin itself.
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    reap_if_exited(0);
    return fail(ETIMEDOUT, "CNI plugin " + run.path + " timed out after " + describe(run.timeout) +
                               " and was killed");
  }
  // The plugin exited but something it left behind still holds its stdout: what
  // arrived so far is all there is.
  result.exit_code = decode_status(status);
  return result;
}

}  // namespace berth::network

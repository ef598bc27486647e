#include "runtime/shim/shim_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/unique_fd.h"

extern char** environ;

namespace berth {

namespace {

using Clock = std::chrono::steady_clock;

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left < INT32_MAX ? left : INT32_MAX);
}

// Reads up to and including '\n' (or EOF, or the deadline). `timed_out` tells which.
Result<std::string> read_line(int fd, Clock::time_point deadline, size_t max, bool& timed_out) {
  std::string line;
  timed_out = false;
  char buf[512];
  while (line.find('\n') == std::string::npos && line.size() < max) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, ms_until(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail("poll");
    if (n == 0) {
      timed_out = true;
      break;
    }
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) return sys_fail("read");
    if (got == 0) break;
    line.append(buf, static_cast<size_t>(got));
  }
  if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  return line;
}

// The shim's first process exits right after forking the daemon; collect it, but
// never hang on a binary that does not behave.
std::string reap_first_process(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
      return "killed by signal " + std::to_string(WTERMSIG(status));
    }
    if (r < 0 && errno != EINTR) return "status unknown";  // ECHILD: a SIGCHLD handler got it
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return "killed: it did not exit";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

template <typename T>
bool parse_int(std::string_view s, T& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && ptr == s.data() + s.size() && out > 0;
}

class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
};

// A non-blocking connection to the unix socket `name` in `state_dir`; `where` names it
// in errors.
Result<UniqueFd> connect_socket(const std::string& state_dir, const char* name, const std::string& where,
                                Clock::time_point deadline) {
  std::string path = state_dir + "/" + name;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  UniqueFd dir;
  if (path.size() >= sizeof addr.sun_path) {
    // Too long for sun_path: reach the socket through a directory fd.
    dir.reset(::open(state_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return sys_fail("open " + state_dir);
    path = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + name;
  }
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock) return sys_fail("socket");
  while (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EINTR) continue;
    // EAGAIN: the backlog is full; the shim empties it on its next wake-up.
    if (errno != EAGAIN || Clock::now() >= deadline) return sys_fail("connect to " + where);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return sock;
}

}  // namespace

Result<ShimStarted> launch_shim(const ShimLaunch& l, std::chrono::milliseconds timeout) {
  for (auto [value, name] : {std::pair{&l.shim_binary, "shim binary"}, {&l.id, "container id"}, {&l.bundle, "bundle"},
                             {&l.state_dir, "state dir"}, {&l.runtime_binary, "runtime binary"},
                             {&l.runtime_root, "runtime root"}})
    if (value->empty()) return invalid(std::string("launch shim: no ") + name);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return sys_fail("launch shim: pipe");
  UniqueFd reader(fds[0]), writer(fds[1]);
  // Keep the write end off fds 0-3, where the child's dup2 onto fd 3 would be a no-op
  // that leaves close-on-exec set.
  UniqueFd high(::fcntl(writer.get(), F_DUPFD_CLOEXEC, 10));
  if (!high) return sys_fail("launch shim: dup");
  writer = std::move(high);

  std::vector<std::string> args = {l.shim_binary, "create", "--id", l.id, "--bundle", l.bundle, "--state-dir",
                                   l.state_dir, "--runtime", l.runtime_binary, "--runtime-root", l.runtime_root};
  if (!l.log_path.empty()) args.insert(args.end(), {"--log-path", l.log_path});
  if (l.tty) args.push_back("--tty");
  if (l.stdin_open) args.push_back("--stdin");
  if (l.stdin_once) args.push_back("--stdin-once");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  SpawnSetup spawn;
  posix_spawn_file_actions_addopen(&spawn.actions, 0, "/dev/null", O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&spawn.actions, 0, 1);
  posix_spawn_file_actions_adddup2(&spawn.actions, 0, 2);
  posix_spawn_file_actions_adddup2(&spawn.actions, writer.get(), shim::kReadyFd);
  // berthd's signal mask and ignored signals are its own business, not the shim's.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  posix_spawnattr_setsigmask(&spawn.attr, &none);
  posix_spawnattr_setsigdefault(&spawn.attr, &defaults);
  posix_spawnattr_setflags(&spawn.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, l.shim_binary.c_str(), &spawn.actions, &spawn.attr, argv.data(), environ);
  if (rc != 0) return sys_fail("launch shim: spawn " + l.shim_binary, rc);
  writer.reset();

  auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  auto line = read_line(reader.get(), deadline, shim::kMaxReadyLine, timed_out);
  std::string first = reap_first_process(pid, Clock::now() + std::chrono::seconds(2));
  if (!line) return std::unexpected(line.error().wrap("launch shim for " + l.id));
  if (timed_out)
    return fail(ETIMEDOUT, "launch shim for " + l.id + ": no answer within " + std::to_string(timeout.count()) + " ms");

  std::string_view text = *line;
  std::string ok = std::string(shim::kReplyOk) + " ";
  std::string error = std::string(shim::kReplyError) + " ";
  if (text.starts_with(ok)) {
    text.remove_prefix(ok.size());
    size_t space = text.find(' ');
    ShimStarted started;
    if (space != std::string_view::npos && parse_int(text.substr(0, space), started.shim_pid) &&
        parse_int(text.substr(space + 1), started.container_pid))
      return started;
  } else if (text.starts_with(error)) {
    return fail(EIO, "create container " + l.id + ": " + std::string(text.substr(error.size())));
  } else if (text.empty()) {
    return fail(EIO, "launch shim for " + l.id + ": berth-shim exited without reporting (" + first + ")");
  }
  return fail(EPROTO, "launch shim for " + l.id + ": unexpected ready line \"" + *line + "\"");
}

Result<ShimState> read_shim_state(const std::string& state_dir) {
  std::string path = state_dir + "/" + shim::kShimStateFile;
  auto text = read_file(path);
  if (!text) return std::unexpected(text.error());
  auto state = shim::parse_shim_state(*text);
  if (!state) return std::unexpected(state.error().wrap(state_dir));
  return state;
}

Result<std::optional<ExitState>> read_exit_state(const std::string& state_dir) {
  std::string path = state_dir + "/" + shim::kExitStateFile;
  auto text = read_file(path);
  if (!text) {
    if (text.error().code == ENOENT) return std::optional<ExitState>{};
    return std::unexpected(text.error());
  }
  auto state = shim::parse_exit_state(*text);
  if (!state) return std::unexpected(state.error().wrap(state_dir));
  return std::optional<ExitState>{*state};
}

Result<std::string> shim_request(const std::string& state_dir, const std::string& line,
                                 std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string where = "shim control socket " + state_dir + "/" + shim::kControlSocket;
  UniqueFd sock = BERTH_TRY(connect_socket(state_dir, shim::kControlSocket, where, deadline));
  std::string request = line;
  if (request.empty() || request.back() != '\n') request += '\n';
  for (size_t done = 0; done < request.size();) {
    ssize_t n = ::send(sock.get(), request.data() + done, request.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return sys_fail("send to " + where);
    pollfd p{sock.get(), POLLOUT, 0};
    if (::poll(&p, 1, ms_until(deadline)) == 0) return fail(ETIMEDOUT, "send to " + where + ": timed out");
  }
  bool timed_out = false;
  auto reply = read_line(sock.get(), deadline, 4096, timed_out);
  if (!reply) return std::unexpected(reply.error().wrap(where));
  if (timed_out) return fail(ETIMEDOUT, where + ": no reply in time");
  if (reply->empty()) return fail(EPIPE, where + ": closed without a reply");
  return reply;
}

Result<UniqueFd> connect_attach(const std::string& state_dir) {
  std::string where = "shim attach socket " + state_dir + "/" + shim::kAttachSocket;
  auto deadline = Clock::now() + std::chrono::seconds(5);
  UniqueFd sock = BERTH_TRY(connect_socket(state_dir, shim::kAttachSocket, where, deadline));
  int flags = ::fcntl(sock.get(), F_GETFL);
  if (flags < 0 || ::fcntl(sock.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return sys_fail(where + ": fcntl");
  return sock;
}

}  // namespace berth

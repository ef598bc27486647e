#include "runtime/shim/runtime_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/shim/shim_log.h"
#include "runtime/shim/shim_protocol.h"

namespace berth::shim {

namespace {

// Runtimes hand the pty master over within create; allow a slow one this long after.
constexpr int kConsoleGraceMs = 5000;

int64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Only the shim's end is non-blocking (`ours`: the reader of an output pipe, the
// writer of stdin); the container's end must block. O_NONBLOCK belongs to the open
// file, not the pipe, so the two ends do not share it.
bool make_pipe(UniqueFd& reader, UniqueFd& writer, UniqueFd& ours) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  reader.reset(fds[0]);
  writer.reset(fds[1]);
  return ::fcntl(ours.get(), F_SETFL, O_NONBLOCK) == 0;
}

UniqueFd listen_console(const char* name) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, name);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return {};
  ::unlink(name);
  mode_t old_mask = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (rc != 0 || ::listen(fd.get(), 1) != 0) return {};
  return fd;
}

// runc's console protocol: one message carrying the master in SCM_RIGHTS.
UniqueFd receive_fd(int sock) {
  char name[256];
  iovec iov{name, sizeof name};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return {};
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) return {};
  int fd;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  return UniqueFd(fd);
}

// Appends what `fd` has to `buf` (up to `size`), discarding the rest.
void capture(int fd, char* buf, size_t& used, size_t size) {
  char scratch[4096];
  for (;;) {
    ssize_t n = ::read(fd, scratch, sizeof scratch);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    size_t take = static_cast<size_t>(n) < size - used ? static_cast<size_t>(n) : size - used;
    std::memcpy(buf + used, scratch, take);
    used += take;
  }
}

// The runtime's output as one line: newlines become "; ", control bytes spaces.
void one_line(const char* in, size_t size, char* out, size_t out_size) {
  size_t len = 0;
  bool pending_break = false;
  for (size_t i = 0; i < size && len + 3 < out_size; ++i) {
    char c = in[i];
    if (c == '\n' || c == '\r') {
      pending_break = len > 0;
      continue;
    }
    if (pending_break) {
      out[len++] = ';';
      out[len++] = ' ';
      pending_break = false;
    }
    out[len++] = static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  while (len > 0 && out[len - 1] == ' ') --len;
  out[len] = '\0';
}

pid_t read_pid_file(const char* name) {
  int fd = ::open(name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  long pid = std::strtol(buf, nullptr, 10);
  return pid > 0 && pid < (1L << 22) + 1 ? static_cast<pid_t>(pid) : 0;
}

}  // namespace

pid_t RuntimeClient::spawn(const char* const* argv, int stdin_fd, int stdout_fd, int stderr_fd) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // The shim's signal setup must not leak into the runtime and the container.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGHUP, SIG_DFL);
  if (::dup2(stdin_fd, 0) < 0 || ::dup2(stdout_fd, 1) < 0 || ::dup2(stderr_fd, 2) < 0) ::_exit(127);
  ::execv(argv[0], const_cast<char* const*>(argv));
  ::dprintf(2, "exec %s: %s\n", argv[0], std::strerror(errno));
  ::_exit(127);
}

bool RuntimeClient::create(const std::string& id, const std::string& bundle, bool tty, bool stdin_open,
                           CreatedContainer& out, char* error, size_t error_size) {
  auto failed = [&](const char* what, int err) {
    std::snprintf(error, error_size, "%s: %s", what, std::strerror(err));
    return false;
  };
  std::string log = state_dir_ + "/" + kRuntimeLogFile;
  std::string pid_file = state_dir_ + "/" + kInitPidFile;
  std::string console = state_dir_ + "/" + kConsoleSocket;
  // A long state dir does not fit sun_path; our cwd is the state dir, and
  // /proc/<pid>/cwd reaches it from any process.
  if (console.size() >= sizeof(sockaddr_un::sun_path))
    console = "/proc/" + std::to_string(::getpid()) + "/cwd/" + kConsoleSocket;

  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null) return failed("open /dev/null", errno);
  UniqueFd out_w, err_w, in_r;
  if (!make_pipe(out.stdout_reader, out_w, out.stdout_reader) ||
      !make_pipe(out.stderr_reader, err_w, out.stderr_reader))
    return failed("pipe", errno);
  if (stdin_open && !tty && !make_pipe(in_r, out.stdin_writer, out.stdin_writer)) return failed("pipe", errno);
  UniqueFd console_listener, console_conn;
  if (tty) {
    console_listener = listen_console(kConsoleSocket);
    if (!console_listener) return failed("listen on console socket", errno);
  }

  const char* argv[16];
  int n = 0;
  for (const char* a : {runtime_.c_str(), "--root", root_.c_str(), "--log", log.c_str(), "create", "--bundle",
                        bundle.c_str(), "--pid-file", pid_file.c_str()})
    argv[n++] = a;
  if (tty) {
    argv[n++] = "--console-socket";
    argv[n++] = console.c_str();
  }
  argv[n++] = id.c_str();
  argv[n] = nullptr;

  pid_t pid = spawn(argv, in_r ? in_r.get() : null.get(), out_w.get(), err_w.get());
  if (pid < 0) return failed("fork", errno);
  out_w.reset();
  err_w.reset();
  in_r.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  char captured[2048];
  size_t captured_size = 0;
  int status = 0;
  bool exited = false;
  int64_t console_deadline = 0;
  for (;;) {
    int timeout = -1;
    if (exited) {
      if (!tty || out.pty_master || !WIFEXITED(status) || WEXITSTATUS(status) != 0) break;
      int64_t now = monotonic_ms();
      if (console_deadline == 0) console_deadline = now + kConsoleGraceMs;
      if (now >= console_deadline) break;
      timeout = static_cast<int>(console_deadline - now);
    }
    pollfd fds[4] = {{pidfd ? pidfd.get() : -1, POLLIN, 0},
                     {out.stdout_reader.get(), POLLIN, 0},
                     {out.stderr_reader.get(), POLLIN, 0},
                     {console_conn ? console_conn.get() : console_listener.get(), POLLIN, 0}};
    // Without a pidfd (old kernel) poll in short steps and try waitpid each time.
    if (!pidfd && !exited) timeout = 20;
    if (::poll(fds, 4, timeout) < 0 && errno != EINTR) return failed("poll", errno);
    if (!exited && (!pidfd || (fds[0].revents & POLLIN))) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) exited = true;
    }
    if (fds[1].revents) capture(fds[1].fd, captured, captured_size, sizeof captured);
    if (fds[2].revents) capture(fds[2].fd, captured, captured_size, sizeof captured);
    if (fds[3].revents && console_conn) {
      out.pty_master = receive_fd(console_conn.get());
      console_conn.reset();
    } else if (fds[3].revents && console_listener) {
      console_conn.reset(::accept4(console_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }
  }
  capture(out.stdout_reader.get(), captured, captured_size, sizeof captured);
  capture(out.stderr_reader.get(), captured, captured_size, sizeof captured);
  if (console_listener) ::unlink(kConsoleSocket);

  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    one_line(captured, captured_size, error, error_size);
    if (error[0] == '\0') {
      if (WIFEXITED(status))
        std::snprintf(error, error_size, "%s create exited with status %d", runtime_.c_str(), WEXITSTATUS(status));
      else
        std::snprintf(error, error_size, "%s create was killed by signal %d", runtime_.c_str(), WTERMSIG(status));
    }
    return false;
  }
  // Created from here on: whatever goes wrong must undo it.
  out.pid = read_pid_file(kInitPidFile);
  const char* problem = nullptr;
  if (out.pid == 0) problem = "the runtime wrote no container pid";
  else if (tty && !out.pty_master) problem = "no pty master arrived on the console socket";
  if (problem) {
    std::snprintf(error, error_size, "%s", problem);
    force_delete(id);
    return false;
  }
  if (tty) {
    // Our copies of the capture pipes are done; the pty carries the container's output.
    out.stdout_reader.reset();
    out.stderr_reader.reset();
    if (::fcntl(out.pty_master.get(), F_SETFL, O_NONBLOCK) != 0)
      shim_log("pty master O_NONBLOCK: %s", std::strerror(errno));
  }
  return true;
}

void RuntimeClient::force_delete(const std::string& id) {
  std::string log = state_dir_ + "/" + kRuntimeLogFile;
  const char* argv[] = {runtime_.c_str(), "--root", root_.c_str(), "--log", log.c_str(), "delete", "--force",
                        id.c_str(), nullptr};
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t pid = spawn(argv, null, null, null);
  if (null >= 0) ::close(null);
  if (pid < 0) return;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    shim_log("%s delete --force %s failed", runtime_.c_str(), id.c_str());
}

}  // namespace berth::shim

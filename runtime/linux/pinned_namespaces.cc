#include "runtime/linux/pinned_namespaces.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <thread>
#include <tuple>

#include "common/file_util.h"
#include "common/unique_fd.h"
#include "runtime/linux/container_state.h"

namespace berth::linux_ns {

namespace {

constexpr const char* kPinNames[] = {"net", "ipc", "uts", "pid"};

// ---- sysctls ----

std::string dotted(const std::string& name) {
  std::string out = name;
  if (name.find('/') != std::string::npos)
    for (char& c : out) c = c == '/' ? '.' : c;
  return out;
}

// "/proc/sys/<name with '.' -> '/'>"; a name holding '/' is already a path (so parts
// may hold dots, like VLAN interface names).
Result<std::string> sysctl_path(const std::string& name) {
  std::string rel = name;
  if (name.find('/') == std::string::npos)
    for (char& c : rel) c = c == '.' ? '/' : c;
  auto parts = split(rel, '/', false);
  for (auto& p : parts)
    if (p.empty() || p == "." || p == "..") return invalid("invalid sysctl name \"" + name + "\"");
  return "/proc/sys/" + rel;
}

bool is_net_sysctl(const std::string& name) { return starts_with(dotted(name), "net."); }

bool is_ipc_sysctl(const std::string& name) {
  std::string n = dotted(name);
  return starts_with(n, "kernel.shm") || starts_with(n, "kernel.msg") || n == "kernel.sem" ||
         n == "kernel.sem_next_id" || starts_with(n, "fs.mqueue.");
}

// /proc/sys resolves net and ipc entries against the namespaces of the calling
// thread, so this must run on the thread that unshared them.
Result<> write_sysctl(const std::string& name, const std::string& value, const char* ns_kind) {
  auto path = BERTH_TRY(sysctl_path(name));
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    int err = errno;
    if (err == ENOENT)
      return invalid("sysctl " + name + " does not exist in the new " + ns_kind +
                     " namespace (unknown, or not namespaced)");
    // Global knobs show up read-only in a non-initial namespace (net.core.rmem_max).
    if (err == EACCES || err == EPERM)
      return invalid("sysctl " + name + " is read-only in the new " + ns_kind + " namespace (not namespaced)");
    return sys_fail("open sysctl " + name, err);
  }
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) {
    int err = errno;
    return fail(err == EINVAL ? EINVAL : err,
                "set sysctl " + name + "=" + value + ": " + std::strerror(err));
  }
  if (static_cast<size_t>(n) != value.size()) return fail(EIO, "set sysctl " + name + ": short write");
  return {};
}

Result<> check_request(const PinRequest& req) {
  if (!req.hostname.empty()) {
    if (!req.uts) return invalid("a hostname needs a new uts namespace");
    if (req.hostname.size() > HOST_NAME_MAX) return invalid("hostname \"" + req.hostname + "\" is too long");
  }
  if (!req.net_sysctls.empty() && !req.net) return invalid("net sysctls need a new network namespace");
  if (!req.ipc_sysctls.empty() && !req.ipc) return invalid("IPC sysctls need a new IPC namespace");
  for (auto& [name, value] : req.net_sysctls) {
    if (!is_net_sysctl(name)) return invalid("sysctl " + name + " is not a network namespace sysctl");
    BERTH_TRY_VOID(sysctl_path(name));
  }
  for (auto& [name, value] : req.ipc_sysctls) {
    if (!is_ipc_sysctl(name)) return invalid("sysctl " + name + " is not an IPC namespace sysctl");
    BERTH_TRY_VOID(sysctl_path(name));
  }
  return {};
}

// ---- pins ----

// Undoes pins made so far when a later step fails.
class PinSet {
 public:
  PinSet() = default;
  PinSet(const PinSet&) = delete;
  PinSet& operator=(const PinSet&) = delete;
  ~PinSet() {
    if (committed_) return;
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      if (it->mounted) ::umount2(it->path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
      ::unlink(it->path.c_str());
    }
  }

  // Creates `path` (0444, must not exist) and bind-mounts `source` on it.
  Result<> pin(const std::string& source, const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444));
    if (!fd) {
      if (errno == EEXIST) return fail(EEXIST, path + " already exists (namespace already pinned?)");
      return sys_fail("create " + path);
    }
    fd.reset();
    made_.push_back({path, false});
    if (::mount(source.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0)
      return sys_fail("bind-mount " + source + " on " + path);
    made_.back().mounted = true;
    return {};
  }

  void commit() { committed_ = true; }

 private:
  struct Made {
    std::string path;
    bool mounted;
  };
  std::vector<Made> made_;
  bool committed_ = false;
};

Result<> bring_up_loopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return sys_fail("socket in new network namespace");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return sys_fail("get flags of lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return sys_fail("bring up lo");
  return {};
}

// Runs on a thread of its own: unshare of net, ipc and uts changes only the calling
// thread, so the daemon's other threads never see the new namespaces, and the
// namespaces outlive the thread through their bind mounts.
Result<PinnedNamespaces> pin_on_this_thread(const std::string& dir, const PinRequest& req) {
  int flags = (req.net ? CLONE_NEWNET : 0) | (req.ipc ? CLONE_NEWIPC : 0) | (req.uts ? CLONE_NEWUTS : 0);
  if (::unshare(flags) != 0) return sys_fail("unshare namespaces for " + dir);

  if (!req.hostname.empty() && ::sethostname(req.hostname.data(), req.hostname.size()) != 0)
    return sys_fail("sethostname " + req.hostname);
  if (req.net) BERTH_TRY_VOID(bring_up_loopback());
  for (auto& [name, value] : req.net_sysctls) BERTH_TRY_VOID(write_sysctl(name, value, "network"));
  for (auto& [name, value] : req.ipc_sysctls) BERTH_TRY_VOID(write_sysctl(name, value, "IPC"));

  PinnedNamespaces out;
  out.dir = dir;
  PinSet pins;
  for (auto [wanted, kind, slot] : {std::tuple{req.net, "net", &out.net}, std::tuple{req.ipc, "ipc", &out.ipc},
                                    std::tuple{req.uts, "uts", &out.uts}}) {
    if (!wanted) continue;
    std::string path = dir + "/" + kind;
    BERTH_TRY_VOID(pins.pin(std::string("/proc/thread-self/ns/") + kind, path));
    *slot = path;
  }
  pins.commit();
  return out;
}

// ---- PID namespace holder ----

struct Report {
  int step;   // kStepPid: value is the holder's pid; otherwise the step that failed
  int value;  // pid or errno
};
constexpr int kStepPid = 0, kStepUnshare = 1, kStepFork = 2, kStepExec = 3;

void send_report(int fd, int step, int value) {
  Report r{step, value};
  // One write of 8 bytes into a pipe is atomic; nothing useful to do if it fails.
  [[maybe_unused]] ssize_t n = ::write(fd, &r, sizeof r);
}

// Between fork and exec in a multithreaded parent only async-signal-safe calls:
// every string and array is built before the fork.
[[noreturn]] void run_intermediate(int report_fd, const char* binary, char* const* argv, char* const* envp) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);

  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
  }
  ::close_range(3, static_cast<unsigned>(report_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(report_fd) + 1, ~0U, 0);
  ::setsid();
  if (::chdir("/") != 0) {
    // Not fatal: the holder does not care about its cwd beyond not pinning a mount.
  }

  if (::unshare(CLONE_NEWPID) != 0) {
    send_report(report_fd, kStepUnshare, errno);
    ::_exit(1);
  }
  pid_t holder = ::_Fork();
  if (holder < 0) {
    send_report(report_fd, kStepFork, errno);
    ::_exit(1);
  }
  if (holder == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(binary, argv, envp);
    send_report(report_fd, kStepExec, errno);
    ::_exit(127);
  }
  send_report(report_fd, kStepPid, holder);
  ::_exit(0);
}

void kill_if_same(pid_t pid, unsigned long long start_time) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd && process_matches(pid, start_time)) ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
}

}  // namespace

Result<PinnedNamespaces> pin_new_namespaces(const std::string& dir, const PinRequest& request) {
  if (dir.empty() || dir[0] != '/') return invalid("namespace pin dir must be an absolute path: \"" + dir + "\"");
  BERTH_TRY_VOID(check_request(request));
  struct stat st{};
  bool made_dir = ::stat(dir.c_str(), &st) != 0;
  BERTH_TRY_VOID(make_dirs(dir, 0711));
  if (!request.net && !request.ipc && !request.uts) return PinnedNamespaces{dir, "", "", ""};

  Result<PinnedNamespaces> result = fail(EIO, "namespace pin thread did not run");
  std::thread worker([&] { result = pin_on_this_thread(dir, request); });
  worker.join();
  if (!result && made_dir) ::rmdir(dir.c_str());
  return result;
}

Result<> release_pinned_namespaces(const std::string& dir) {
  Result<> outcome;
  for (const char* name : kPinNames) {
    std::string path = dir + "/" + name;
    // Loop: the same file may have been pinned more than once.
    for (int i = 0; i < 16; ++i) {
      if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
      if (errno != EINVAL && errno != ENOENT && outcome) outcome = sys_fail("unmount " + path);
      break;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && outcome) outcome = sys_fail("remove " + path);
  }
  return outcome;
}

Result<PidNamespaceHolder> start_pid_namespace_holder(const std::string& dir, const std::string& holder_binary,
                                                      std::vector<std::string> holder_args) {
  if (dir.empty() || dir[0] != '/') return invalid("namespace pin dir must be an absolute path: \"" + dir + "\"");
  if (holder_binary.empty() || holder_binary[0] != '/')
    return invalid("PID namespace holder must be an absolute path: \"" + holder_binary + "\"");
  if (::access(holder_binary.c_str(), X_OK) != 0) return sys_fail("PID namespace holder " + holder_binary);
  BERTH_TRY_VOID(make_dirs(dir, 0711));
  const std::string pin = dir + "/pid";
  struct stat st{};
  if (::lstat(pin.c_str(), &st) == 0) return fail(EEXIST, pin + " already exists (PID namespace already pinned?)");

  std::vector<std::string> args_storage = {holder_binary};
  for (auto& a : holder_args) args_storage.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : args_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {path_env.data(), nullptr};

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return sys_fail("pipe2");
  UniqueFd report_read(fds[0]), report_write(fds[1]);
  // The child points 0-2 at /dev/null: keep the report pipe clear of them.
  if (report_write.get() <= 2) {
    report_write.reset(::fcntl(report_write.get(), F_DUPFD_CLOEXEC, 3));
    if (!report_write) return sys_fail("fcntl F_DUPFD_CLOEXEC");
  }

  // _Fork skips atfork handlers: the child of a multithreaded daemon must not run them.
  pid_t mid = ::_Fork();
  if (mid < 0) return sys_fail("fork PID namespace holder");
  if (mid == 0) run_intermediate(report_write.get(), holder_binary.c_str(), argv.data(), envp);
  report_write.reset();

  pid_t holder = 0;
  Result<> failure;
  for (;;) {
    Report r{};
    ssize_t n = ::read(report_read.get(), &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (n != sizeof r) {
      failure = fail(EIO, "short report from the PID namespace holder start");
      break;
    }
    if (r.step == kStepPid) holder = r.value;
    else if (r.step == kStepUnshare) failure = sys_fail("unshare PID namespace", r.value);
    else if (r.step == kStepFork) failure = sys_fail("fork PID 1 of the new namespace", r.value);
    else failure = sys_fail("exec PID namespace holder " + holder_binary, r.value);
  }
  int status = 0;
  while (::waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!failure) return std::unexpected(failure.error());
  if (holder <= 0) return fail(EIO, "PID namespace holder start reported no pid");

  PidNamespaceHolder out;
  out.pid = holder;
  out.start_time = process_start_time(holder);
  out.pid_ns = pin;
  if (out.start_time == 0) return fail(ESRCH, "PID namespace holder " + holder_binary + " exited right after start");

  PinSet pins;
  if (auto r = pins.pin("/proc/" + std::to_string(holder) + "/ns/pid", pin); !r) {
    kill_if_same(holder, out.start_time);
    return std::unexpected(r.error());
  }
  // The pid could have been reused between the start-time read and the mount.
  if (!process_matches(holder, out.start_time)) return fail(ESRCH, "PID namespace holder exited during setup");
  pins.commit();
  return out;
}

Result<> stop_pid_namespace_holder(pid_t pid, unsigned long long start_time) {
  if (pid <= 0) return invalid("invalid PID namespace holder pid " + std::to_string(pid));
  // glibc 2.36 declares pidfd_open without C linkage for C++, hence raw syscalls.
  // Open the pidfd first, then check the start time: the pidfd then surely names the
  // process that was checked.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    if (errno == ESRCH) return {};
    return sys_fail("pidfd_open " + std::to_string(pid));
  }
  if (!process_matches(pid, start_time)) return {};
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
    return sys_fail("kill PID namespace holder " + std::to_string(pid));
  pollfd p{pidfd.get(), POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, 10000);
    if (r > 0) return {};
    if (r == 0) return fail(ETIMEDOUT, "PID namespace holder " + std::to_string(pid) + " did not exit after SIGKILL");
    if (errno != EINTR) return sys_fail("wait for PID namespace holder " + std::to_string(pid));
  }
}

}  // namespace berth::linux_ns

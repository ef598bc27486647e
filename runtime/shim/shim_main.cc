// berth-shim: the per-container monitor (`create`) and the pod's pid-namespace holder
// (`pause`). Static, single-threaded and small: one runs beside every container.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "runtime/shim/pause_holder.h"
#include "runtime/shim/shim_monitor.h"
#include "runtime/shim/shim_protocol.h"

using namespace berth::shim;

namespace {

constexpr char kUsage[] =
    "usage: berth-shim create --id ID --bundle DIR --state-dir DIR --runtime PATH --runtime-root DIR\n"
    "                         [--log-path FILE] [--tty] [--stdin] [--stdin-once]   (fd 3: ready pipe)\n"
    "       berth-shim pause\n";

bool ready_fd_open() { return ::fcntl(kReadyFd, F_GETFD) >= 0; }

// Before the daemon exists: the caller reads the ready pipe, a person reads stderr.
int early_error(const char* message) {
  if (ready_fd_open()) ::dprintf(kReadyFd, "%.*s %s\n", static_cast<int>(kReplyError.size()), kReplyError.data(),
                                 message);
  ::dprintf(2, "berth-shim: %s\n", message);
  return 2;
}

std::string absolute(const std::string& path, const char* cwd) {
  if (path.empty() || path[0] == '/') return path;
  return std::string(cwd) + "/" + path;
}

// Returns an error message, or nullptr.
const char* parse_create_options(int argc, char** argv, ShimOptions& o) {
  static char message[256];
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool inline_value = false;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    if (arg == "--tty" || arg == "--stdin" || arg == "--stdin-once") {
      if (inline_value) return "flags take no value";
      (arg == "--tty" ? o.tty : arg == "--stdin" ? o.stdin_open : o.stdin_once) = true;
      continue;
    }
    std::string* target = arg == "--id"             ? &o.id
                          : arg == "--bundle"       ? &o.bundle
                          : arg == "--state-dir"    ? &o.state_dir
                          : arg == "--runtime"      ? &o.runtime
                          : arg == "--runtime-root" ? &o.runtime_root
                          : arg == "--log-path"     ? &o.log_path
                                                    : nullptr;
    if (!target) {
      std::snprintf(message, sizeof message, "unknown option %.*s", static_cast<int>(arg.size()), arg.data());
      return message;
    }
    if (!inline_value) {
      if (i + 1 >= argc) {
        std::snprintf(message, sizeof message, "%.*s needs a value", static_cast<int>(arg.size()), arg.data());
        return message;
      }
      value = argv[++i];
    }
    target->assign(value);
  }
  const char* missing = o.id.empty()             ? "--id"
                        : o.bundle.empty()       ? "--bundle"
                        : o.state_dir.empty()    ? "--state-dir"
                        : o.runtime.empty()      ? "--runtime"
                        : o.runtime_root.empty() ? "--runtime-root"
                                                 : nullptr;
  if (missing) {
    std::snprintf(message, sizeof message, "%s is required", missing);
    return message;
  }
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return "getcwd failed";
  for (std::string* p : {&o.bundle, &o.state_dir, &o.runtime, &o.runtime_root, &o.log_path}) *p = absolute(*p, cwd);
  return nullptr;
}

void close_other_fds() {
  if (::syscall(SYS_close_range, kReadyFd + 1, ~0U, 0) == 0) return;
  long max = ::sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = kReadyFd + 1; fd < max; ++fd) ::close(fd);
}

int create_main(int argc, char** argv) {
  ShimOptions options;
  if (const char* problem = parse_create_options(argc, argv, options)) return early_error(problem);

  // Daemonize: the caller reaps this first process at once, and the shim is no
  // child of berthd, so it outlives a berthd killed with -9.
  bool new_session = ::setsid() >= 0;  // fails only if we already lead a process group
  pid_t pid = ::fork();
  if (pid < 0) return early_error("fork failed");
  if (pid > 0) ::_exit(0);
  if (!new_session) ::setsid();

  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::umask(022);
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
    if (null > 2) ::close(null);
  }
  int ready = ready_fd_open() ? kReadyFd : -1;
  if (ready >= 0) ::fcntl(ready, F_SETFD, FD_CLOEXEC);  // the runtime and container must not hold it
  close_other_fds();

  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  ::sigprocmask(SIG_BLOCK, &handled, nullptr);
  int signal_fd = ::signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
  auto report = [&](const char* what) {
    char message[512];
    std::snprintf(message, sizeof message, "%s: %s", what, std::strerror(errno));
    if (ready >= 0) ::dprintf(ready, "%.*s %s\n", static_cast<int>(kReplyError.size()), kReplyError.data(), message);
    return 1;
  };
  if (signal_fd < 0) return report("signalfd");
  if (::mkdir(options.state_dir.c_str(), 0700) != 0 && errno != EEXIST) return report("create the state dir");
  if (::chdir(options.state_dir.c_str()) != 0) return report("enter the state dir");
  // Orphans of the container (its init above all, once `create` exits) come to us.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return report("become a subreaper");

  ShimMonitor monitor(std::move(options));
  return monitor.run(ready, signal_fd);
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view command = argc > 1 ? argv[1] : "";
  if (command == "create") return create_main(argc - 2, argv + 2);
  if (command == "pause") return run_pause_holder();
  ::dprintf(2, "%s", kUsage);
  return 2;
}

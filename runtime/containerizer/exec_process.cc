#include "runtime/containerizer/exec_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "common/file_util.h"
#include "runtime/linux/console.h"

extern char** environ;

namespace berth::pod {

namespace {

// How long the runtime may take to hand over the pty master.
constexpr int kConsoleTimeoutMs = 10000;

pid_t parent_of(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  auto close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  auto fields = split(std::string_view(*stat).substr(close + 2), ' ');
  return fields.size() > 1 ? std::atoi(fields[1].c_str()) : 0;
}

// SIGKILL `roots` and every process descending from them. Children are found before
// anything is killed, so none is reparented out of reach first.
void kill_tree(std::set<pid_t> tree) {
  std::map<pid_t, pid_t> parents;
  if (DIR* d = ::opendir("/proc")) {
    while (auto* e = ::readdir(d)) {
      pid_t pid = std::atoi(e->d_name);
      if (pid > 0) parents[pid] = parent_of(pid);
    }
    ::closedir(d);
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (auto [pid, ppid] : parents)
      if (tree.contains(ppid) && tree.insert(pid).second) grew = true;
  }
  for (pid_t pid : tree) ::kill(pid, SIGKILL);
}

std::string random_tag() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// The last error the runtime logged (JSON lines, as runc writes them), if any.
std::string runtime_error_in(const std::string& log_file) {
  auto text = read_file(log_file);
  if (!text) return {};
  std::string last;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("level", "") == "error") last = j.value("msg", "");
  }
  return last;
}

Result<std::pair<UniqueFd, UniqueFd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return sys_fail("pipe");
  return std::pair{UniqueFd(p[0]), UniqueFd(p[1])};
}

// A console socket in `dir_fd`, reached through /proc so that long state paths
// still fit sun_path. Returns the listener and the path the runtime connects to.
Result<std::pair<UniqueFd, std::string>> listen_console(int dir_fd, const std::string& name) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock) return sys_fail("console socket");
  std::string bind_path = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + name;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (bind_path.size() >= sizeof addr.sun_path) return invalid("console socket name too long");
  std::memcpy(addr.sun_path, bind_path.c_str(), bind_path.size() + 1);
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return sys_fail("bind console socket");
  ::fchmodat(dir_fd, name.c_str(), 0600, 0);
  if (::listen(sock.get(), 1) != 0) return sys_fail("listen on console socket");
  return std::pair{std::move(sock), "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(dir_fd) + "/" + name};
}

}  // namespace

Result<std::unique_ptr<ExecProcess>> ExecProcess::start(const ExecInvocation& inv) {
  std::unique_ptr<ExecProcess> p(new ExecProcess());
  p->io_ = inv.io;
  std::string tag = random_tag();
  p->process_file_ = inv.work_dir + "/exec-" + tag + ".json";
  p->pid_file_ = inv.work_dir + "/exec-" + tag + ".pid";
  p->log_file_ = inv.work_dir + "/exec-" + tag + ".log";
  // From here the destructor removes the files; with no child it reaps nothing.
  p->reaped_ = true;

  auto process = nlohmann::json::parse(inv.process_json, nullptr, false);
  if (!process.is_object()) return invalid("exec: the process is not a JSON object");
  process["terminal"] = inv.io.tty;
  process.erase("consoleSize");
  BERTH_TRY_VOID(write_file_atomic(p->process_file_, process.dump(), 0600));

  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null) return sys_fail("open /dev/null");
  UniqueFd child_in, child_out, child_err;
  if (inv.io.stdin && !inv.io.tty) std::tie(child_in, p->stdin_) = BERTH_TRY(make_pipe());
  if (inv.io.stdout && !inv.io.tty) std::tie(p->stdout_, child_out) = BERTH_TRY(make_pipe());
  if (inv.io.stderr && !inv.io.tty) std::tie(p->stderr_, child_err) = BERTH_TRY(make_pipe());
  // Big pipes: a streamed `cat` of a large file should not wake us every 64 KiB.
  for (int fd : {p->stdout_.get(), p->stderr_.get()})
    if (fd >= 0) ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);

  UniqueFd dir_fd, console;
  std::string console_path;
  std::string console_name = "exec-" + tag + ".sock";
  if (inv.io.tty) {
    dir_fd.reset(::open(inv.work_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) return sys_fail("open " + inv.work_dir);
    std::tie(console, console_path) = BERTH_TRY(listen_console(dir_fd.get(), console_name));
  }
  struct SocketFile {
    int dir;
    std::string name;
    ~SocketFile() {
      if (dir >= 0) ::unlinkat(dir, name.c_str(), 0);
    }
  } socket_file{dir_fd.get(), console_name};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_in ? child_in.get() : null.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, child_out ? child_out.get() : null.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, child_err ? child_err.get() : null.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> args = {inv.runtime_binary, "--root", inv.runtime_root, "--log", p->log_file_,
                                   "--log-format",     "json",   "exec",           "--process", p->process_file_,
                                   "--pid-file",       p->pid_file_};
  if (inv.io.tty) {
    args.push_back("--console-socket");
    args.push_back(console_path);
  }
  args.push_back(inv.container_id);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = ::posix_spawn(&p->child_, inv.runtime_binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return sys_fail("spawn " + inv.runtime_binary, rc);
  p->reaped_ = false;
  p->pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, p->child_, 0)));
  if (!p->pidfd_) {
    int err = errno;
    p->kill();
    return sys_fail("pidfd_open", err);
  }

  if (inv.io.tty) {
    // The master arrives once the command's terminal is set up; a runtime that exits
    // first failed (its message is in the log).
    UniqueFd conn;
    for (int waited = 0; !p->pty_;) {
      pollfd fds[2] = {{conn ? conn.get() : console.get(), POLLIN, 0}, {p->pidfd_.get(), POLLIN, 0}};
      int n = ::poll(fds, 2, 100);
      if (n < 0 && errno != EINTR) return sys_fail("poll console socket");
      if (fds[0].revents && !conn) {
        conn.reset(::accept4(console.get(), nullptr, nullptr, SOCK_CLOEXEC));
      } else if (fds[0].revents) {
        p->pty_ = BERTH_TRY(receive_fd(conn.get()));
      } else if (fds[1].revents) {
        auto exit = p->wait();
        if (exit.runtime_error.empty()) exit.runtime_error = "the runtime exited without handing over a terminal";
        return fail(EIO, exit.runtime_error);
      } else if ((waited += 100) >= kConsoleTimeoutMs) {
        p->kill();
        return fail(ETIMEDOUT, "the runtime did not hand over a terminal in time");
      }
    }
  }
  return p;
}

ExecProcess::~ExecProcess() {
  if (!reaped_) {
    kill();
    wait();
  }
  for (auto* f : {&process_file_, &pid_file_, &log_file_})
    if (!f->empty()) ::unlink(f->c_str());
}

void ExecProcess::close_stdin() {
  if (!io_.stdin) return;
  if (io_.tty) {
    // In canonical mode the line discipline turns VEOF into end of input for the reader.
    char eof = 0x04;
    termios t{};
    if (::tcgetattr(pty_.get(), &t) == 0) eof = static_cast<char>(t.c_cc[VEOF]);
    (void)!::write(pty_.get(), &eof, 1);
    return;
  }
  stdin_.reset();
}

Result<> ExecProcess::resize(uint16_t width, uint16_t height) {
  if (!io_.tty) return {};
  winsize ws{};
  ws.ws_col = width;
  ws.ws_row = height;
  if (::ioctl(pty_.get(), TIOCSWINSZ, &ws) != 0) return sys_fail("resize terminal");
  return {};
}

ExecExit ExecProcess::wait() {
  if (reaped_) return exit_;
  int status = 0;
  while (::waitpid(child_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  if (WIFEXITED(status)) exit_.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) exit_.exit_code = 128 + WTERMSIG(status);
  if (exit_.exit_code != 0) exit_.runtime_error = runtime_error_in(log_file_);
  return exit_;
}

void ExecProcess::kill() {
  if (reaped_) return;
  std::set<pid_t> roots{child_};
  if (auto text = read_file(pid_file_))
    if (pid_t pid = std::atoi(std::string(trim(*text)).c_str()); pid > 0) roots.insert(pid);
  kill_tree(std::move(roots));
}

}  // namespace berth::pod

#include "runtime/containerizer/exec_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "common/file_util.h"
#include "common/unique_fd.h"

extern char** environ;

namespace berth::pod {

namespace {

using Clock = std::chrono::steady_clock;

pid_t parent_of(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  auto close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  auto fields = split(std::string_view(*stat).substr(close + 2), ' ');
  return fields.size() > 1 ? std::atoi(fields[1].c_str()) : 0;
}

// SIGKILL `root` and every process descending from it. Children are found before
// anything is killed, so none is reparented out of reach first.
void kill_tree(pid_t root) {
  std::map<pid_t, pid_t> parents;
  if (DIR* d = ::opendir("/proc")) {
    while (auto* e = ::readdir(d)) {
      pid_t pid = std::atoi(e->d_name);
      if (pid > 0) parents[pid] = parent_of(pid);
    }
    ::closedir(d);
  }
  std::set<pid_t> tree{root};
  for (bool grew = true; grew;) {
    grew = false;
    for (auto [pid, ppid] : parents)
      if (tree.contains(ppid) && tree.insert(pid).second) grew = true;
  }
  for (pid_t pid : tree) ::kill(pid, SIGKILL);
}

std::string random_suffix() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

}  // namespace

Result<ExecResult> run_exec(const ExecInvocation& inv) {
  std::string tag = random_suffix();
  std::string process_file = inv.work_dir + "/exec-" + tag + ".json";
  std::string pid_file = inv.work_dir + "/exec-" + tag + ".pid";
  BERTH_TRY_VOID(write_file_atomic(process_file, inv.process_json, 0600));
  struct Cleanup {
    std::string a, b;
    ~Cleanup() {
      ::unlink(a.c_str());
      ::unlink(b.c_str());
    }
  } cleanup{process_file, pid_file};

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return sys_fail("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return sys_fail("pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
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

  std::vector<std::string> args = {inv.runtime_binary, "--root",     inv.runtime_root, "exec", "--process",
                                   process_file,       "--pid-file", pid_file,         inv.container_id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = 0;
  int rc = ::posix_spawn(&child, inv.runtime_binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return sys_fail("spawn " + inv.runtime_binary, rc);
  out_w.reset();
  err_w.reset();

  ExecResult result;
  auto deadline = inv.timeout.count() > 0 ? Clock::now() + inv.timeout : Clock::time_point::max();
  auto drain_deadline = Clock::time_point::max();
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.stdout_data, &result.stderr_data};
  int open_streams = 2;
  char buf[65536];
  while (open_streams > 0) {
    auto now = Clock::now();
    if (!result.timed_out && now >= deadline) {
      result.timed_out = true;
      auto pid_text = read_file(pid_file);
      pid_t pid = pid_text ? std::atoi(std::string(trim(*pid_text)).c_str()) : 0;
      if (pid > 0) kill_tree(pid);
      ::kill(child, SIGKILL);
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
        size_t room = inv.max_output_bytes - std::min(inv.max_output_bytes, sinks[i]->size());
        sinks[i]->append(buf, std::min(room, static_cast<size_t>(got)));
      } else if (got == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_streams;
      }
    }
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (result.timed_out) {
    result.exit_code = 137;
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace berth::pod

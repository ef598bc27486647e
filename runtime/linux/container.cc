// Container operations on an existing container: load, status, start, kill,
// delete, pause/resume, update, ps, list.
#include "runtime/linux/container.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "common/file_util.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "isolators/cgroups/cgroups.h"
#include "runtime/linux/hooks.h"
#include "runtime/oci/spec_parser.h"

namespace berth {

namespace {

Result<cgroups::CgroupManager> open_cgroup(const ContainerState& s) {
  auto layout = cgroups::Layout::detect();
  if (!layout) return std::unexpected(layout.error());
  return cgroups::CgroupManager::open(*layout, s.cgroup_path);
}

// Waits (bounded) until the process behind `pid` is gone.
bool wait_gone(pid_t pid, unsigned long long start_time, int timeout_ms) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd && process_matches(pid, start_time)) {
    pollfd p{pidfd.get(), POLLIN, 0};
    ::poll(&p, 1, timeout_ms);
  }
  // Our own child (create, then delete from the same process) must be reaped too.
  ::waitpid(pid, nullptr, WNOHANG);
  return !process_matches(pid, start_time);
}

}  // namespace

Result<Container> Container::load(const std::string& root, const std::string& id) {
  BERTH_TRY_VOID(validate_container_id(id));
  std::string dir = root + "/" + id;
  auto text = read_file(dir + "/state.json");
  if (!text) {
    if (text.error().code == ENOENT) {
      struct stat st{};
      if (::stat(dir.c_str(), &st) == 0) {
        // A create that died before its first state write: only the dir exists.
        ContainerState s;
        s.id = id;
        s.cgroup_path = "/berth/" + id;
        return Container(dir, s);
      }
      return fail(ENOENT, "container \"" + id + "\" does not exist");
    }
    return std::unexpected(text.error());
  }
  auto state = ContainerState::from_json(*text);
  if (!state) return std::unexpected(state.error().wrap("container " + id));
  return Container(dir, std::move(*state));
}

std::vector<std::string> Container::list(const std::string& root) {
  std::vector<std::string> ids;
  DIR* d = ::opendir(root.c_str());
  if (!d) return ids;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) ids.push_back(name);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status Container::status() const {
  bool alive = state_.pid > 0 && process_matches(state_.pid, state_.start_time);
  if (!state_.created_done) return alive ? Status::creating : Status::stopped;
  if (!alive) return Status::stopped;
  if (::access((dir_ + "/exec.fifo").c_str(), F_OK) == 0) return Status::created;
  auto cg = open_cgroup(state_);
  if (cg) {
    auto frozen = cg->frozen();
    if (frozen && *frozen) return Status::paused;
  }
  return Status::running;
}

Result<std::shared_ptr<const oci::Spec>> Container::spec() const {
  if (spec_) return spec_;
  auto text = read_file(dir_ + "/config.json");
  if (!text) return std::unexpected(text.error().wrap("container " + state_.id));
  spec_ = std::make_shared<const oci::Spec>(BERTH_TRY(oci::parse_spec(*text)));
  return spec_;
}

Result<> Container::start() {
  Status s = status();
  if (s != Status::created)
    return fail(EINVAL, "cannot start container \"" + state_.id + "\" in state " + status_name(s));
  std::string fifo = dir_ + "/exec.fifo";
  // Non-blocking open always succeeds for a reader; the init, blocked opening the
  // write end, then wakes and writes one byte.
  UniqueFd fd(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return sys_fail("open " + fifo);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, state_.pid, 0)));
  for (;;) {
    pollfd fds[2] = {{fd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int n = ::poll(fds, pidfd ? 2 : 1, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return fail(ETIMEDOUT, "container init did not take the start signal");
    if (fds[0].revents & POLLIN) {
      char byte;
      if (::read(fd.get(), &byte, 1) == 1) break;
    }
    if ((fds[1].revents & POLLIN) || !process_matches(state_.pid, state_.start_time))
      return fail(ESRCH, "container init exited before start");
    if (fds[0].revents & POLLHUP) ::usleep(1000);
  }
  ::unlink(fifo.c_str());
  // The init holds the write end until it executes the user process (or dies
  // in a startContainer hook); poststart hooks wait for that hang-up.
  for (;;) {
    pollfd fds[2] = {{fd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int n = ::poll(fds, pidfd ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) break;
    char byte;
    if ((fds[0].revents & POLLHUP) || ::read(fd.get(), &byte, 1) <= 0) break;
  }
  auto spec = this->spec();
  if (spec) {
    auto r = run_hooks((*spec)->hooks.poststart, "poststart", oci_state_json(state_, status(), false));
    if (!r) log::warn(r.error().message);
  }
  return {};
}

Result<> Container::kill(int sig, bool all) {
  Status s = status();
  if (s == Status::stopped) return fail(ESRCH, "container \"" + state_.id + "\" is not running");
  if (all) {
    auto cg = BERTH_TRY(open_cgroup(state_));
    return cg.signal_all(sig);
  }
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, state_.pid, 0)));
  if (!pidfd) return sys_fail("open container process");
  // The pidfd pins the process: check it is still ours, then signal that exact one.
  if (!process_matches(state_.pid, state_.start_time)) return fail(ESRCH, "container \"" + state_.id + "\" is not running");
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0) return sys_fail("signal container");
  return {};
}

Result<> Container::destroy_cgroup_and_state() {
  auto cg = open_cgroup(state_);
  if (cg) {
    // Anything left (exec'd processes, a stray fork) dies with the container.
    auto left = cg->pids();
    if (left && !left->empty()) {
      (void)cg->signal_all(SIGKILL);
      for (int i = 0; i < 400; ++i) {
        left = cg->pids();
        if (!left || left->empty()) break;
        ::usleep(5000);
      }
    }
    BERTH_TRY_VOID(cg->destroy());
  }
  if (state_.created_done) {
    auto spec = this->spec();
    if (spec && !(*spec)->hooks.poststop.empty()) {
      auto r = run_hooks((*spec)->hooks.poststop, "poststop", oci_state_json(state_, Status::stopped, false));
      if (!r) log::warn(r.error().message);
    }
  }
  return remove_tree(dir_);
}

Result<> Container::remove(bool force) {
  Status s = status();
  if ((s == Status::running || s == Status::paused) && !force)
    return fail(EBUSY, "cannot delete container \"" + state_.id + "\" in state " + status_name(s) +
                           "; stop it first or use --force");
  if (s != Status::stopped) {
    auto cg = open_cgroup(state_);
    if (cg) (void)cg->signal_all(SIGKILL);
    ::kill(state_.pid, SIGKILL);
    if (!wait_gone(state_.pid, state_.start_time, 10000))
      return fail(EBUSY, "container \"" + state_.id + "\" process did not exit after SIGKILL");
  } else if (state_.pid > 0) {
    ::waitpid(state_.pid, nullptr, WNOHANG);
  }
  return destroy_cgroup_and_state();
}

Result<> Container::pause() {
  Status s = status();
  if (s != Status::running) return fail(EINVAL, "cannot pause container \"" + state_.id + "\" in state " + status_name(s));
  auto cg = BERTH_TRY(open_cgroup(state_));
  return cg.freeze();
}

Result<> Container::resume() {
  Status s = status();
  if (s != Status::paused) return fail(EINVAL, "cannot resume container \"" + state_.id + "\" in state " + status_name(s));
  auto cg = BERTH_TRY(open_cgroup(state_));
  return cg.thaw();
}

Result<> Container::update(const oci::Resources& resources) {
  BERTH_TRY_VOID(oci::validate_resources(resources));
  Status s = status();
  if (s == Status::stopped) return fail(EINVAL, "cannot update stopped container \"" + state_.id + "\"");
  auto cg = BERTH_TRY(open_cgroup(state_));
  return cg.apply(resources);
}

Result<std::vector<pid_t>> Container::pids() const {
  auto cg = BERTH_TRY(open_cgroup(state_));
  return cg.pids();
}

}  // namespace berth

// Container::exec: a new process inside a running container's namespaces, cgroup
// and root, set up with the same process rules as the init.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/file_util.h"
#include "common/log.h"
#include "isolators/cgroups/cgroups.h"
#include "runtime/linux/console.h"
#include "runtime/linux/container.h"
#include "runtime/linux/foreground.h"
#include "runtime/linux/namespaces.h"
#include "runtime/linux/process_plan.h"
#include "runtime/linux/sync_channel.h"

namespace berth {

namespace {

[[noreturn]] void exec_child_fail(SyncChannel& chan, const std::string& message) {
  (void)chan.send(SyncMsg::error, message);
  _exit(126);
}

[[noreturn]] void exec_child(SyncChannel& chan, int target_pidfd, int ns_flags, int root_fd, int console_fd,
                             ProcessPlan& plan) {
  if (!chan.expect(SyncMsg::go)) _exit(1);
  // One setns on the pidfd joins every namespace at once, atomically.
  if (::setns(target_pidfd, ns_flags) != 0)
    exec_child_fail(chan, "join container namespaces: " + std::string(std::strerror(errno)));
  // The init's root, not the mount namespace's: they differ for --no-pivot containers.
  if (::fchdir(root_fd) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0)
    exec_child_fail(chan, "enter container root: " + std::string(std::strerror(errno)));
  ::close(root_fd);
  ::close(target_pidfd);
  // pid and time namespaces take effect for children only.
  pid_t pid = ::fork();
  if (pid < 0) exec_child_fail(chan, "fork: " + std::string(std::strerror(errno)));
  if (pid > 0) {
    (void)chan.send(SyncMsg::init_pid, std::to_string(pid));
    _exit(0);
  }
  if (plan.terminal) {
    auto r = setup_terminal(console_fd, plan.console_size, false);
    if (!r) exec_child_fail(chan, r.error().message);
  }
  if (console_fd >= 0) ::close(console_fd);
  auto r = exec_process(plan);
  exec_child_fail(chan, r.error().message);
}

}  // namespace

Result<int> Container::exec(const ExecOptions& opts) {
  Status s = status();
  if (s != Status::running) return fail(EINVAL, "cannot exec in container \"" + state_.id + "\" in state " + status_name(s));
  auto spec_ptr = BERTH_TRY(this->spec());
  const oci::Spec& spec = *spec_ptr;
  auto plan = BERTH_TRY(plan_process(opts.process, spec.linux ? spec.linux->seccomp : std::nullopt));
  plan.preserve_fds = opts.preserve_fds;
  if (plan.terminal && opts.console_socket.empty() && opts.detach)
    return invalid("--tty with --detach needs --console-socket");

  int ns_flags = 0;
  size_t count = 0;
  const linux_ns::NamespaceKind* kinds = linux_ns::all_kinds(&count);
  for (size_t i = 0; i < count; ++i)
    if (spec.find_namespace(kinds[i].oci_type)) ns_flags |= kinds[i].clone_flag;
  if (!ns_flags) ns_flags = CLONE_NEWNS;  // still needs the container's mounts

  UniqueFd target(static_cast<int>(::syscall(SYS_pidfd_open, state_.pid, 0)));
  if (!target) return sys_fail("open container init");
  UniqueFd root_fd(::open(("/proc/" + std::to_string(state_.pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return sys_fail("open container root");
  if (!process_matches(state_.pid, state_.start_time)) return fail(ESRCH, "container init exited");

  UniqueFd console_theirs, console_ours;
  if (plan.terminal) {
    if (!opts.console_socket.empty()) {
      console_theirs = BERTH_TRY(connect_console_socket(opts.console_socket));
    } else {
      int pair[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return sys_fail("console socketpair");
      console_ours.reset(pair[0]);
      console_theirs.reset(pair[1]);
    }
  }
  if (!opts.detach) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    block_relayed_signals();
  }
  auto [ours, theirs] = BERTH_TRY(SyncChannel::make_pair());
  pid_t child = ::fork();
  if (child < 0) return sys_fail("fork");
  if (child == 0) {
    ours.close();
    exec_child(theirs, target.get(), ns_flags, root_fd.get(), console_theirs.get(), plan);
  }
  theirs.close();
  console_theirs.reset();
  auto kill_child = [&] {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  };
  auto layout = cgroups::Layout::detect();
  if (!layout) {
    kill_child();
    return std::unexpected(layout.error());
  }
  auto cg = cgroups::CgroupManager::open(*layout, state_.cgroup_path);
  if (auto r = cg.add_process(child); !r) {
    kill_child();
    return std::unexpected(r.error().wrap("join container cgroup"));
  }
  if (auto r = ours.send(SyncMsg::go); !r) {
    kill_child();
    return std::unexpected(r.error());
  }
  auto pid_text = ours.expect(SyncMsg::init_pid);
  ::waitpid(child, nullptr, 0);
  if (!pid_text) return std::unexpected(pid_text.error().wrap("exec"));
  pid_t pid = std::stoi(*pid_text);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  // EOF: the process exec'd (its end of the channel was close-on-exec).
  auto after = ours.receive();
  if (after && after->first == SyncMsg::error) {
    ::waitpid(pid, nullptr, 0);
    return fail(EIO, after->second);
  }
  if (!opts.pid_file.empty()) BERTH_TRY_VOID(write_file_atomic(opts.pid_file, std::to_string(pid), 0644));
  if (opts.detach) return 0;
  UniqueFd master;
  if (console_ours) master = BERTH_TRY(receive_fd(console_ours.get()));
  return supervise(pid, pidfd.get(), master.get());
}

}  // namespace berth

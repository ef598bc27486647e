#include "runtime/linux/process_plan.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/close_range.h>

#include "common/file_util.h"

namespace berth {

namespace {

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

Result<> set_lsm_label(const std::string& attr, const std::string& value, const std::string& what) {
  // The label takes effect at the next execve, which is the container's process.
  auto r = write_existing("/proc/self/attr/" + attr, value);
  if (!r) return std::unexpected(r.error().wrap("apply " + what + " label"));
  return {};
}

}  // namespace

bool apparmor_enabled() {
  auto text = read_file("/sys/module/apparmor/parameters/enabled");
  return text && !text->empty() && (*text)[0] == 'Y' && ::access("/sys/kernel/security/apparmor", F_OK) == 0;
}

bool selinux_enabled() { return ::access("/sys/fs/selinux/enforce", F_OK) == 0; }

Result<ProcessPlan> plan_process(const oci::Process& p, const std::optional<oci::Seccomp>& seccomp) {
  ProcessPlan plan;
  if (p.args.empty()) return invalid("process.args: must name the program to run");
  plan.args = p.args;
  plan.env = p.env;
  plan.cwd = p.cwd.empty() ? "/" : p.cwd;
  plan.uid = p.user.uid;
  plan.gid = p.user.gid;
  plan.groups.assign(p.user.additional_gids.begin(), p.user.additional_gids.end());
  if (p.user.umask) {
    if (*p.user.umask > 0777) return invalid("process.user.umask: must be <= 0777");
    plan.umask = static_cast<mode_t>(*p.user.umask);
  }
  if (p.capabilities) plan.caps = BERTH_TRY(process::resolve_capabilities(*p.capabilities));
  plan.rlimits = BERTH_TRY(process::resolve_rlimits(p.rlimits));
  plan.no_new_privs = p.no_new_privileges;
  if (seccomp) {
    auto program = seccomp::compile(*seccomp);
    if (!program) return std::unexpected(program.error().wrap("linux.seccomp"));
    plan.seccomp = std::move(*program);
  }
  plan.apparmor_profile = p.apparmor_profile;
  if (!plan.apparmor_profile.empty() && !apparmor_enabled())
    return invalid("process.apparmorProfile \"" + plan.apparmor_profile + "\" asked for, but AppArmor is not enabled on this host");
  plan.selinux_label = p.selinux_label;
  if (!plan.selinux_label.empty() && !selinux_enabled())
    return invalid("process.selinuxLabel \"" + plan.selinux_label + "\" asked for, but SELinux is not enabled on this host");
  plan.terminal = p.terminal;
  plan.console_size = p.console_size;
  plan.oom_score_adj = p.oom_score_adj;
  return plan;
}

Result<std::string> find_executable(const ProcessPlan& plan) {
  const std::string& name = plan.args[0];
  auto usable = [](const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    std::string path = name[0] == '/' ? name : (plan.cwd == "/" ? "/" : plan.cwd + "/") + name;
    if (usable(path)) return name;
    return fail(ENOENT, "executable " + name + " not found or not executable in the container");
  }
  std::string search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (auto& e : plan.env)
    if (e.starts_with("PATH=")) search = e.substr(5);
  for (auto& dir : split(search, ':')) {
    std::string path = dir + "/" + name;
    if (usable(path)) return path;
  }
  return fail(ENOENT, "executable \"" + name + "\" not found in $PATH (" + search + ") in the container");
}

Result<int> load_seccomp_early(ProcessPlan& plan) {
  if (!plan.seccomp) return -1;
  if (plan.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return sys_fail("set no_new_privs");
  int fd = BERTH_TRY(seccomp::load(*plan.seccomp));
  plan.seccomp_loaded = true;
  return fd;
}

Result<> exec_process(ProcessPlan& plan) {
  std::string path = BERTH_TRY(find_executable(plan));
  BERTH_TRY_VOID(process::apply_rlimits(plan.rlimits));
  if (!plan.apparmor_profile.empty())
    BERTH_TRY_VOID(set_lsm_label("apparmor/exec", "exec " + plan.apparmor_profile, "AppArmor"));
  if (!plan.selinux_label.empty()) BERTH_TRY_VOID(set_lsm_label("exec", plan.selinux_label, "SELinux"));
  // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we
  // still have it, as runc does; the filter must then allow the id changes below.
  if (plan.seccomp && !plan.seccomp_loaded && !plan.no_new_privs) {
    BERTH_TRY_VOID(seccomp::load(*plan.seccomp));
    plan.seccomp_loaded = true;
  }
  BERTH_TRY_VOID(process::drop_bounding(plan.caps));
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return sys_fail("keep capabilities across setuid");
  // A joined user namespace may have setgroups denied; that only matters when
  // supplementary groups were asked for.
  if (::setgroups(plan.groups.size(), plan.groups.data()) != 0 && !(errno == EPERM && plan.groups.empty()))
    return sys_fail("setgroups");
  if (::setresgid(plan.gid, plan.gid, plan.gid) != 0) return sys_fail("setgid " + std::to_string(plan.gid));
  if (::setresuid(plan.uid, plan.uid, plan.uid) != 0) return sys_fail("setuid " + std::to_string(plan.uid));
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return sys_fail("clear keepcaps");
  BERTH_TRY_VOID(process::apply_capabilities(plan.caps));
  ::umask(plan.umask);
  if (::chdir(plan.cwd.c_str()) != 0) return sys_fail("chdir to " + plan.cwd);
  if (plan.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return sys_fail("set no_new_privs");
  if (plan.seccomp && !plan.seccomp_loaded) {
    BERTH_TRY_VOID(seccomp::load(*plan.seccomp));
    plan.seccomp_loaded = true;
  }
  // Only stdio and the fds the caller asked to preserve survive into the container.
  unsigned int first_closed = 3 + static_cast<unsigned int>(plan.preserve_fds);
  for (unsigned int fd = 3; fd < first_closed; ++fd) ::fcntl(static_cast<int>(fd), F_SETFD, 0);
  if (::syscall(SYS_close_range, first_closed, ~0U, CLOSE_RANGE_CLOEXEC) != 0) return sys_fail("close_range");
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  auto argv = c_strings(plan.args);
  auto envp = c_strings(plan.env);
  ::execve(path.c_str(), argv.data(), envp.data());
  return sys_fail("exec " + path);
}

}  // namespace berth

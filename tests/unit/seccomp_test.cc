// Seccomp compile/load without privileges: no_new_privs lets any process install
// a filter, so behaviour is checked in forked children.
#include "isolators/seccomp/seccomp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

namespace berth::seccomp {
namespace {

using oci::SyscallArg;
using oci::SyscallRule;

constexpr int kLoadFailed = 250;
constexpr int kNoNewPrivsFailed = 251;

// Forks; the child sets no_new_privs, loads the program, runs `body` and exits
// with its return value. Returns the child's wait status.
int run_confined(const Program& program, const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(kNoNewPrivsFailed);
    int listener = -1;
    if (load_raw(program, &listener) != 0) ::_exit(kLoadFailed);
    ::_exit(body());
  }
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return status;
}

// Exit code of a confined child that reports errno (0 for success).
int confined_errno(const Program& program, const std::function<long()>& call) {
  int status = run_confined(program, [&] { return call() < 0 ? errno : 0; });
  EXPECT_TRUE(WIFEXITED(status)) << "child died by signal " << WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long raw_mkdirat() { return ::syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-berth-dir/x", 0700); }
long raw_personality(unsigned long persona) { return ::syscall(SYS_personality, persona); }

SyscallRule rule(std::vector<std::string> names, std::string action,
                 std::optional<uint32_t> errno_ret = std::nullopt, std::vector<SyscallArg> args = {}) {
  return SyscallRule{std::move(names), std::move(action), errno_ret, std::move(args)};
}

SyscallArg arg(uint32_t index, std::string op, uint64_t value, uint64_t value_two = 0) {
  return SyscallArg{index, value, value_two, std::move(op)};
}

oci::Seccomp allow_by_default(std::vector<SyscallRule> rules) {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  s.syscalls = std::move(rules);
  return s;
}

// Shaped like Docker's default profile: deny with EPERM, allow a long list on
// three x86 ABIs, names that exist only on other architectures, arg filters.
oci::Seccomp docker_like_profile() {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ERRNO";
  s.default_errno_ret = 1;
  s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  s.syscalls.push_back(rule(
      {"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
       "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_getres", "clock_gettime",
       "clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
       "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2",
       "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
       "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat",
       "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flock",
       "fork", "fstat", "fstat64", "fstatfs", "fsync", "ftruncate", "futex", "futex_waitv",
       "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups",
       "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
       "getresgid", "getresuid", "getrlimit", "get_robust_list", "getrusage", "getsid",
       "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr",
       "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_uring_enter",
       "ioctl", "kill", "lchown", "link", "linkat", "listen", "lseek", "lstat", "madvise",
       "memfd_create", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mmap", "mmap2",
       "mprotect", "mremap", "msync", "munmap", "nanosleep", "newfstatat", "_newselect", "open",
       "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "poll",
       "ppoll", "prctl", "pread64", "preadv", "prlimit64", "pselect6", "pwrite64", "pwritev",
       "read", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "rename",
       "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
       "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
       "rt_sigtimedwait", "sched_getaffinity", "sched_yield", "select", "sendfile", "sendmmsg",
       "sendmsg", "sendto", "setgid", "setgroups", "setitimer", "setpgid", "setresgid",
       "setresuid", "setsid", "setsockopt", "set_robust_list", "set_tid_address", "setuid",
       "shutdown", "sigaltstack", "signalfd4", "sigreturn", "socketcall", "socketpair", "splice",
       "stat", "stat64", "statfs", "statx", "symlink", "symlinkat", "sync", "sysinfo", "tee",
       "tgkill", "time", "timer_create", "timerfd_create", "tkill", "truncate", "umask", "uname",
       "unlink", "unlinkat", "utimensat", "vfork", "wait4", "waitid", "write", "writev",
       "_llseek", "ugetrlimit", "waitpid"},
      "SCMP_ACT_ALLOW"));
  for (uint64_t persona : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull})
    s.syscalls.push_back(rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt,
                              {arg(0, "SCMP_CMP_EQ", persona)}));
  s.syscalls.push_back(rule({"arch_prctl", "modify_ldt"}, "SCMP_ACT_ALLOW"));
  // clone without namespace flags (CLONE_NEWNS | ... | CLONE_NEWCGROUP = 0x7e020000).
  s.syscalls.push_back(rule({"clone"}, "SCMP_ACT_ALLOW", std::nullopt,
                            {arg(0, "SCMP_CMP_MASKED_EQ", 0x7e020000, 0)}));
  s.syscalls.push_back(rule({"clone3"}, "SCMP_ACT_ERRNO", 38));
  s.syscalls.push_back(rule({"socket"}, "SCMP_ACT_ALLOW", std::nullopt,
                            {arg(0, "SCMP_CMP_NE", 40)}));  // no AF_VSOCK
  return s;
}

void expect_invalid(const oci::Seccomp& spec, const std::string& culprit) {
  auto program = compile(spec);
  ASSERT_FALSE(program) << "expected an error naming " << culprit;
  EXPECT_EQ(program.error().code, EINVAL) << program.error().message;
  EXPECT_NE(program.error().message.find(culprit), std::string::npos)
      << "message \"" << program.error().message << "\" does not name " << culprit;
}

TEST(SeccompCompile, DockerLikeAllowListCompilesAndConfines) {
  auto program = compile(docker_like_profile());
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_GT(program->instructions.size(), 100u);
  EXPECT_LE(program->instructions.size(), 4096u);
  EXPECT_EQ(program->flags, 0u);
  EXPECT_FALSE(program->wants_listener);
  EXPECT_TRUE(program->skipped_syscalls.empty());

  // Allowed with no condition, unlisted (default EPERM), allowed only for some
  // personas, and the explicit clone3 ENOSYS.
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_getppid); }), 0);
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_unshare, 0); }), EPERM);
  EXPECT_EQ(confined_errno(*program, [] { return raw_personality(0xffffffff); }), 0);
  EXPECT_EQ(confined_errno(*program, [] { return raw_personality(0x0040000); }), EPERM);
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_clone3, nullptr, 0); }), ENOSYS);
}

TEST(SeccompCompile, ErrnoDenyListReturnsChosenErrno) {
  auto spec = allow_by_default({rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", 38),
                                rule({"unshare"}, "SCMP_ACT_ERRNO")});
  auto program = compile(spec);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(confined_errno(*program, raw_mkdirat), 38);
  // errnoRet left out means EPERM.
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_unshare, 0); }), EPERM);
  // Without the filter the same mkdirat fails for the missing parent instead.
  EXPECT_EQ(raw_mkdirat(), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST(SeccompCompile, DefaultErrnoRetAppliesToUnlistedSyscalls) {
  oci::Seccomp spec;
  spec.default_action = "SCMP_ACT_ERRNO";
  spec.default_errno_ret = 77;
  spec.syscalls = {rule({"exit", "exit_group", "getpid", "rt_sigreturn"}, "SCMP_ACT_ALLOW")};
  auto program = compile(spec);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_getpid); }), 0);
  EXPECT_EQ(confined_errno(*program, raw_mkdirat), 77);
}

TEST(SeccompCompile, ArgConditionAllowsOnlyMatchingValue) {
  // personality(0xffffffff) only queries; anything else is refused with E2BIG.
  auto program = compile(allow_by_default(
      {rule({"personality"}, "SCMP_ACT_ERRNO", E2BIG, {arg(0, "SCMP_CMP_NE", 0xffffffff)})}));
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(confined_errno(*program, [] { return raw_personality(0xffffffff); }), 0);
  EXPECT_EQ(confined_errno(*program, [] { return raw_personality(PER_LINUX32); }), E2BIG);
}

TEST(SeccompCompile, EveryOperatorCompilesAndMatches) {
  struct Case {
    SyscallArg cond;
    unsigned long matching;
    unsigned long not_matching;
  };
  std::vector<Case> cases = {
      {arg(0, "SCMP_CMP_EQ", 8), 8, 0},
      {arg(0, "SCMP_CMP_NE", 0xffffffff), 8, 0xffffffff},
      {arg(0, "SCMP_CMP_LT", 9), 8, 9},
      {arg(0, "SCMP_CMP_LE", 8), 8, 9},
      {arg(0, "SCMP_CMP_GT", 7), 8, 7},
      {arg(0, "SCMP_CMP_GE", 8), 8, 7},
      {arg(0, "SCMP_CMP_MASKED_EQ", 0xff00, 0x0400), 0x0408, 0x0808},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.cond.op);
    auto program = compile(allow_by_default({rule({"personality"}, "SCMP_ACT_ERRNO", EXDEV, {c.cond})}));
    ASSERT_TRUE(program) << program.error().message;
    unsigned long hit = c.matching, miss = c.not_matching;
    EXPECT_EQ(confined_errno(*program, [&] { return raw_personality(hit); }), EXDEV);
    EXPECT_EQ(confined_errno(*program, [&] { return raw_personality(miss); }), 0);
  }
}

TEST(SeccompCompile, ArgsOnTheSameIndexAreOred) {
  // Read as AND, "arg0 == 8 && arg0 == 0x20000" would never match.
  auto program = compile(allow_by_default({rule({"personality"}, "SCMP_ACT_ERRNO", EXDEV,
                                                {arg(0, "SCMP_CMP_EQ", 0x8), arg(0, "SCMP_CMP_EQ", 0x20000)})}));
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(confined_errno(*program, [] { return raw_personality(0x8); }), EXDEV);
  EXPECT_EQ(confined_errno(*program, [] { return raw_personality(0x20000); }), EXDEV);
  EXPECT_EQ(confined_errno(*program, [] { return raw_personality(0xffffffff); }), 0);
}

TEST(SeccompCompile, ArgsOnDifferentIndexesAreAnded) {
  // mkdirat(dirfd == AT_FDCWD && mode == 0700) is refused; mode 0755 passes the filter.
  auto program = compile(allow_by_default(
      {rule({"mkdirat"}, "SCMP_ACT_ERRNO", EXDEV,
            {arg(0, "SCMP_CMP_EQ", static_cast<uint32_t>(AT_FDCWD)), arg(2, "SCMP_CMP_EQ", 0700)})}));
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(confined_errno(*program, raw_mkdirat), EXDEV);
  EXPECT_EQ(confined_errno(*program,
                           [] { return ::syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-berth-dir/x", 0755); }),
            ENOENT);
}

TEST(SeccompCompile, KillProcessAndTrapEndTheChildWithSigsys) {
  for (const char* action : {"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"}) {
    SCOPED_TRACE(action);
    auto program = compile(allow_by_default({rule({"getppid"}, action)}));
    ASSERT_TRUE(program) << program.error().message;
    int status = run_confined(*program, [] { return ::syscall(SYS_getppid) < 0 ? 1 : 2; });
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    // KILL (thread) of a single-threaded process reads as SIGSYS too on this kernel.
    EXPECT_EQ(WTERMSIG(status), SIGSYS);
  }
}

TEST(SeccompCompile, RulesEqualToTheDefaultAreSkipped) {
  auto base = compile(allow_by_default({rule({"mkdirat"}, "SCMP_ACT_ERRNO")}));
  auto with_redundant = compile(allow_by_default(
      {rule({"mkdirat"}, "SCMP_ACT_ERRNO"), rule({"getpid", "mkdir"}, "SCMP_ACT_ALLOW")}));
  ASSERT_TRUE(base) << base.error().message;
  ASSERT_TRUE(with_redundant) << with_redundant.error().message;
  ASSERT_EQ(base->instructions.size(), with_redundant->instructions.size());
  EXPECT_TRUE(std::equal(base->instructions.begin(), base->instructions.end(),
                         with_redundant->instructions.begin(), [](const sock_filter& a, const sock_filter& b) {
                           return a.code == b.code && a.jt == b.jt && a.jf == b.jf && a.k == b.k;
                         }));

  // Same action with another errno is not the default and stays.
  oci::Seccomp deny;
  deny.default_action = "SCMP_ACT_ERRNO";
  deny.default_errno_ret = EPERM;
  deny.syscalls = {rule({"exit_group", "exit", "rt_sigreturn", "getpid"}, "SCMP_ACT_ALLOW"),
                   rule({"mkdirat"}, "SCMP_ACT_ERRNO", EPERM),  // same as default: skipped
                   rule({"unshare"}, "SCMP_ACT_ERRNO", EXDEV)};
  auto program = compile(deny);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(confined_errno(*program, raw_mkdirat), EPERM);
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_unshare, 0); }), EXDEV);
}

TEST(SeccompCompile, TraceAndLogActionsCompile) {
  auto program = compile(allow_by_default(
      {rule({"mkdirat"}, "SCMP_ACT_TRACE", 5), rule({"getppid"}, "SCMP_ACT_LOG")}));
  ASSERT_TRUE(program) << program.error().message;
  // Untraced, a TRACE match fails with ENOSYS; LOG lets the call through.
  EXPECT_EQ(confined_errno(*program, raw_mkdirat), ENOSYS);
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_getppid); }), 0);
}

TEST(SeccompCompile, ErrorsNameTheCulprit) {
  auto spec = allow_by_default({rule({"mkdir"}, "SCMP_ACT_FOO")});
  expect_invalid(spec, "unknown action \"SCMP_ACT_FOO\"");

  spec = allow_by_default({});
  spec.default_action = "SCMP_ACT_BAR";
  expect_invalid(spec, "unknown action \"SCMP_ACT_BAR\"");

  expect_invalid(allow_by_default({rule({"getpid", "foo"}, "SCMP_ACT_ERRNO")}), "unknown syscall \"foo\"");

  spec = allow_by_default({});
  spec.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
  expect_invalid(spec, "unknown architecture \"SCMP_ARCH_VAX\"");
  spec.architectures = {"x86_64"};  // libseccomp's short names are not OCI names
  expect_invalid(spec, "unknown architecture \"x86_64\"");

  spec = allow_by_default({});
  spec.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_NEW_LISTENER"};
  expect_invalid(spec, "unknown flag \"SECCOMP_FILTER_FLAG_NEW_LISTENER\"");

  expect_invalid(allow_by_default({rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt,
                                        {arg(0, "SCMP_CMP_APPROX", 1)})}),
                 "unknown operator \"SCMP_CMP_APPROX\"");

  expect_invalid(allow_by_default({rule({"getppid"}, "SCMP_ACT_KILL_PROCESS", 1)}),
                 "errnoRet 1 given for action SCMP_ACT_KILL_PROCESS");
  spec = allow_by_default({});
  spec.default_errno_ret = 1;
  expect_invalid(spec, "errnoRet 1 given for action SCMP_ACT_ALLOW");
  expect_invalid(allow_by_default({rule({"mkdir"}, "SCMP_ACT_ERRNO", 70000)}), "errnoRet 70000");

  expect_invalid(allow_by_default({rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt,
                                        {arg(6, "SCMP_CMP_EQ", 1)})}),
                 "arg index 6");

  expect_invalid(allow_by_default({rule({"getpid"}, "SCMP_ACT_ALLOW"), rule({"mkdir"}, "SCMP_ACT_NOTIFY")}),
                 "syscalls[1]: SCMP_ACT_NOTIFY needs seccomp listenerPath");

  spec = allow_by_default({});
  spec.default_action = "SCMP_ACT_NOTIFY";
  spec.listener_path = "/run/agent.sock";
  expect_invalid(spec, "SCMP_ACT_NOTIFY cannot be the default action");

  expect_invalid(allow_by_default({rule({}, "SCMP_ACT_ERRNO")}), "syscalls[0]: names");

  spec = allow_by_default({});
  spec.listener_metadata = "x";
  expect_invalid(spec, "listenerMetadata is set but listenerPath is not");

  spec = allow_by_default({rule({"mkdir"}, "SCMP_ACT_ERRNO")});
  spec.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  expect_invalid(spec, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule");
}

TEST(SeccompCompile, UnknownSyscallsCanBeSkippedLikeRunc) {
  auto spec = allow_by_default({rule({"no_such_call", "mkdirat", "another_fake"}, "SCMP_ACT_ERRNO", EXDEV)});
  auto program = compile(spec, CompileOptions{.skip_unknown_syscalls = true});
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(program->skipped_syscalls, (std::vector<std::string>{"no_such_call", "another_fake"}));
  EXPECT_EQ(confined_errno(*program, raw_mkdirat), EXDEV);
}

TEST(SeccompCompile, NamesOfOtherArchitecturesAreNotUnknown) {
  // socketcall and _llseek do not exist on x86_64 but libseccomp knows them.
  auto program = compile(allow_by_default({rule({"socketcall", "_llseek"}, "SCMP_ACT_ERRNO")}));
  EXPECT_TRUE(program) << program.error().message;
}

TEST(SeccompCompile, FlagsMapToKernelBits) {
  struct Case {
    const char* name;
    unsigned int bit;
  };
  for (auto c : {Case{"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
                 Case{"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
                 Case{"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW}}) {
    auto spec = allow_by_default({rule({"mkdir"}, "SCMP_ACT_ERRNO")});
    spec.flags = {c.name};
    auto program = compile(spec);
    ASSERT_TRUE(program) << program.error().message;
    EXPECT_EQ(program->flags, c.bit) << c.name;
  }
  auto spec = allow_by_default({rule({"mkdir"}, "SCMP_ACT_ERRNO")});
  spec.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  auto program = compile(spec);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(program->flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  // The flags reach the kernel: LOG and SPEC_ALLOW load fine and the rule holds.
  EXPECT_EQ(confined_errno(*program, [] { return ::syscall(SYS_mkdir, "/nonexistent-berth-dir/x", 0700); }),
            EPERM);
}

TEST(SeccompCompile, NotifySetsNewListener) {
  auto spec = allow_by_default({rule({"mkdirat"}, "SCMP_ACT_NOTIFY")});
  spec.listener_path = "/run/agent.sock";
  auto program = compile(spec);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_TRUE(program->wants_listener);
  EXPECT_EQ(program->flags, SECCOMP_FILTER_FLAG_NEW_LISTENER);

  spec.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  program = compile(spec);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(program->flags, SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH |
                                SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);

  // The kernel takes that flag set and hands back a listener fd.
  int status = run_confined(Program{}, [] { return 0; });  // keep the helper honest: empty program fails
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kLoadFailed);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(kNoNewPrivsFailed);
    auto fd = load(*program);
    ::_exit(fd && *fd >= 0 && ::fcntl(*fd, F_GETFD) >= 0 ? 0 : 1);
  }
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompLoad, WithoutNoNewPrivsOrCapSysAdminFailsWithHint) {
  auto program = compile(allow_by_default({rule({"mkdir"}, "SCMP_ACT_ERRNO")}));
  ASSERT_TRUE(program) << program.error().message;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    // Root would pass on CAP_SYS_ADMIN; become nobody (which drops every capability).
    if (::geteuid() == 0 && (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0))
      ::_exit(3);
    auto r = load(*program);
    if (r) ::_exit(1);
    std::string msg = r.error().message + "|" + std::to_string(r.error().code);
    (void)!::write(pipefd[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "load succeeded without privileges";
  EXPECT_NE(got.find("no_new_privs or CAP_SYS_ADMIN"), std::string::npos) << got;
  EXPECT_NE(got.find("|" + std::to_string(EACCES)), std::string::npos) << got;
}

TEST(SeccompListener, ContainerProcessStateJson) {
  auto json = container_process_state(
      4422, "MKNOD=/dev/null",
      R"({"ociVersion":"1.0.2","id":"c1","status":"creating","pid":4422,"bundle":"/b"})");
  ASSERT_TRUE(json) << json.error().message;
  auto j = nlohmann::json::parse(*json);
  EXPECT_EQ(j["ociVersion"], "1.0.2");
  EXPECT_EQ(j["fds"], nlohmann::json::array({"seccompFd"}));
  EXPECT_EQ(j["pid"], 4422);
  EXPECT_EQ(j["metadata"], "MKNOD=/dev/null");
  EXPECT_EQ(j["state"]["id"], "c1");
  EXPECT_EQ(j["state"]["status"], "creating");

  auto no_meta = container_process_state(7, "", R"({"id":"c2"})");
  ASSERT_TRUE(no_meta) << no_meta.error().message;
  auto k = nlohmann::json::parse(*no_meta);
  EXPECT_FALSE(k.contains("metadata"));
  EXPECT_EQ(k["ociVersion"], "1.1.0");

  auto bad = container_process_state(7, "", "not json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, EINVAL);
}

TEST(SeccompListener, SendToMissingSocketFails) {
  auto r = send_listener_fd("/nonexistent-berth-dir/agent.sock", 0, 1, "", R"({"id":"c"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find("/nonexistent-berth-dir/agent.sock"), std::string::npos);
  EXPECT_FALSE(send_listener_fd(std::string(200, 'a'), 0, 1, "", "{}"));
}

TEST(SeccompFeatures, NamesMatchTheRuntimeSpec) {
  auto actions = known_actions();
  EXPECT_EQ(actions.size(), 9u);
  for (const char* a : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"})
    EXPECT_NE(std::find(actions.begin(), actions.end(), a), actions.end()) << a;
  EXPECT_EQ(known_operators().size(), 7u);
  auto archs = known_architectures();
  EXPECT_NE(std::find(archs.begin(), archs.end(), "SCMP_ARCH_X86_64"), archs.end());
  EXPECT_NE(std::find(archs.begin(), archs.end(), "SCMP_ARCH_RISCV64"), archs.end());
  EXPECT_EQ(known_flags().size(), 4u);
  // Kernel 6.x understands all four.
  EXPECT_EQ(supported_flags(), known_flags());
  // Every advertised name is recognised; big-endian ones cannot join an x86_64 filter.
  for (auto& a : known_architectures()) {
    auto spec = allow_by_default({});
    spec.architectures = {a};
    auto program = compile(spec);
    if (!program) {
      EXPECT_NE(program.error().message.find("other byte order"), std::string::npos)
          << a << ": " << program.error().message;
    }
  }
  auto spec = allow_by_default({});
  spec.architectures = {"SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_RISCV64"};
  EXPECT_TRUE(compile(spec));
}

}  // namespace
}  // namespace berth::seccomp

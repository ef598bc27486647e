// Unit tests for isolators/seccomp/default_profile: berth's RuntimeDefault profile
// compiles with libseccomp, and once loaded (in a forked child; no root needed with
// no_new_privs) it denies what it should and allows what ordinary programs need.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "isolators/seccomp/default_profile.h"
#include "isolators/seccomp/seccomp.h"

namespace berth::seccomp {
namespace {

using ::testing::Contains;

// The profile's deny errno is swapped for one no kernel path returns here, so a
// failure can be told apart from the kernel refusing on its own (EPERM for non-root).
constexpr uint32_t kDenied = 133;  // EHWPOISON

const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",  "CAP_MKNOD",           "CAP_NET_RAW",
    "CAP_SETGID",  "CAP_SETUID",       "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE",
};

bool rule_allows(const oci::Seccomp& p, const std::string& name) {
  for (auto& r : p.syscalls)
    if (r.action == "SCMP_ACT_ALLOW" && r.args.empty() && std::count(r.names.begin(), r.names.end(), name)) return true;
  return false;
}

Program compiled(oci::Seccomp profile) {
  profile.default_errno_ret = kDenied;
  CompileOptions options;
  options.skip_unknown_syscalls = true;
  auto program = compile(profile, options);
  EXPECT_TRUE(program) << program.error().message;
  return program ? *program : Program{};
}

// Runs `probe` in a child under the filter; returns the child's exit code (the
// probe's return value), or -1 if the filter could not be loaded.
int run_filtered(const Program& program, const std::function<int()>& probe) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(200);
    if (load_raw(program, nullptr) != 0) _exit(201);
    _exit(probe());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return -2;
  int code = WEXITSTATUS(status);
  return code >= 200 ? -1 : code;
}

// 1 when the syscall came back with the filter's errno, 0 otherwise.
int denied(long rc) { return rc == -1 && errno == static_cast<int>(kDenied) ? 1 : 0; }

TEST(DefaultSeccompProfile, ShapeIsDefaultDenyWithEperm) {
  auto p = default_profile(kDefaultCaps);
  EXPECT_EQ(p.default_action, "SCMP_ACT_ERRNO");
  ASSERT_TRUE(p.default_errno_ret);
  EXPECT_EQ(*p.default_errno_ret, static_cast<uint32_t>(EPERM));
#if defined(__x86_64__)
  EXPECT_EQ(p.architectures, (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_TRUE(rule_allows(p, "arch_prctl"));
#endif
  for (const char* name : {"read", "write", "openat", "execve", "futex", "exit_group", "chroot"})
    EXPECT_TRUE(rule_allows(p, name)) << name;
  for (const char* name : {"mount", "kexec_load", "reboot", "unshare", "setns", "bpf", "ptrace_nonexistent"})
    EXPECT_FALSE(rule_allows(p, name)) << name;
}

TEST(DefaultSeccompProfile, CompilesStrictlyOnceUnknownNamesAreSkipped) {
  auto p = default_profile(kDefaultCaps);
  CompileOptions options;
  options.skip_unknown_syscalls = true;
  auto program = compile(p, options);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_GT(program->instructions.size(), 10u);
  EXPECT_LE(program->instructions.size(), 4096u);
  // Whatever was skipped must be a name the library does not know; pruning those
  // leaves a profile the launcher's strict compile accepts.
  for (auto& rule : p.syscalls)
    std::erase_if(rule.names, [&](const std::string& n) {
      return std::count(program->skipped_syscalls.begin(), program->skipped_syscalls.end(), n) > 0;
    });
  std::erase_if(p.syscalls, [](const oci::SyscallRule& r) { return r.names.empty(); });
  auto strict = compile(p);
  EXPECT_TRUE(strict) << strict.error().message;
}

TEST(DefaultSeccompProfile, CapabilityGatedSyscallsFollowTheSet) {
  auto plain = default_profile(kDefaultCaps);
  EXPECT_FALSE(rule_allows(plain, "mount"));
  EXPECT_FALSE(rule_allows(plain, "kcmp"));
  EXPECT_FALSE(rule_allows(plain, "settimeofday"));

  auto caps = kDefaultCaps;
  caps.insert(caps.end(), {"CAP_SYS_ADMIN", "CAP_SYS_TIME", "CAP_SYS_PTRACE"});
  auto wide = default_profile(caps);
  for (const char* name : {"mount", "umount2", "unshare", "setns", "clone", "clone3", "settimeofday", "kcmp"})
    EXPECT_TRUE(rule_allows(wide, name)) << name;
  // With CAP_SYS_ADMIN there is no clone restriction and no clone3 ENOSYS rule.
  for (auto& r : wide.syscalls) {
    if (std::count(r.names.begin(), r.names.end(), "clone3")) {
      EXPECT_EQ(r.action, "SCMP_ACT_ALLOW");
    }
  }
  auto program = compiled(wide);
  EXPECT_FALSE(program.instructions.empty());
}

TEST(DefaultSeccompProfile, LoadedFilterDeniesPrivilegedSyscalls) {
  auto program = compiled(default_profile(kDefaultCaps));
  ASSERT_FALSE(program.instructions.empty());
  EXPECT_EQ(run_filtered(program, [] { return denied(::syscall(SYS_mount, "none", "/", "tmpfs", 0, nullptr)); }), 1);
  EXPECT_EQ(run_filtered(program, [] { return denied(::syscall(SYS_kexec_load, 0, 0, nullptr, 0)); }), 1);
  EXPECT_EQ(run_filtered(program, [] { return denied(::syscall(SYS_unshare, 0)); }), 1);
  EXPECT_EQ(run_filtered(program, [] { return denied(::syscall(SYS_reboot, 0, 0, 0, nullptr)); }), 1);
  // Namespace flags on clone are refused by the filter before the kernel sees them.
  EXPECT_EQ(run_filtered(program, [] {
              long rc = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, 0);
              if (rc == 0) _exit(0);
              return denied(rc);
            }),
            1);
  // clone3 says "not implemented" so libc falls back to clone.
  EXPECT_EQ(run_filtered(program, [] {
              clone_args args{};
              args.exit_signal = SIGCHLD;
              long rc = ::syscall(SYS_clone3, &args, sizeof args);
              if (rc == 0) _exit(0);
              return rc == -1 && errno == ENOSYS ? 1 : 0;
            }),
            1);
  EXPECT_EQ(run_filtered(program, [] { return denied(::socket(AF_VSOCK, SOCK_STREAM, 0)); }), 1);
  EXPECT_EQ(run_filtered(program, [] { return denied(::personality(PER_BSD)); }), 1);
}

TEST(DefaultSeccompProfile, LoadedFilterAllowsOrdinaryWork) {
  auto program = compiled(default_profile(kDefaultCaps));
  ASSERT_FALSE(program.instructions.empty());
  // read, write, open, fork (clone without namespace flags), wait.
  EXPECT_EQ(run_filtered(program, [] {
              int fds[2];
              if (::pipe(fds) != 0) return 1;
              if (::write(fds[1], "x", 1) != 1) return 2;
              char c;
              if (::read(fds[0], &c, 1) != 1) return 3;
              int fd = ::open("/proc/self/status", O_RDONLY);
              if (fd < 0) return 4;
              ::close(fd);
              pid_t child = ::fork();
              if (child < 0) return 5;
              if (child == 0) _exit(7);
              int status = 0;
              if (::waitpid(child, &status, 0) != child || WEXITSTATUS(status) != 7) return 6;
              long rc = ::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0);
              if (rc == 0) _exit(0);
              if (rc < 0) return 8;
              ::waitpid(static_cast<pid_t>(rc), nullptr, 0);
              int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
              if (sock < 0) return 9;
              ::close(sock);
              if (::personality(0xffffffff) < 0) return 10;
              return 0;
            }),
            0);
}

TEST(DefaultSeccompProfile, CapSysAdminLetsMountReachTheKernel) {
  auto caps = kDefaultCaps;
  caps.push_back("CAP_SYS_ADMIN");
  auto program = compiled(default_profile(caps));
  ASSERT_FALSE(program.instructions.empty());
  // Whatever the kernel answers (EPERM without the capability), it is not the
  // filter's errno.
  EXPECT_EQ(run_filtered(program, [] { return denied(::syscall(SYS_unshare, 0)); }), 0);
  EXPECT_EQ(run_filtered(program, [] { return denied(::syscall(SYS_mount, "none", "/nonexistent-berth", "tmpfs", 0, nullptr)); }), 0);
}

TEST(DefaultSeccompProfile, NamesListedOncePerRuleAtMost) {
  auto p = default_profile(kDefaultCaps);
  ASSERT_FALSE(p.syscalls.empty());
  auto names = p.syscalls[0].names;
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  EXPECT_THAT(p.syscalls[0].names, Contains("read"));
}

}  // namespace
}  // namespace berth::seccomp

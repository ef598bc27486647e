#include "isolators/seccomp/default_profile.h"

#include <linux/sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <span>
#include <string_view>

#include "common/file_util.h"

namespace berth::seccomp {

namespace {

using Names = std::span<const std::string_view>;

// Everything an ordinary program needs, grouped by area so a reviewer can see what
// each group opens up. Names missing on the native architecture (the *32 and
// *_time64 variants on 64-bit hosts) are harmless: libseccomp maps them per arch.
constexpr std::string_view kFiles[] = {
    "access", "chdir", "chmod", "chown", "chown32", "creat", "faccessat", "faccessat2", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "futimesat", "getcwd", "lchown", "lchown32", "link",
    "linkat", "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at", "open", "openat", "openat2", "readlink",
    "readlinkat", "rename", "renameat", "renameat2", "rmdir", "symlink", "symlinkat", "truncate", "truncate64",
    "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
};

constexpr std::string_view kFileStatus[] = {
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "lstat", "lstat64", "newfstatat", "stat", "stat64",
    "statfs", "statfs64", "statx",
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr", "listxattr", "llistxattr",
    "lremovexattr", "lsetxattr", "removexattr", "setxattr",
};

constexpr std::string_view kDescriptors[] = {
    "_llseek", "cachestat", "close", "close_range", "copy_file_range", "dup", "dup2", "dup3", "fadvise64",
    "fadvise64_64", "fallocate", "fcntl", "fcntl64", "fdatasync", "flock", "fsync", "ftruncate", "ftruncate64",
    "getdents", "getdents64", "ioctl", "lseek", "pipe", "pipe2", "pread64", "preadv", "preadv2", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readv", "sendfile", "sendfile64", "splice", "sync",
    "sync_file_range", "syncfs", "tee", "vmsplice", "write", "writev",
};

constexpr std::string_view kWaiting[] = {
    "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
    "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64",
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup",
};

constexpr std::string_view kMemory[] = {
    "brk", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "remap_file_pages",
};

// ptrace and process_vm_* are safe to allow since Linux 4.8 (seccomp is re-checked
// after a tracer changes a syscall); berth needs a far newer kernel anyway.
constexpr std::string_view kProcesses[] = {
    "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex", "futex_time64", "futex_waitv",
    "get_robust_list", "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getrlimit", "getrusage", "getsid", "gettid", "ioprio_get", "ioprio_set", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64",
    "process_mrelease", "process_vm_readv", "process_vm_writev", "ptrace", "restart_syscall", "rseq",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "set_robust_list",
    "set_thread_area", "set_tid_address", "setpgid", "setpriority", "setrlimit", "setsid", "sysinfo", "ugetrlimit",
    "uname", "vfork", "wait4", "waitid", "waitpid",
};

constexpr std::string_view kIdentity[] = {
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
};

constexpr std::string_view kSignalsAndTime[] = {
    "alarm", "kill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask",
    "sigreturn", "tgkill", "tkill",
    "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer", "gettimeofday", "nanosleep",
    "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
    "timer_settime", "timer_settime64", "times",
};

constexpr std::string_view kIpcAndSockets[] = {
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "setsockopt",
    "shutdown", "socketcall", "socketpair",
};

// Architecture-specific: the filter covers the native ABI and the compat ABIs a
// binary could switch to on this CPU (i386 and x32 code on x86-64).
#if defined(__x86_64__)
constexpr std::string_view kArchitectures[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
constexpr std::string_view kArchSyscalls[] = {"arch_prctl", "modify_ldt"};
constexpr unsigned kCloneFlagsArg = 0;
#elif defined(__i386__)
constexpr std::string_view kArchitectures[] = {"SCMP_ARCH_X86"};
constexpr std::string_view kArchSyscalls[] = {"modify_ldt"};
constexpr unsigned kCloneFlagsArg = 0;
#elif defined(__aarch64__) || defined(__arm__)
#if defined(__aarch64__)
constexpr std::string_view kArchitectures[] = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#else
constexpr std::string_view kArchitectures[] = {"SCMP_ARCH_ARM"};
#endif
constexpr std::string_view kArchSyscalls[] = {"arm_fadvise64_64", "arm_sync_file_range", "breakpoint",
                                              "cacheflush",       "set_tls",             "sync_file_range2"};
constexpr unsigned kCloneFlagsArg = 0;
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
constexpr std::string_view kArchitectures[] = {"SCMP_ARCH_PPC64LE"};
constexpr std::string_view kArchSyscalls[] = {"swapcontext", "sync_file_range2"};
constexpr unsigned kCloneFlagsArg = 0;
#elif defined(__s390x__)
constexpr std::string_view kArchitectures[] = {"SCMP_ARCH_S390X", "SCMP_ARCH_S390"};
constexpr std::string_view kArchSyscalls[] = {"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"};
constexpr unsigned kCloneFlagsArg = 1;  // s390 swaps clone's first two arguments
#elif defined(__riscv) && __riscv_xlen == 64
constexpr std::string_view kArchitectures[] = {"SCMP_ARCH_RISCV64"};
constexpr std::string_view kArchSyscalls[] = {"riscv_flush_icache"};
constexpr unsigned kCloneFlagsArg = 0;
#else
// Unknown CPU: native ABI only (an empty list means exactly that).
constexpr std::array<std::string_view, 0> kArchitectures{};
constexpr std::array<std::string_view, 0> kArchSyscalls{};
constexpr unsigned kCloneFlagsArg = 0;
#endif

// Syscalls gated on a capability: without it the kernel would refuse them anyway,
// so the filter only narrows the attack surface of kernel code nobody may use.
struct CapabilityGate {
  std::string_view capability;
  std::string_view syscalls;  // space-separated
};

constexpr CapabilityGate kGates[] = {
    {"CAP_DAC_READ_SEARCH", "open_by_handle_at"},
    {"CAP_SYS_ADMIN",
     "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount "
     "open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare"},
    {"CAP_SYS_BOOT", "reboot"},
    {"CAP_SYS_CHROOT", "chroot"},
    {"CAP_SYS_MODULE", "delete_module finit_module init_module"},
    {"CAP_SYS_PACCT", "acct"},
    {"CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"},
    {"CAP_SYS_RAWIO", "ioperm iopl"},
    {"CAP_SYS_TIME", "clock_settime clock_settime64 settimeofday stime"},
    {"CAP_SYS_TTY_CONFIG", "vhangup"},
    {"CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"},
    {"CAP_SYSLOG", "syslog"},
    {"CAP_BPF", "bpf"},
    {"CAP_PERFMON", "perf_event_open"},
};

// personality(2) personas a container may switch to: Linux, its 32-bit flavour,
// UNAME26 on either, and the 0xffffffff query that changes nothing.
constexpr uint64_t kPersonalities[] = {0x0, 0x0008, 0x20000, 0x20008, 0xffffffff};

constexpr uint64_t kNamespaceCloneFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                          CLONE_NEWNET | CLONE_NEWCGROUP;

void append(std::vector<std::string>& out, Names names) {
  for (auto n : names) out.emplace_back(n);
}

oci::SyscallRule allow(std::vector<std::string> names) {
  oci::SyscallRule rule;
  rule.names = std::move(names);
  rule.action = "SCMP_ACT_ALLOW";
  return rule;
}

}  // namespace

oci::Seccomp default_profile(const std::vector<std::string>& capabilities) {
  auto has = [&](std::string_view cap) { return std::find(capabilities.begin(), capabilities.end(), cap) != capabilities.end(); };

  oci::Seccomp profile;
  profile.default_action = "SCMP_ACT_ERRNO";
  profile.default_errno_ret = EPERM;
  append(profile.architectures, kArchitectures);

  std::vector<std::string> base;
  for (Names group : {Names(kFiles), Names(kFileStatus), Names(kDescriptors), Names(kWaiting), Names(kMemory),
                      Names(kProcesses), Names(kIdentity), Names(kSignalsAndTime), Names(kIpcAndSockets),
                      Names(kArchSyscalls)})
    append(base, group);
  profile.syscalls.push_back(allow(std::move(base)));

  // Every socket family but vsock, which reaches the hypervisor host.
  oci::SyscallRule socket = allow({"socket"});
  socket.args.push_back({0, AF_VSOCK, 0, "SCMP_CMP_NE"});
  profile.syscalls.push_back(std::move(socket));

  for (uint64_t persona : kPersonalities) {
    oci::SyscallRule rule = allow({"personality"});
    rule.args.push_back({0, persona, 0, "SCMP_CMP_EQ"});
    profile.syscalls.push_back(std::move(rule));
  }

  for (auto& gate : kGates) {
    if (!has(gate.capability)) continue;
    profile.syscalls.push_back(allow(split(gate.syscalls, ' ')));
  }

  if (!has("CAP_SYS_ADMIN")) {
    // Plain fork/thread creation stays allowed; namespace creation does not.
    oci::SyscallRule clone = allow({"clone"});
    clone.args.push_back({kCloneFlagsArg, kNamespaceCloneFlags, 0, "SCMP_CMP_MASKED_EQ"});
    profile.syscalls.push_back(std::move(clone));
    oci::SyscallRule clone3;
    clone3.names = {"clone3"};
    clone3.action = "SCMP_ACT_ERRNO";
    clone3.errno_ret = ENOSYS;
    profile.syscalls.push_back(std::move(clone3));
  }
  return profile;
}

}  // namespace berth::seccomp

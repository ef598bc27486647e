#include "isolators/seccomp/seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "common/unique_fd.h"

namespace berth::seccomp {
namespace {

// The kernel's limit on one classic BPF program (BPF_MAXINSNS).
constexpr size_t kMaxInstructions = 4096;
// Highest syscall argument index: syscalls take at most six arguments.
constexpr uint32_t kMaxArgIndex = 5;
// runtime-spec version of the container process state when the state JSON has none.
constexpr const char* kDefaultOciVersion = "1.1.0";

enum class ActionKind { kKillProcess, kKillThread, kTrap, kErrno, kTrace, kAllow, kLog, kNotify };

struct NamedAction {
  std::string_view name;
  ActionKind kind;
};

constexpr std::array<NamedAction, 9> kActions{{
    {"SCMP_ACT_KILL", ActionKind::kKillThread},
    {"SCMP_ACT_KILL_PROCESS", ActionKind::kKillProcess},
    {"SCMP_ACT_KILL_THREAD", ActionKind::kKillThread},
    {"SCMP_ACT_TRAP", ActionKind::kTrap},
    {"SCMP_ACT_ERRNO", ActionKind::kErrno},
    {"SCMP_ACT_TRACE", ActionKind::kTrace},
    {"SCMP_ACT_ALLOW", ActionKind::kAllow},
    {"SCMP_ACT_LOG", ActionKind::kLog},
    {"SCMP_ACT_NOTIFY", ActionKind::kNotify},
}};

struct NamedOperator {
  std::string_view name;
  scmp_compare op;
};

constexpr std::array<NamedOperator, 7> kOperators{{
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
}};

struct NamedArch {
  std::string_view name;
  uint32_t token;
};

constexpr std::array<NamedArch, 19> kArchitectures{{
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
}};

struct NamedFlag {
  std::string_view name;
  unsigned int bit;
};

// The flags a config may ask for; NEW_LISTENER and TSYNC_ESRCH are berth's to set.
constexpr std::array<NamedFlag, 4> kFlags{{
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
}};

template <typename Table>
auto find_named(const Table& table, std::string_view name) -> const typename Table::value_type* {
  for (auto& entry : table)
    if (entry.name == name) return &entry;
  return nullptr;
}

template <typename Table>
std::vector<std::string> names_of(const Table& table) {
  std::vector<std::string> names;
  for (auto& entry : table) names.emplace_back(entry.name);
  return names;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Resolves an action name plus its optional errno to libseccomp's action value.
// `what` names the place in the config for error messages.
Result<uint32_t> resolve_action(const std::string& name, std::optional<uint32_t> errno_ret,
                                const std::string& what, ActionKind* kind_out) {
  auto* entry = find_named(kActions, name);
  if (!entry) return invalid(what + ": unknown action " + in_quotes(name));
  if (kind_out) *kind_out = entry->kind;
  bool takes_errno = entry->kind == ActionKind::kErrno || entry->kind == ActionKind::kTrace;
  if (errno_ret && !takes_errno)
    return invalid(what + ": errnoRet " + std::to_string(*errno_ret) + " given for action " + name +
                   ", which returns no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)");
  if (errno_ret && *errno_ret > 0xffff)
    return invalid(what + ": errnoRet " + std::to_string(*errno_ret) + " for " + name +
                   " does not fit in 16 bits");
  // Both default to EPERM, as the runtime-spec says and runc does for TRACE too.
  uint32_t ret = errno_ret.value_or(EPERM);
  switch (entry->kind) {
    case ActionKind::kKillProcess: return SCMP_ACT_KILL_PROCESS;
    case ActionKind::kKillThread: return SCMP_ACT_KILL_THREAD;
    case ActionKind::kTrap: return SCMP_ACT_TRAP;
    case ActionKind::kErrno: return SCMP_ACT_ERRNO(ret);
    case ActionKind::kTrace: return SCMP_ACT_TRACE(ret);
    case ActionKind::kAllow: return SCMP_ACT_ALLOW;
    case ActionKind::kLog: return SCMP_ACT_LOG;
    case ActionKind::kNotify: return SCMP_ACT_NOTIFY;
  }
  return invalid(what + ": unknown action " + in_quotes(name));
}

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// libseccomp 2.5 can only export to an fd; read the program back from a memfd.
Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd mem(::memfd_create("berth-seccomp", MFD_CLOEXEC));
  if (!mem) return sys_fail("seccomp: memfd_create");
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc < 0)
    return fail(-rc, std::string("seccomp: export BPF: ") + std::strerror(-rc));
  struct stat st {};
  if (::fstat(mem.get(), &st) < 0) return sys_fail("seccomp: fstat exported BPF");
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0 || size % sizeof(sock_filter) != 0)
    return fail(EIO, "seccomp: exported BPF has odd size " + std::to_string(size));
  std::vector<sock_filter> out(size / sizeof(sock_filter));
  auto* dst = reinterpret_cast<char*>(out.data());
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(mem.get(), dst + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail("seccomp: read exported BPF");
    if (n == 0) return fail(EIO, "seccomp: exported BPF truncated");
    done += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace

Result<Program> compile(const oci::Seccomp& spec, const CompileOptions& options) {
  Program program;

  ActionKind default_kind{};
  uint32_t default_action = BERTH_TRY(resolve_action(spec.default_action, spec.default_errno_ret,
                                                     "seccomp defaultAction", &default_kind));
  if (default_kind == ActionKind::kNotify)
    return invalid("seccomp defaultAction: SCMP_ACT_NOTIFY cannot be the default action");

  for (auto& flag : spec.flags) {
    auto* entry = find_named(kFlags, flag);
    if (!entry) return invalid("seccomp flags: unknown flag " + in_quotes(flag));
    program.flags |= entry->bit;
  }

  if (!spec.listener_metadata.empty() && spec.listener_path.empty())
    return invalid("seccomp: listenerMetadata is set but listenerPath is not");

  Ctx ctx(seccomp_init(default_action));
  if (!ctx) return invalid("seccomp: libseccomp refused default action " + spec.default_action);

  for (auto& arch : spec.architectures) {
    auto* entry = find_named(kArchitectures, arch);
    if (!entry) return invalid("seccomp architectures: unknown architecture " + in_quotes(arch));
    int rc = seccomp_arch_add(ctx.get(), entry->token);
    if (rc == -EDOM)  // one filter holds one byte order
      return invalid("seccomp architectures: " + arch +
                     " cannot share a filter with the native architecture (other byte order)");
    if (rc < 0 && rc != -EEXIST)  // the native arch is already in
      return fail(-rc, "seccomp architectures: add " + arch + ": " + std::strerror(-rc));
  }

  for (size_t i = 0; i < spec.syscalls.size(); ++i) {
    const auto& rule = spec.syscalls[i];
    std::string where = "seccomp syscalls[" + std::to_string(i) + "]";
    if (rule.names.empty()) return invalid(where + ": names must hold at least one syscall");
    ActionKind kind{};
    uint32_t action = BERTH_TRY(resolve_action(rule.action, rule.errno_ret, where, &kind));

    std::vector<scmp_arg_cmp> conditions;
    bool repeated_index = false;
    std::array<int, kMaxArgIndex + 1> per_index{};
    for (auto& arg : rule.args) {
      if (arg.index > kMaxArgIndex)
        return invalid(where + ": arg index " + std::to_string(arg.index) +
                       " is out of range (syscalls have arguments 0-5)");
      auto* op = find_named(kOperators, arg.op);
      if (!op) return invalid(where + ": unknown operator " + in_quotes(arg.op));
      if (++per_index[arg.index] > 1) repeated_index = true;
      // MASKED_EQ: (arg & value) == valueTwo; the other operators ignore valueTwo.
      conditions.push_back(scmp_arg_cmp{arg.index, op->op, arg.value, arg.value_two});
    }

    std::vector<std::pair<int, const std::string*>> numbers;
    for (auto& name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        if (options.skip_unknown_syscalls) {
          program.skipped_syscalls.push_back(name);
          continue;
        }
        return invalid(where + ": unknown syscall " + in_quotes(name) + " (libseccomp " +
                       std::to_string(seccomp_version()->major) + "." +
                       std::to_string(seccomp_version()->minor) + "." +
                       std::to_string(seccomp_version()->micro) + " cannot resolve it)");
      }
      numbers.emplace_back(nr, &name);
    }

    if (kind == ActionKind::kNotify) {
      if (spec.listener_path.empty())
        return invalid(where + ": SCMP_ACT_NOTIFY needs seccomp listenerPath");
      program.wants_listener = true;
    }
    // libseccomp refuses rules that repeat the default action; they change nothing.
    if (action == default_action) continue;

    for (auto& [nr, name] : numbers) {
      auto add = [&](const scmp_arg_cmp* conds, unsigned int count) -> Result<> {
        int rc = seccomp_rule_add_array(ctx.get(), action, nr, count, conds);
        if (rc < 0)
          return fail(-rc, where + ": add rule for " + in_quotes(*name) + " (" + rule.action +
                               "): " + std::strerror(-rc));
        return {};
      };
      if (repeated_index) {
        // As runc: one rule per condition, so conditions on the same argument OR.
        for (auto& cond : conditions) BERTH_TRY_VOID(add(&cond, 1));
      } else {
        BERTH_TRY_VOID(add(conditions.data(), static_cast<unsigned int>(conditions.size())));
      }
    }
  }

  if ((program.flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) && !program.wants_listener)
    return invalid(
        "seccomp flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule");
  if (program.wants_listener) {
    program.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    // The kernel refuses TSYNC with NEW_LISTENER unless told to report ESRCH instead.
    if (program.flags & SECCOMP_FILTER_FLAG_TSYNC) program.flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  }

  program.instructions = BERTH_TRY(export_bpf(ctx.get()));
  if (program.instructions.size() > kMaxInstructions)
    return invalid("seccomp: the profile compiles to " + std::to_string(program.instructions.size()) +
                   " BPF instructions, over the kernel's limit of " +
                   std::to_string(kMaxInstructions));
  return program;
}

int load_raw(const Program& program, int* listener_fd) noexcept {
  if (listener_fd) *listener_fd = -1;
  if (program.instructions.empty() || program.instructions.size() > kMaxInstructions) return EINVAL;
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.instructions.size());
  prog.filter = const_cast<sock_filter*>(program.instructions.data());
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, program.flags, &prog);
  if (rc < 0) return errno;
  if (program.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
    if (listener_fd) {
      *listener_fd = static_cast<int>(rc);
    } else {
      ::close(static_cast<int>(rc));
    }
  } else if (rc > 0) {
    // TSYNC: rc is the id of a thread that could not be synchronised.
    return ESRCH;
  }
  return 0;
}

Result<int> load(const Program& program) {
  int listener = -1;
  int err = load_raw(program, &listener);
  if (err == 0) return listener;
  std::string msg = std::string("seccomp(SECCOMP_SET_MODE_FILTER): ") + std::strerror(err);
  if (err == EACCES) msg += " (needs no_new_privs or CAP_SYS_ADMIN)";
  return fail(err, std::move(msg));
}

Result<std::string> container_process_state(pid_t pid, const std::string& metadata,
                                            const std::string& state_json) {
  nlohmann::json state = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.is_object())
    return invalid("seccomp listener: container state is not a JSON object");
  nlohmann::json msg;
  auto version = state.find("ociVersion");
  msg["ociVersion"] = version != state.end() && version->is_string() ? version->get<std::string>()
                                                                      : kDefaultOciVersion;
  msg["fds"] = nlohmann::json::array({"seccompFd"});
  msg["pid"] = pid;
  if (!metadata.empty()) msg["metadata"] = metadata;
  msg["state"] = std::move(state);
  return msg.dump();
}

Result<> send_listener_fd(const std::string& listener_path, int fd, pid_t pid,
                          const std::string& metadata, const std::string& state_json) {
  std::string what = "seccomp listener " + listener_path;
  if (fd < 0) return invalid(what + ": no listener fd to send");
  if (pid <= 0) return invalid(what + ": bad container pid " + std::to_string(pid));
  std::string payload = BERTH_TRY(container_process_state(pid, metadata, state_json));

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (listener_path.empty() || listener_path.size() >= sizeof(addr.sun_path))
    return invalid(what + ": path is empty or longer than a unix socket path may be");
  std::memcpy(addr.sun_path, listener_path.data(), listener_path.size());

  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return sys_fail(what + ": socket");
  int rc;
  do {
    rc = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return sys_fail(what + ": connect");

  // The fd travels with the first sendmsg only, as the runtime-spec requires.
  size_t sent = 0;
  bool fd_sent = false;
  while (sent < payload.size()) {
    iovec iov{const_cast<char*>(payload.data()) + sent, payload.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (!fd_sent) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(sock.get(), &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail(what + ": sendmsg");
    fd_sent = true;
    sent += static_cast<size_t>(n);
  }
  if (::close(sock.release()) < 0 && errno != EINTR) return sys_fail(what + ": close");
  return {};
}

std::vector<std::string> known_actions() { return names_of(kActions); }
std::vector<std::string> known_operators() { return names_of(kOperators); }
std::vector<std::string> known_architectures() { return names_of(kArchitectures); }
std::vector<std::string> known_flags() { return names_of(kFlags); }

std::vector<std::string> supported_flags() {
  // With a NULL program the kernel checks the flags first: EFAULT means it
  // understood them, EINVAL that it did not. Nothing is installed either way.
  std::vector<std::string> out;
  for (auto& flag : kFlags) {
    unsigned int bits = flag.bit;
    // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
    if (bits == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) bits |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, bits, nullptr);
    if (rc < 0 && errno == EFAULT) out.emplace_back(flag.name);
  }
  return out;
}

}  // namespace berth::seccomp

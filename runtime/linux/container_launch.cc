// Container::create and Container::run: the runtime side of starting a container
// and the container init that runs inside it until exec.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <memory>
#include <optional>

#include "common/file_util.h"
#include "common/log.h"
#include "common/safe_path.h"
#include "isolators/cgroups/cgroups.h"
#include "runtime/linux/console.h"
#include "runtime/linux/container.h"
#include "runtime/linux/foreground.h"
#include "runtime/linux/hooks.h"
#include "runtime/linux/namespaces.h"
#include "runtime/linux/process_plan.h"
#include "runtime/linux/rootfs.h"
#include "runtime/linux/sync_channel.h"
#include "runtime/oci/spec_parser.h"

namespace berth {

namespace {

enum class StartVia { fifo, channel };

// Everything the init child needs, prepared by the parent before clone.
struct InitContext {
  const oci::Spec* spec = nullptr;
  RootfsPlan rootfs;
  ProcessPlan process;
  SyncChannel* chan = nullptr;
  int state_dir_fd = -1;
  int console_fd = -1;
  StartVia start_via = StartVia::fifo;
  std::vector<std::pair<int, int>> joins;  // fd, clone flag, in join order
  int unshare_flags = 0;                   // created after clone (non-direct path)
  bool fork_for_init = false;              // pid or time namespace applies to children only
  bool new_pid_unshare = false;
  bool new_time = false;
  bool new_cgroup = false;
  bool new_user_unshare = false;
  bool new_user = false;
  bool hooks_roundtrip = false;
  bool in_cgroup = false;  // child side: cgroup_joined seen
  // The child joins its v1 cgroups itself (and was born in the unified one).
  bool self_attach = false;
  const cgroups::CgroupManager* cgroup = nullptr;
};

// The parent attaches the child to its cgroups while the child already builds its
// rootfs: the first cgroup.procs write waits out an RCU grace period (milliseconds),
// and nothing in mount setup needs the cgroup. cgroup_joined can therefore arrive
// between any two messages; these two helpers absorb it.
Result<std::string> child_expect(InitContext& ctx, SyncMsg type) {
  for (;;) {
    auto [got, payload] = BERTH_TRY(ctx.chan->receive());
    if (got == SyncMsg::cgroup_joined) {
      ctx.in_cgroup = true;
      if (type == SyncMsg::cgroup_joined) return payload;
      continue;
    }
    if (got == SyncMsg::error) return fail(EIO, payload);
    if (got != type) return fail(EPROTO, std::string("unexpected sync message '") + static_cast<char>(got) + "'");
    return payload;
  }
}

// Everything that forks, unshares the cgroup namespace or lets others see the
// process (hooks, ready) waits until it is in its cgroups.
Result<> child_await_cgroup(InitContext& ctx) {
  if (ctx.in_cgroup) return {};
  BERTH_TRY(child_expect(ctx, SyncMsg::cgroup_joined));
  ctx.in_cgroup = true;
  return {};
}

[[noreturn]] void child_fail(SyncChannel& chan, const Error& err) {
  // The parent reports it; logging here too would print it twice.
  (void)chan.send(SyncMsg::error, err.message);
  _exit(1);
}

#define CHILD_TRY(chan, expr)                   \
  do {                                          \
    auto child_try_result_ = (expr);            \
    if (!child_try_result_) child_fail(chan, child_try_result_.error()); \
  } while (0)

Result<> write_time_offsets(const oci::Spec& spec) {
  std::string text;
  for (auto& [clock, off] : spec.linux->time_offsets)
    text += clock + " " + std::to_string(off.secs) + " " + std::to_string(off.nanosecs) + "\n";
  if (text.empty()) return {};
  return write_existing("/proc/self/timens_offsets", text);
}

// Becomes root of a fresh user namespace once the maps exist, so the mounts and
// mknods that follow are done as the namespace's root.
void become_ns_root() {
  ::setresgid(0, 0, 0);
  ::setresuid(0, 0, 0);
}

[[noreturn]] void container_init(InitContext& ctx) {
  SyncChannel& chan = *ctx.chan;
  ::umask(0);
  CHILD_TRY(chan, child_expect(ctx, SyncMsg::go));
  if (ctx.self_attach) {
    CHILD_TRY(chan, ctx.cgroup->join_v1_as_current_thread());
    ctx.in_cgroup = true;
  }
  if (ctx.new_user && !ctx.new_user_unshare) become_ns_root();
  for (auto& [fd, flag] : ctx.joins)
    if (::setns(fd, flag) != 0) child_fail(chan, Error{errno, std::string("join namespace: ") + std::strerror(errno)});
  if (ctx.unshare_flags && ::unshare(ctx.unshare_flags) != 0)
    child_fail(chan, Error{errno, std::string("unshare namespaces: ") + std::strerror(errno)});
  if (ctx.new_user_unshare) {
    CHILD_TRY(chan, chan.send(SyncMsg::need_id_maps));
    CHILD_TRY(chan, child_expect(ctx, SyncMsg::id_maps_done));
    become_ns_root();
  }
  if (ctx.fork_for_init || ctx.new_cgroup) CHILD_TRY(chan, child_await_cgroup(ctx));
  if (ctx.fork_for_init) {
    if (ctx.new_time) {
      if (::unshare(CLONE_NEWTIME) != 0) child_fail(chan, Error{errno, "unshare time namespace: " + std::string(std::strerror(errno))});
      CHILD_TRY(chan, write_time_offsets(*ctx.spec));
    }
    if (ctx.new_pid_unshare && ::unshare(CLONE_NEWPID) != 0)
      child_fail(chan, Error{errno, "unshare pid namespace: " + std::string(std::strerror(errno))});
    int gate[2];
    if (::pipe2(gate, O_CLOEXEC) != 0) child_fail(chan, Error{errno, "pipe"});
    pid_t init = ::fork();
    if (init < 0) child_fail(chan, Error{errno, "fork container init: " + std::string(std::strerror(errno))});
    if (init > 0) {
      // The parent must learn the init's pid before the init says anything else.
      (void)chan.send(SyncMsg::init_pid, std::to_string(init));
      char ok = 1;
      (void)!::write(gate[1], &ok, 1);
      _exit(0);
    }
    ::close(gate[1]);
    char ok;
    if (::read(gate[0], &ok, 1) != 1) _exit(1);
    ::close(gate[0]);
  }
  if (ctx.new_cgroup && ::unshare(CLONE_NEWCGROUP) != 0)
    child_fail(chan, Error{errno, "unshare cgroup namespace: " + std::string(std::strerror(errno))});

  auto rootfd = mount_rootfs(ctx.rootfs);
  if (!rootfd) child_fail(chan, rootfd.error());
  std::string state_json;
  if (ctx.hooks_roundtrip) {
    CHILD_TRY(chan, child_await_cgroup(ctx));
    CHILD_TRY(chan, chan.send(SyncMsg::run_hooks));
    auto payload = child_expect(ctx, SyncMsg::hooks_done);
    if (!payload) child_fail(chan, payload.error());
    state_json = *payload;
    CHILD_TRY(chan, run_hooks(ctx.spec->hooks.create_container, "createContainer", state_json));
  }
  CHILD_TRY(chan, enter_rootfs(rootfd->get(), ctx.rootfs.no_pivot));
  rootfd->reset();
  if (!ctx.spec->hostname.empty() && ::sethostname(ctx.spec->hostname.data(), ctx.spec->hostname.size()) != 0)
    child_fail(chan, Error{errno, "sethostname: " + std::string(std::strerror(errno))});
  if (!ctx.spec->domainname.empty() &&
      ::setdomainname(ctx.spec->domainname.data(), ctx.spec->domainname.size()) != 0)
    child_fail(chan, Error{errno, "setdomainname: " + std::string(std::strerror(errno))});
  if (ctx.process.terminal) CHILD_TRY(chan, setup_terminal(ctx.console_fd, ctx.process.console_size, true));
  if (ctx.console_fd >= 0) ::close(ctx.console_fd);
  CHILD_TRY(chan, finish_rootfs(ctx.rootfs));
  CHILD_TRY(chan, find_executable(ctx.process));
  CHILD_TRY(chan, child_await_cgroup(ctx));
  if (ctx.process.seccomp && ctx.process.seccomp->wants_listener) {
    auto fd = load_seccomp_early(ctx.process);
    if (!fd) child_fail(chan, fd.error());
    CHILD_TRY(chan, chan.send(SyncMsg::seccomp_fd));
    CHILD_TRY(chan, send_fd(chan.fd(), *fd, "seccomp"));
    ::close(*fd);
  }
  CHILD_TRY(chan, chan.send(SyncMsg::ready));
  auto acked = chan.expect(SyncMsg::ack);
  if (!acked) _exit(1);
  if (ctx.start_via == StartVia::channel) {
    auto started = chan.expect(SyncMsg::start);
    if (!started) _exit(1);
  } else {
    chan.close();
    // Blocks until `berth start` opens the fifo for reading. The write end stays
    // open (close-on-exec) so `berth start` sees the hang-up only once the user
    // process is executed, and runs poststart hooks after it as the spec asks.
    int fifo = ::openat(ctx.state_dir_fd, "exec.fifo", O_WRONLY | O_CLOEXEC);
    if (fifo < 0 || ::write(fifo, "0", 1) != 1) {
      log::error("wait for start: " + std::string(std::strerror(errno)));
      _exit(1);
    }
  }
  ::close(ctx.state_dir_fd);
  if (!ctx.spec->hooks.start_container.empty()) {
    auto r = run_hooks(ctx.spec->hooks.start_container, "startContainer", *acked);
    if (!r) {
      log::error(r.error().message);
      if (ctx.start_via == StartVia::channel) (void)chan.send(SyncMsg::error, r.error().message);
      _exit(1);
    }
  }
  auto r = exec_process(ctx.process);
  log::error(r.error().message);
  if (ctx.start_via == StartVia::channel) (void)chan.send(SyncMsg::error, r.error().message);
  _exit(127);
}

Result<> write_id_maps(pid_t pid, const oci::Linux& l) {
  auto format = [](const std::vector<oci::IdMapping>& maps) {
    std::string out;
    for (auto& m : maps)
      out += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) + "\n";
    return out;
  };
  std::string base = "/proc/" + std::to_string(pid);
  auto uid = write_existing(base + "/uid_map", format(l.uid_mappings));
  if (!uid) return std::unexpected(uid.error().wrap("write uid_map"));
  auto gid = write_existing(base + "/gid_map", format(l.gid_mappings));
  if (!gid) return std::unexpected(gid.error().wrap("write gid_map"));
  return {};
}

void write_oom_score_adj(pid_t pid, int value) {
  auto r = write_existing("/proc/" + std::to_string(pid) + "/oom_score_adj", std::to_string(value));
  if (!r) {
    // Lowering it needs CAP_SYS_RESOURCE, which root lacks on some hosts: degrade
    // like containerd's restrict_oom_score_adj rather than refuse the container.
    log::warn("cannot set oom_score_adj " + std::to_string(value) + " (" + r.error().message + "); keeping the inherited value");
  }
}

std::vector<CgroupView> cgroup_views(const cgroups::CgroupManager& cg) {
  const auto& layout = cg.layout();
  std::vector<CgroupView> views;
  if (layout.mode == cgroups::Mode::v2) {
    views.push_back({"", "cgroup2", "", cg.dir("unified")});
    return views;
  }
  std::map<std::string, std::vector<std::string>> by_mount;
  for (auto& [controller, mountpoint] : layout.v1_mounts) by_mount[mountpoint].push_back(controller);
  for (auto& [mountpoint, controllers] : by_mount) {
    std::string name = mountpoint.substr(mountpoint.rfind('/') + 1);
    std::string options;
    for (auto& c : controllers) {
      if (!options.empty()) options += ",";
      options += c.starts_with("name=") ? "none," + c : c;
    }
    std::string first = controllers.front();
    views.push_back({name, "cgroup", options, cg.dir(first)});
  }
  if (!layout.unified_mount.empty()) {
    std::string name = layout.unified_mount.substr(layout.unified_mount.rfind('/') + 1);
    views.push_back({name, "cgroup2", "", cg.dir("unified")});
  }
  return views;
}

// The device nodes every container gets (and the ones it lists) must stay usable
// whatever the config's device rules deny, as runc and crun arrange.
void add_default_device_rules(const oci::Spec& spec, oci::Resources& resources) {
  if (resources.devices.empty()) return;  // no device rules: the cgroup is left open
  auto allow = [&](const char* type, std::optional<int64_t> major, std::optional<int64_t> minor, const char* access) {
    resources.devices.push_back({true, type, major, minor, access});
  };
  allow("c", std::nullopt, std::nullopt, "m");
  allow("b", std::nullopt, std::nullopt, "m");
  for (auto [major, minor] : {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}})
    allow("c", major, minor, "rwm");
  allow("c", 136, std::nullopt, "rwm");  // /dev/pts/*
  if (!spec.linux) return;
  // A device the spec's own rules already name keeps the access those rules give
  // (CRI devices come with their permissions); the others get full access.
  auto named = [&](const oci::Device& d, const std::string& type) {
    for (auto& rule : spec.linux->resources ? spec.linux->resources->devices : std::vector<oci::DeviceRule>{})
      if (rule.type == type && rule.major == d.major && rule.minor == d.minor) return true;
    return false;
  };
  for (auto& d : spec.linux->devices) {
    if (d.type == "p") continue;
    std::string type = d.type == "b" ? "b" : "c";
    if (!named(d, type)) allow(type.c_str(), d.major, d.minor, "rwm");
  }
}

std::string hook_state(const ContainerState& s, Status status) { return oci_state_json(s, status, false); }

// Undoes a create that failed half-way: kills what was forked, removes the cgroup
// and the state directory. Disarmed once the container is recorded as created.
struct CreateRollback {
  std::string dir;
  std::optional<cgroups::CgroupManager> cgroup;
  std::vector<pid_t> pids;
  bool armed = true;
  ~CreateRollback() {
    if (!armed) return;
    for (pid_t pid : pids) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (cgroup) {
      (void)cgroup->signal_all(SIGKILL);
      for (int i = 0; i < 200; ++i) {
        auto left = cgroup->pids();
        if (!left || left->empty()) break;
        ::usleep(5000);
      }
      auto r = cgroup->destroy();
      if (!r) log::warn("rollback: " + r.error().message);
    }
    if (!dir.empty()) (void)remove_tree(dir);
  }
};

struct Launched {
  Container container;
  SyncChannel chan;
  pid_t pid;
  UniqueFd pidfd;
  UniqueFd console_master;  // foreground run with a terminal
  std::unique_ptr<CreateRollback> rollback;
};

pid_t clone3_with_pidfd(uint64_t flags, int* pidfd, int cgroup_fd) {
  clone_args args{};
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

}  // namespace

// Hands the spec launch() already parsed to the Container it returns.
struct ContainerLaunch {
  static void keep_spec(Container& c, std::shared_ptr<const oci::Spec> spec) { c.spec_ = std::move(spec); }
};

Result<> validate_container_id(const std::string& id) {
  if (id.empty()) return invalid("container id must not be empty");
  if (id == "." || id == ".." || id.size() > 1024) return invalid("invalid container id \"" + id + "\"");
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != '+')
      return invalid("invalid container id \"" + id + "\": use letters, digits, '_', '-', '.', '+'");
  return {};
}

static Result<Launched> launch(const std::string& root, const CreateOptions& opts, StartVia start_via, bool foreground) {
  BERTH_TRY_VOID(validate_container_id(opts.id));
  char resolved[PATH_MAX];
  std::string bundle_in = opts.bundle.empty() ? "." : opts.bundle;
  if (!::realpath(bundle_in.c_str(), resolved)) return sys_fail("bundle " + bundle_in);
  std::string bundle = resolved;
  auto config_text = read_file(bundle + "/config.json");
  if (!config_text) return std::unexpected(config_text.error().wrap("load bundle"));
  auto spec_holder = std::make_shared<const oci::Spec>(BERTH_TRY(oci::parse_spec(*config_text)));
  const oci::Spec& spec = *spec_holder;
  BERTH_TRY_VOID(oci::validate_spec(spec, bundle));

  InitContext ctx;
  ctx.spec = &spec;
  ctx.start_via = start_via;
  ctx.rootfs = BERTH_TRY(plan_rootfs(spec, bundle));
  ctx.rootfs.no_pivot = opts.no_pivot;
  ctx.process = BERTH_TRY(plan_process(*spec.process, spec.linux ? spec.linux->seccomp : std::nullopt));
  ctx.process.preserve_fds = opts.preserve_fds;
  if (ctx.process.terminal && opts.console_socket.empty() && !foreground)
    return invalid("process.terminal is set: --console-socket is required (or run in the foreground)");
  if (!ctx.process.terminal && !opts.console_socket.empty())
    return invalid("--console-socket given but process.terminal is false");

  // Namespaces: which to join, which to create, and how.
  std::vector<UniqueFd> join_fds;
  int new_flags = 0;
  bool any_join = false;
  size_t count = 0;
  const linux_ns::NamespaceKind* kinds = linux_ns::all_kinds(&count);
  for (size_t i = 0; i < count; ++i) {
    const oci::Namespace* ns = spec.find_namespace(kinds[i].oci_type);
    if (!ns) continue;
    if (!linux_ns::kernel_has(kinds[i]))
      return invalid(std::string("namespace ") + kinds[i].oci_type + " is not supported by this kernel");
    if (ns->path.empty()) {
      new_flags |= kinds[i].clone_flag;
      continue;
    }
    UniqueFd fd(::open(ns->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_fail(std::string("open ") + kinds[i].oci_type + " namespace " + ns->path);
    ctx.joins.emplace_back(fd.get(), kinds[i].clone_flag);
    join_fds.push_back(std::move(fd));
    any_join = true;
    if (kinds[i].clone_flag == CLONE_NEWPID || kinds[i].clone_flag == CLONE_NEWTIME) ctx.fork_for_init = true;
  }
  ctx.new_user = new_flags & CLONE_NEWUSER;
  ctx.new_cgroup = new_flags & CLONE_NEWCGROUP;
  bool time_offsets = spec.linux && !spec.linux->time_offsets.empty();
  // Direct: one clone3 creates every namespace and the child is the init. Joining an
  // existing namespace first, or writing time offsets, needs the longer path.
  bool direct = !any_join && !time_offsets;
  uint64_t clone_flags = 0;
  if (direct) {
    clone_flags = static_cast<uint64_t>(new_flags & ~CLONE_NEWCGROUP);
  } else {
    ctx.unshare_flags = new_flags & ~(CLONE_NEWPID | CLONE_NEWTIME | CLONE_NEWCGROUP);
    ctx.new_user_unshare = ctx.new_user;
    ctx.new_pid_unshare = new_flags & CLONE_NEWPID;
    ctx.new_time = new_flags & CLONE_NEWTIME;
    if (ctx.new_pid_unshare || ctx.new_time) ctx.fork_for_init = true;
  }
  const oci::Hooks& hooks = spec.hooks;
  ctx.hooks_roundtrip = !hooks.prestart.empty() || !hooks.create_runtime.empty() || !hooks.create_container.empty();

  auto layout = cgroups::Layout::detect();
  if (!layout) return std::unexpected(layout.error().wrap("detect cgroups"));
  std::string cgroup_path = BERTH_TRY(cgroups::resolve_path(spec.linux ? spec.linux->cgroups_path : "", opts.id));
  oci::Resources resources = spec.linux && spec.linux->resources ? *spec.linux->resources : oci::Resources{};
  add_default_device_rules(spec, resources);
  BERTH_TRY_VOID(cgroups::writes_for(*layout, resources));  // unsupported controllers fail here, before any change

  // From here on, every step is undone by the rollback if a later one fails.
  if (auto r = make_dirs(root, 0700); !r) return std::unexpected(r.error().wrap("create state root"));
  std::string dir = root + "/" + opts.id;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return fail(EEXIST, "container \"" + opts.id + "\" already exists");
    return sys_fail("create state dir " + dir);
  }
  auto rollback = std::make_unique<CreateRollback>();
  rollback->dir = dir;
  ContainerState state;
  state.id = opts.id;
  state.bundle = bundle;
  state.rootfs = ctx.rootfs.rootfs;
  state.created = now_rfc3339();
  state.cgroup_path = cgroup_path;
  state.annotations = spec.annotations;
  BERTH_TRY_VOID(write_file_atomic(dir + "/config.json", *config_text));
  BERTH_TRY_VOID(write_file_atomic(dir + "/state.json", state.to_json()));

  auto cgroup = cgroups::CgroupManager::create(*layout, cgroup_path);
  if (!cgroup) return std::unexpected(cgroup.error().wrap("create cgroup " + cgroup_path));
  rollback->cgroup = std::move(*cgroup);
  if (auto r = rollback->cgroup->apply(resources); !r) return std::unexpected(r.error().wrap("apply resources"));
  ctx.rootfs.cgroups = cgroup_views(*rollback->cgroup);

  if (start_via == StartVia::fifo && ::mkfifo((dir + "/exec.fifo").c_str(), 0600) != 0) return sys_fail("mkfifo exec.fifo");
  UniqueFd state_dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!state_dir_fd) return sys_fail("open " + dir);
  ctx.state_dir_fd = state_dir_fd.get();

  UniqueFd console_theirs, console_ours;
  if (ctx.process.terminal) {
    if (!opts.console_socket.empty()) {
      console_theirs = BERTH_TRY(connect_console_socket(opts.console_socket));
    } else {
      int pair[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return sys_fail("console socketpair");
      console_ours.reset(pair[0]);
      console_theirs.reset(pair[1]);
    }
    ctx.console_fd = console_theirs.get();
  }

  // Fast attach (the usual case): born in the unified cgroup, joins v1 itself. A
  // child in a new user namespace cannot write host cgroup files once it is root
  // there, so that case (and any clone3 refusing CLONE_INTO_CGROUP) takes the
  // parent-side attach.
  ctx.cgroup = &*rollback->cgroup;
  ctx.self_attach = !spec.find_namespace("user");
  UniqueFd unified_fd;
  if (ctx.self_attach) unified_fd = BERTH_TRY(rollback->cgroup->unified_dir_fd());
  auto [ours, theirs] = BERTH_TRY(SyncChannel::make_pair());
  ctx.chan = &theirs;
  int pidfd_raw = -1;
  pid_t child = clone3_with_pidfd(clone_flags, &pidfd_raw, ctx.self_attach ? unified_fd.get() : -1);
  if (child < 0 && ctx.self_attach && unified_fd) {
    ctx.self_attach = false;
    child = clone3_with_pidfd(clone_flags, &pidfd_raw, -1);
  }
  if (child < 0) return sys_fail("clone container init");
  if (child == 0) {
    ours.close();
    container_init(ctx);
  }
  UniqueFd pidfd(pidfd_raw);
  rollback->pids.push_back(child);
  theirs.close();
  console_theirs.reset();

  pid_t init = child;
  if (spec.process->oom_score_adj) write_oom_score_adj(child, *spec.process->oom_score_adj);
  if (direct && ctx.new_user) BERTH_TRY_VOID(write_id_maps(child, *spec.linux));
  // The child works on while we attach it; if it failed meanwhile, its own error
  // message is waiting on the channel and says more than our broken pipe.
  auto child_error_or = [&](const Error& ours_err) -> Error {
    auto msg = ours.receive();
    if (msg && msg->first == SyncMsg::error) return Error{EIO, msg->second};
    return ours_err;
  };
  if (auto r = ours.send(SyncMsg::go); !r) return std::unexpected(child_error_or(r.error()));
  if (!ctx.self_attach) {
    if (auto r = rollback->cgroup->add_process(child); !r)
      return std::unexpected(child_error_or(r.error().wrap("join cgroup")));
    if (auto r = ours.send(SyncMsg::cgroup_joined); !r) return std::unexpected(child_error_or(r.error()));
  }

  for (bool ready = false; !ready;) {
    auto msg = ours.receive();
    if (!msg) return std::unexpected(msg.error().wrap("container init"));
    auto& [type, payload] = *msg;
    switch (type) {
      case SyncMsg::need_id_maps:
        BERTH_TRY_VOID(write_id_maps(child, *spec.linux));
        BERTH_TRY_VOID(ours.send(SyncMsg::id_maps_done));
        break;
      case SyncMsg::init_pid: {
        init = std::stoi(payload);
        rollback->pids.insert(rollback->pids.begin(), init);
        int status = 0;
        ::waitpid(child, &status, 0);
        std::erase(rollback->pids, child);
        pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, init, 0)));
        if (!pidfd) return sys_fail("pidfd_open container init");
        break;
      }
      case SyncMsg::run_hooks: {
        state.pid = init;
        std::string json = hook_state(state, Status::creating);
        BERTH_TRY_VOID(run_hooks(hooks.prestart, "prestart", json));
        BERTH_TRY_VOID(run_hooks(hooks.create_runtime, "createRuntime", json));
        BERTH_TRY_VOID(ours.send(SyncMsg::hooks_done, json));
        break;
      }
      case SyncMsg::seccomp_fd: {
        UniqueFd listener = BERTH_TRY(receive_fd(ours.fd()));
        state.pid = init;
        BERTH_TRY_VOID(seccomp::send_listener_fd(spec.linux->seccomp->listener_path, listener.get(), init,
                                                 spec.linux->seccomp->listener_metadata,
                                                 hook_state(state, Status::creating)));
        break;
      }
      case SyncMsg::ready:
        ready = true;
        break;
      case SyncMsg::error:
        return fail(EIO, payload);
      default:
        return fail(EPROTO, "unexpected message from container init");
    }
  }

  state.pid = init;
  state.start_time = process_start_time(init);
  state.created_done = true;
  BERTH_TRY_VOID(write_file_atomic(dir + "/state.json", state.to_json()));
  if (!opts.pid_file.empty()) BERTH_TRY_VOID(write_file_atomic(opts.pid_file, std::to_string(init), 0644));
  BERTH_TRY_VOID(ours.send(SyncMsg::ack, hook_state(state, Status::created)));

  UniqueFd master;
  if (console_ours) master = BERTH_TRY(receive_fd(console_ours.get()));
  rollback->armed = false;
  auto loaded = BERTH_TRY(Container::load(root, opts.id));
  ContainerLaunch::keep_spec(loaded, std::move(spec_holder));
  return Launched{std::move(loaded), std::move(ours), init, std::move(pidfd), std::move(master), std::move(rollback)};
}

Result<Container> Container::create(const std::string& root, const CreateOptions& opts) {
  auto launched = BERTH_TRY(launch(root, opts, StartVia::fifo, false));
  return std::move(launched.container);
}

Result<int> Container::run(const std::string& root, const CreateOptions& opts, const RunOptions& run) {
  if (!run.detach) {
    // Reparented grandchildren (an init forked for a joined pid namespace) must come
    // back to us so we can collect the exit status.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    block_relayed_signals();
  }
  auto launched = BERTH_TRY(launch(root, opts, StartVia::channel, !run.detach));
  Container& c = launched.container;
  auto spec = BERTH_TRY(c.spec());  // the one launch parsed: no second read
  BERTH_TRY_VOID(launched.chan.send(SyncMsg::start));
  // The init's end closes on exec (EOF); an error message means it never ran.
  auto after = launched.chan.receive();
  if (after && after->first == SyncMsg::error) {
    (void)c.remove(true);
    return fail(EIO, after->second);
  }
  launched.chan.close();
  auto poststart = run_hooks(spec->hooks.poststart, "poststart", oci_state_json(c.state(), c.status(), false));
  if (!poststart) log::warn(poststart.error().message);
  if (run.detach) return 0;
  auto code = supervise(launched.pid, launched.pidfd.get(), launched.console_master.get());
  if (!run.keep) {
    auto removed = c.remove(true);
    if (!removed) log::warn("delete after run: " + removed.error().message);
  }
  return code;
}

}  // namespace berth

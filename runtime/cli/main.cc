// `berth`: a runc-compatible OCI runtime command line over the Linux launcher.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/file_util.h"
#include "common/log.h"
#include "runtime/cli/cli_values.h"
#include "runtime/cli/features.h"
#include "runtime/linux/container.h"
#include "runtime/linux/self_seal.h"
#include "runtime/oci/default_spec.h"
#include "runtime/oci/spec_parser.h"

using namespace berth;

namespace {

struct Globals {
  std::string root = "/run/berth/runtime";
  std::string log_path;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  std::string rootless = "auto";
};

int report(const Error& e) {
  log::error(e.message);
  // With --log the error is in the file for the caller (containerd reads it) and on
  // stderr for a person.
  if (log::fd() != STDERR_FILENO) std::fprintf(stderr, "berth: %s\n", e.message.c_str());
  return 1;
}

template <typename T>
int or_report(const Result<T>& r) {
  return r ? 0 : report(r.error());
}

// create, run and exec fork into containers: they must run from a sealed copy.
bool needs_sealed_copy(int argc, char** argv) {
  static const std::set<std::string> with_value = {"--root", "--log", "--log-format", "--criu", "--rootless"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (with_value.contains(a)) {
      ++i;
      continue;
    }
    if (a.starts_with("-")) continue;
    return a == "create" || a == "run" || a == "exec";
  }
  return false;
}

// Fds the caller hands in with --preserve-fds must exist, so none of ours lands
// on a number that is about to lose close-on-exec.
void reserve_preserved_fds(int count) {
  for (int fd = 3; fd < 3 + count; ++fd)
    if (::fcntl(fd, F_GETFD) < 0) ::dup2(::open("/dev/null", O_RDWR), fd);
}

Result<std::string> read_input(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return read_file(path);
}

int cmd_state(const Globals& g, const std::string& id) {
  auto c = Container::load(g.root, id);
  if (!c) return report(c.error());
  std::printf("%s\n", c->state_json().c_str());
  return 0;
}

int cmd_list(const Globals& g, const std::string& format, bool quiet) {
  nlohmann::json all = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
  for (auto& id : Container::list(g.root)) {
    auto c = Container::load(g.root, id);
    if (!c) continue;
    Status s = c->status();
    const auto& st = c->state();
    pid_t pid = s == Status::stopped ? 0 : st.pid;
    if (quiet) {
      std::printf("%s\n", id.c_str());
      continue;
    }
    all.push_back({{"ociVersion", "1.1.0"}, {"id", id}, {"pid", pid}, {"status", status_name(s)}, {"bundle", st.bundle},
                   {"rootfs", st.rootfs}, {"created", st.created}, {"owner", "root"}, {"annotations", st.annotations}});
    rows.push_back({id, std::to_string(pid), status_name(s), st.bundle, st.created, "root"});
  }
  if (quiet) return 0;
  if (format == "json") {
    std::printf("%s\n", all.dump().c_str());
    return 0;
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

int cmd_ps(const Globals& g, const std::string& id, const std::string& format, std::vector<std::string> ps_args) {
  auto c = Container::load(g.root, id);
  if (!c) return report(c.error());
  auto pids = c->pids();
  if (!pids) return report(pids.error());
  if (format == "json") {
    std::printf("%s\n", nlohmann::json(*pids).dump().c_str());
    return 0;
  }
  if (ps_args.empty()) ps_args = {"-ef"};
  std::string cmd = "ps";
  for (auto& a : ps_args) cmd += " '" + a + "'";
  FILE* ps = ::popen(cmd.c_str(), "r");
  if (!ps) return report(Error{errno, "run ps"});
  std::set<pid_t> wanted(pids->begin(), pids->end());
  char buf[4096];
  int pid_column = -1;
  bool header = true;
  while (std::fgets(buf, sizeof buf, ps)) {
    std::string line = buf;
    auto fields = split(line, ' ');
    if (header) {
      for (size_t i = 0; i < fields.size(); ++i)
        if (trim(fields[i]) == "PID") pid_column = static_cast<int>(i);
      std::fputs(buf, stdout);
      header = false;
      if (pid_column < 0) return report(Error{EINVAL, "ps output has no PID column"});
      continue;
    }
    if (static_cast<int>(fields.size()) > pid_column) {
      try {
        if (wanted.contains(std::stoi(fields[static_cast<size_t>(pid_column)]))) std::fputs(buf, stdout);
      } catch (...) {
      }
    }
  }
  int status = ::pclose(ps);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (needs_sealed_copy(argc, argv) && !running_from_sealed_copy()) {
    auto r = reexec_from_sealed_copy(argv);
    std::fprintf(stderr, "berth: %s\n", r.error().message.c_str());
    return 1;
  }

  CLI::App app{"berth: an OCI container runtime (runc-compatible command line)", "berth"};
  app.require_subcommand(1);
  app.set_version_flag("-v,--version", "berth version 0.1.0\nspec: 1.1.0");
  Globals g;
  app.add_option("--root", g.root, "directory for container state");
  app.add_option("--log", g.log_path, "log file (default stderr)");
  app.add_option("--log-format", g.log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "debug logging");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup, "accepted for compatibility; cgroupfs is always used");
  app.add_option("--rootless", g.rootless, "accepted for compatibility");

  CreateOptions create;
  RunOptions run;
  auto add_create_flags = [&](CLI::App* sub) {
    sub->add_option("-b,--bundle", create.bundle, "bundle directory (default: current directory)");
    sub->add_option("--console-socket", create.console_socket, "unix socket that receives the pty master");
    sub->add_option("--pid-file", create.pid_file, "file to write the container's pid to");
    sub->add_flag("--no-pivot", create.no_pivot, "chroot instead of pivot_root (ramdisk roots)");
    sub->add_flag("--no-new-keyring")->description("accepted for compatibility; no keyring is created");
    sub->add_option("--preserve-fds", create.preserve_fds, "pass fds 3..3+N-1 to the container");
    sub->add_option("id", create.id, "container id")->required();
  };
  auto* c_create = app.add_subcommand("create", "create a container, leaving it ready to start");
  add_create_flags(c_create);
  auto* c_run = app.add_subcommand("run", "create and start a container");
  add_create_flags(c_run);
  c_run->add_flag("-d,--detach", run.detach, "do not wait for the container");
  c_run->add_flag("--keep", run.keep, "keep the container after it exits");

  std::string id;
  auto* c_start = app.add_subcommand("start", "start a created container");
  c_start->add_option("id", id)->required();
  auto* c_state = app.add_subcommand("state", "print a container's state");
  c_state->add_option("id", id)->required();

  bool kill_all = false;
  std::string signal_text = "SIGTERM";
  auto* c_kill = app.add_subcommand("kill", "send a signal to the container's init (default SIGTERM)");
  c_kill->add_flag("-a,--all", kill_all, "signal every process in the container");
  c_kill->add_option("id", id)->required();
  c_kill->add_option("signal", signal_text);

  bool force = false;
  auto* c_delete = app.add_subcommand("delete", "delete a container and everything it holds");
  c_delete->add_flag("-f,--force", force, "kill it first if it still runs");
  c_delete->add_option("id", id)->required();

  std::string format = "table";
  bool quiet = false;
  auto* c_list = app.add_subcommand("list", "list containers");
  c_list->add_option("-f,--format", format)->check(CLI::IsMember({"table", "json"}));
  c_list->add_flag("-q,--quiet", quiet, "ids only");

  auto* c_ps = app.add_subcommand("ps", "list the processes of a container");
  c_ps->add_option("-f,--format", format)->check(CLI::IsMember({"table", "json"}));
  c_ps->add_option("id", id)->required();
  c_ps->prefix_command();

  auto* c_pause = app.add_subcommand("pause", "freeze every process of a container");
  c_pause->add_option("id", id)->required();
  auto* c_resume = app.add_subcommand("resume", "thaw a paused container");
  c_resume->add_option("id", id)->required();

  std::string resources_file, blkio_weight, cpu_period, cpu_quota, cpu_share, cpu_rt_period, cpu_rt_runtime,
      cpuset_cpus, cpuset_mems, memory, memory_reservation, memory_swap, kernel_memory, kernel_memory_tcp, pids_limit;
  auto* c_update = app.add_subcommand("update", "change a container's resource limits");
  c_update->add_option("-r,--resources", resources_file, "linux.resources JSON file ('-' for stdin)");
  c_update->add_option("--blkio-weight", blkio_weight);
  c_update->add_option("--cpu-period", cpu_period);
  c_update->add_option("--cpu-quota", cpu_quota);
  c_update->add_option("--cpu-share", cpu_share);
  c_update->add_option("--cpu-rt-period", cpu_rt_period);
  c_update->add_option("--cpu-rt-runtime", cpu_rt_runtime);
  c_update->add_option("--cpuset-cpus", cpuset_cpus);
  c_update->add_option("--cpuset-mems", cpuset_mems);
  c_update->add_option("--memory", memory);
  c_update->add_option("--memory-reservation", memory_reservation);
  c_update->add_option("--memory-swap", memory_swap);
  c_update->add_option("--kernel-memory", kernel_memory);
  c_update->add_option("--kernel-memory-tcp", kernel_memory_tcp);
  c_update->add_option("--pids-limit", pids_limit);
  c_update->add_option("id", id)->required();

  ExecOptions exec;
  std::string process_file, exec_cwd, exec_user, process_label, apparmor;
  std::vector<std::string> exec_env, exec_caps;
  std::vector<uint32_t> exec_gids;
  bool exec_tty = false, exec_nnp = false;
  auto* c_exec = app.add_subcommand("exec", "run a new process in a running container");
  c_exec->add_option("--console-socket", exec.console_socket);
  c_exec->add_option("--cwd", exec_cwd);
  c_exec->add_option("-e,--env", exec_env)->allow_extra_args(false);
  c_exec->add_flag("-t,--tty", exec_tty);
  c_exec->add_option("-u,--user", exec_user);
  c_exec->add_option("-g,--additional-gids", exec_gids)->allow_extra_args(false);
  c_exec->add_option("-p,--process", process_file, "process JSON file ('-' for stdin)");
  c_exec->add_flag("-d,--detach", exec.detach);
  c_exec->add_option("--pid-file", exec.pid_file);
  c_exec->add_option("--process-label", process_label);
  c_exec->add_option("--apparmor", apparmor);
  c_exec->add_flag("--no-new-privs", exec_nnp);
  c_exec->add_option("-c,--cap", exec_caps)->allow_extra_args(false);
  c_exec->add_option("--preserve-fds", exec.preserve_fds);
  c_exec->add_flag("--ignore-paused")->description("accepted for compatibility");
  c_exec->add_option("id", id)->required();
  c_exec->prefix_command();

  std::string spec_bundle = ".";
  bool spec_rootless = false;
  auto* c_spec = app.add_subcommand("spec", "write a starter config.json");
  c_spec->add_option("-b,--bundle", spec_bundle);
  c_spec->add_flag("--rootless", spec_rootless);

  auto* c_features = app.add_subcommand("features", "print what this runtime supports (JSON)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  log::configure(g.log_path, g.log_format == "json" ? log::Format::json : log::Format::text,
                 g.debug ? log::Level::debug : log::Level::warn);
  if (g.systemd_cgroup) log::warn("--systemd-cgroup: berth manages cgroups through cgroupfs directly");

  if (c_create->parsed() || c_run->parsed()) {
    reserve_preserved_fds(create.preserve_fds);
    if (c_create->parsed()) return or_report(Container::create(g.root, create));
    auto code = Container::run(g.root, create, run);
    if (!code) return report(code.error());
    return *code;
  }
  if (c_start->parsed()) {
    auto c = Container::load(g.root, id);
    return c ? or_report(c->start()) : report(c.error());
  }
  if (c_state->parsed()) return cmd_state(g, id);
  if (c_kill->parsed()) {
    auto sig = cli::parse_signal(signal_text);
    if (!sig) return report(sig.error());
    auto c = Container::load(g.root, id);
    return c ? or_report(c->kill(*sig, kill_all)) : report(c.error());
  }
  if (c_delete->parsed()) {
    auto c = Container::load(g.root, id);
    if (!c) return force && c.error().code == ENOENT ? 0 : report(c.error());
    return or_report(c->remove(force));
  }
  if (c_list->parsed()) return cmd_list(g, format, quiet);
  if (c_ps->parsed()) return cmd_ps(g, id, format, c_ps->remaining());
  if (c_pause->parsed() || c_resume->parsed()) {
    auto c = Container::load(g.root, id);
    if (!c) return report(c.error());
    return or_report(c_pause->parsed() ? c->pause() : c->resume());
  }
  if (c_update->parsed()) {
    auto c = Container::load(g.root, id);
    if (!c) return report(c.error());
    oci::Resources res;
    if (!resources_file.empty()) {
      auto text = read_input(resources_file);
      if (!text) return report(text.error());
      auto parsed = oci::parse_resources(*text);
      if (!parsed) return report(parsed.error());
      res = *parsed;
    }
    auto number = [](const std::string& flag, const std::string& v) -> Result<int64_t> {
      try {
        size_t used = 0;
        int64_t n = std::stoll(v, &used);
        if (used != v.size()) throw std::invalid_argument(v);
        return n;
      } catch (...) {
        return invalid("--" + flag + ": invalid number \"" + v + "\"");
      }
    };
    auto set = [&](const std::string& flag, const std::string& v, auto apply, bool bytes) -> Result<> {
      if (v.empty()) return {};
      auto n = bytes ? cli::parse_bytes(v) : number(flag, v);
      if (!n) return std::unexpected(n.error().wrap("--" + flag));
      apply(*n);
      return {};
    };
    auto mem = [&]() -> oci::MemoryResources& {
      if (!res.memory) res.memory.emplace();
      return *res.memory;
    };
    auto cpu = [&]() -> oci::CpuResources& {
      if (!res.cpu) res.cpu.emplace();
      return *res.cpu;
    };
    std::vector<Result<>> results = {
        set("blkio-weight", blkio_weight, [&](int64_t n) {
          if (!res.block_io) res.block_io.emplace();
          res.block_io->weight = static_cast<uint16_t>(n);
        }, false),
        set("cpu-period", cpu_period, [&](int64_t n) { cpu().period = static_cast<uint64_t>(n); }, false),
        set("cpu-quota", cpu_quota, [&](int64_t n) { cpu().quota = n; }, false),
        set("cpu-share", cpu_share, [&](int64_t n) { cpu().shares = static_cast<uint64_t>(n); }, false),
        set("cpu-rt-period", cpu_rt_period, [&](int64_t n) { cpu().realtime_period = static_cast<uint64_t>(n); }, false),
        set("cpu-rt-runtime", cpu_rt_runtime, [&](int64_t n) { cpu().realtime_runtime = n; }, false),
        set("memory", memory, [&](int64_t n) { mem().limit = n; }, true),
        set("memory-reservation", memory_reservation, [&](int64_t n) { mem().reservation = n; }, true),
        set("memory-swap", memory_swap, [&](int64_t n) { mem().swap = n; }, true),
        set("kernel-memory", kernel_memory, [&](int64_t n) { mem().kernel = n; }, true),
        set("kernel-memory-tcp", kernel_memory_tcp, [&](int64_t n) { mem().kernel_tcp = n; }, true),
        set("pids-limit", pids_limit, [&](int64_t n) { res.pids_limit = n; }, false),
    };
    for (auto& r : results)
      if (!r) return report(r.error());
    if (!cpuset_cpus.empty()) cpu().cpus = cpuset_cpus;
    if (!cpuset_mems.empty()) cpu().mems = cpuset_mems;
    return or_report(c->update(res));
  }
  if (c_exec->parsed()) {
    reserve_preserved_fds(exec.preserve_fds);
    auto c = Container::load(g.root, id);
    if (!c) return report(c.error());
    auto spec = c->spec();
    if (!spec) return report(spec.error());
    if (!process_file.empty()) {
      auto text = read_input(process_file);
      if (!text) return report(text.error());
      auto p = oci::parse_process(*text);
      if (!p) return report(p.error());
      exec.process = *p;
    } else {
      // As runc: start from the container's own process settings, then apply flags.
      exec.process = *(*spec)->process;
      exec.process.args = c_exec->remaining();
      if (exec.process.args.empty()) return report(Error{EINVAL, "exec: no command given"});
      exec.process.terminal = exec_tty;
      for (auto& e : exec_env) {
        auto key = e.substr(0, e.find('='));
        std::erase_if(exec.process.env, [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
        exec.process.env.push_back(e);
      }
      if (!exec_cwd.empty()) exec.process.cwd = exec_cwd;
      if (!exec_user.empty()) {
        auto user = cli::parse_user(exec_user);
        if (!user) return report(user.error());
        exec.process.user.uid = user->first;
        // "--user 1000" keeps the container's gid, as runc does.
        if (exec_user.find(':') != std::string::npos) exec.process.user.gid = user->second;
      }
      if (!exec_gids.empty()) exec.process.user.additional_gids = exec_gids;
      if (exec_nnp) exec.process.no_new_privileges = true;
      if (!apparmor.empty()) exec.process.apparmor_profile = apparmor;
      if (!process_label.empty()) exec.process.selinux_label = process_label;
      if (!exec_caps.empty()) {
        if (!exec.process.capabilities) exec.process.capabilities.emplace();
        for (auto& cap : exec_caps)
          for (auto* set : {&exec.process.capabilities->bounding, &exec.process.capabilities->effective,
                            &exec.process.capabilities->permitted, &exec.process.capabilities->ambient})
            set->push_back(cap);
      }
    }
    auto code = c->exec(exec);
    if (!code) return report(code.error());
    return *code;
  }
  if (c_spec->parsed()) {
    std::string path = spec_bundle + "/config.json";
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) return report(Error{EEXIST, "File " + path + " exists. Remove it first"});
    std::string text = oci::default_spec_json(spec_rootless, ::getuid(), ::getgid());
    return or_report(write_file_atomic(path, text, 0666 & ~0022));
  }
  if (c_features->parsed()) {
    std::fputs(cli::features_json().c_str(), stdout);
    return 0;
  }
  return 1;
}

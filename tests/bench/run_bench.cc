// berth_bench: how long does `<runtime> run` of a /bin/true container plus
// `<runtime> delete --force` take, and how much memory does the runtime process use,
// for berth against crun, runc and containerd's ctr (where installed)?
//
// Absolute numbers on shared machines mean little (DESIGN.md, Testing): every runtime
// runs in the same process, round-robin per iteration (the starting runtime rotates
// too), so drift hits all of them equally, and the table prints ratios to berth. The
// "floor" row is the same five namespaces made by clone(2) in this process, which then
// chroots into the bundle and execs /bin/true: what no runtime can beat.
//
// Usage (root): berth_bench [--iterations N] [--keep] [path/to/berth]
//
// Only libc and libstdc++ are used, on purpose: the bench must not share code with
// what it measures.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

#include "tests/support/bench_util.h"
#include "tests/support/hugetlb_v1_binding.h"

namespace {

namespace fs = std::filesystem;

#ifndef BERTH_DEFAULT_BINARY
#define BERTH_DEFAULT_BINARY "berth"
#endif

void say(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

using berth::testing::describe;
using berth::testing::exited_ok;
using berth::testing::find_in_path;
using berth::testing::now_ms;
using berth::testing::slurp;
using berth::testing::trim_text;
using berth::testing::write_str;

struct Outcome {
  int status = -1;  // wait status, -1 = could not start
  long maxrss_kib = 0;
  std::string err;  // stderr, kept for the report on failure
};

// Runs argv with stdout to /dev/null and stderr to err_path; wait4 gives the
// process's own peak RSS (which, per wait4's RUSAGE_BOTH semantics, also covers the
// descendants it reaped itself).
Outcome run_cmd(const std::vector<std::string>& argv, const std::string& err_path) {
  Outcome o;
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    o.err = std::string("spawn ") + argv[0] + ": " + std::strerror(rc);
    return o;
  }
  rusage ru{};
  int st = 0;
  while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  o.status = st;
  o.maxrss_kib = ru.ru_maxrss;
  if (!exited_ok(st)) o.err = slurp(err_path).value_or("");
  return o;
}


// wait4's ru_maxrss is the process's lifetime peak, and a child made by posix_spawn
// (vfork) or fork starts with the bench's own high-water mark (~4 MiB here): every
// runtime smaller than the bench would read the same. So a second, untimed measure:
// stop the runtime at exit (ptrace PTRACE_O_TRACEEXIT) and read VmHWM, the peak of
// the memory image it exec'd into. Its children (container init, runc init) are not
// traced.
long exit_hwm_kib(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open("/dev/null", O_RDWR);
    ::dup2(fd, 0), ::dup2(fd, 1), ::dup2(fd, 2);
    ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    ::raise(SIGSTOP);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  long hwm = 0;
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) return 0;
  ::ptrace(PTRACE_SETOPTIONS, pid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC));
  ::ptrace(PTRACE_CONT, pid, nullptr, nullptr);
  while (::waitpid(pid, &st, 0) == pid && WIFSTOPPED(st)) {
    int sig = WSTOPSIG(st);
    int event = st >> 16;
    if (event == PTRACE_EVENT_EXIT) {
      std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status").value_or(""));
      for (std::string line; std::getline(in, line);)
        if (line.starts_with("VmHWM:")) hwm = std::atol(line.c_str() + 6);
    }
    bool forward = event == 0 && sig != SIGTRAP && sig != SIGSTOP;
    ::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(forward ? sig : 0)));
  }
  return hwm;
}

// ---------------------------------------------------------------------------
// The bundle: busybox-static + the runtime's default spec running /bin/true.

std::string make_bundle(const std::string& dir, const std::string& berth) {
  fs::path rootfs = fs::path(dir) / "rootfs";
  for (const char* d : {"bin", "proc", "sys", "dev", "etc", "tmp"}) fs::create_directories(rootfs / d);
  std::error_code ec;
  fs::copy_file("/bin/busybox", rootfs / "bin/busybox", ec);
  if (ec) return "copy /bin/busybox: " + ec.message() + " (install busybox-static)";
  for (const char* applet : {"true", "sh"}) fs::create_symlink("busybox", rootfs / "bin" / applet, ec);
  // `berth spec` writes runc's default config.json; edit the two fields we need.
  std::string err = dir + "/spec.err";
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) _exit(127);
    ::execl(berth.c_str(), berth.c_str(), "spec", static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (!exited_ok(st)) return berth + " spec failed (" + describe(st) + ")";
  auto cfg = slurp(dir + "/config.json");
  if (!cfg) return "no config.json from berth spec";
  auto replace_once = [&](const std::string& what, const std::string& with) {
    auto pos = cfg->find(what);
    if (pos == std::string::npos) return false;
    cfg->replace(pos, what.size(), with);
    return true;
  };
  if (!replace_once("\"terminal\": true", "\"terminal\": false")) return "config.json: no \"terminal\": true";
  auto args = cfg->find("\"args\"");
  auto open = cfg->find('[', args), close = cfg->find(']', args);
  if (args == std::string::npos || open == std::string::npos || close == std::string::npos)
    return "config.json: no process.args";
  cfg->replace(open, close - open + 1, "[\"/bin/true\"]");
  if (!write_str(dir + "/config.json", *cfg)) return "write config.json";
  return "";
}

// ---------------------------------------------------------------------------
// The floor: clone(2) with the same five namespaces, chroot, exec /bin/true.

struct FloorArgs {
  const char* rootfs;
};

int floor_child(void* p) {
  auto* a = static_cast<FloorArgs*>(p);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(120);
  if (::chroot(a->rootfs) != 0 || ::chdir("/") != 0) _exit(121);
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  char* envp[] = {nullptr};
  ::execve("/bin/true", argv, envp);
  _exit(122);
}

Outcome run_floor(const std::string& rootfs) {
  static std::vector<char> stack(256 * 1024);
  FloorArgs args{rootfs.c_str()};
  Outcome o;
  int flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS | SIGCHLD;
  pid_t pid = ::clone(floor_child, stack.data() + stack.size(), flags, &args);
  if (pid < 0) {
    o.err = std::string("clone: ") + std::strerror(errno);
    return o;
  }
  rusage ru{};
  int st = 0;
  while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  o.status = st;
  o.maxrss_kib = ru.ru_maxrss;
  if (!exited_ok(st)) o.err = "floor child " + describe(st);
  return o;
}

// ---------------------------------------------------------------------------

struct Runtime {
  std::string name, path;
  bool ctr = false, floor = false;
  std::string root;
  std::vector<double> ms;
  long peak_rss = 0;
  long exit_hwm = 0;  // max VmHWM at exit of run and delete, untimed pass
  int failures = 0;
  std::string first_error;
};

double percentile(std::vector<double> v, double p) {  // nearest rank
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

bool one_iteration(Runtime& rt, const std::string& bundle, const std::string& tmp, int i) {
  std::string id = "bench-" + rt.name + "-" + std::to_string(::getpid()) + "-" + std::to_string(i);
  std::string err = tmp + "/" + rt.name + ".err";
  double t0 = now_ms();
  Outcome run, del;
  if (rt.floor) {
    run = run_floor(bundle + "/rootfs");
  } else if (rt.ctr) {
    run = run_cmd({rt.path, "-n", "berth-bench", "run", "--rm", "--rootfs", bundle + "/rootfs", id, "/bin/true"}, err);
    del = run_cmd({rt.path, "-n", "berth-bench", "containers", "rm", id}, err);  // --rm did it: may fail
  } else {
    run = run_cmd({rt.path, "--root", rt.root, "run", "--bundle", bundle, id}, err);
    del = run_cmd({rt.path, "--root", rt.root, "delete", "--force", id}, err);
  }
  double elapsed = now_ms() - t0;
  bool ok = exited_ok(run.status) && (rt.floor || rt.ctr || exited_ok(del.status));
  rt.peak_rss = std::max({rt.peak_rss, run.maxrss_kib, del.maxrss_kib});
  if (i < 0) return ok;  // warm-up
  if (ok) {
    rt.ms.push_back(elapsed);
  } else {
    ++rt.failures;
    if (rt.first_error.empty()) {
      rt.first_error = !exited_ok(run.status) ? "run " + describe(run.status) + ": " + trim_text(run.err)
                                              : "delete " + describe(del.status) + ": " + trim_text(del.err);
    }
  }
  return ok;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 100;
  bool keep = false;
  std::string berth = BERTH_DEFAULT_BINARY;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--iterations" || a == "-n") && i + 1 < argc) {
      iterations = std::atoi(argv[++i]);
    } else if (a.starts_with("--iterations=")) {
      iterations = std::atoi(a.c_str() + 13);
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--iterations N] [--keep] [path/to/berth]\n", argv[0]);
      return 0;
    } else {
      berth = a;
    }
  }
  if (iterations <= 0) {
    say("bench: --iterations must be positive");
    return 2;
  }
  if (::geteuid() != 0) {
    say("bench: must run as root (namespaces, cgroups, mounts)");
    return 2;
  }
  if (::access(berth.c_str(), X_OK) != 0) {
    say("bench: berth binary not found at " + berth + " (pass its path)");
    return 2;
  }
  berth = fs::absolute(berth).string();

  char tmpl[] = "/tmp/berth-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    say(std::string("bench: mkdtemp: ") + std::strerror(errno));
    return 1;
  }
  std::string tmp = tmpl;
  std::string bundle = tmp + "/bundle";
  fs::create_directories(bundle);
  if (auto e = make_bundle(bundle, berth); !e.empty()) {
    say("bench: cannot build the bundle: " + e);
    fs::remove_all(tmp);
    return 1;
  }

  std::vector<Runtime> rts;
  rts.push_back({.name = "berth", .path = berth});
  for (const char* name : {"crun", "runc"}) {
    if (auto p = find_in_path(name)) rts.push_back({.name = name, .path = *p});
    else say(std::string("bench: ********** SKIPPING ") + name + ": not installed **********");
  }
  if (auto p = find_in_path("ctr")) {
    Outcome v = run_cmd({*p, "version"}, tmp + "/ctr.err");
    if (exited_ok(v.status)) rts.push_back({.name = "ctr", .path = *p, .ctr = true});
    else say("bench: ********** SKIPPING ctr: installed but containerd does not answer (" + trim_text(v.err) + ") **********");
  } else {
    say("bench: ********** SKIPPING containerd (ctr): not installed **********");
  }
  rts.push_back({.name = "floor", .floor = true});
  for (auto& rt : rts) {
    rt.root = tmp + "/root-" + rt.name;
    fs::create_directories(rt.root);
  }

  berth::testing::HugetlbV1Binding hugetlb;
  bool has_crun = std::any_of(rts.begin(), rts.end(), [](auto& r) { return r.name == "crun"; });
  if (has_crun) {
    if (auto why = hugetlb.bind(); !why.empty()) {
      say("bench: ********** SKIPPING crun: cannot bind hugetlb to a v1 hierarchy: " + why + " **********");
      std::erase_if(rts, [](auto& r) { return r.name == "crun"; });
    } else if (hugetlb.bound()) {
      say(std::string("bench: hugetlb bound to ") + hugetlb.v1_mountpoint() + " for crun (undone at the end)");
    }
  }

  // Warm-up (page cache, first-run setup); a runtime that cannot run at all is dropped.
  for (auto it = rts.begin(); it != rts.end();) {
    if (!one_iteration(*it, bundle, tmp, -1)) {
      Runtime probe = *it;
      one_iteration(probe, bundle, tmp, 0);
      say("bench: ********** SKIPPING " + it->name + ": warm-up run failed: " + probe.first_error + " **********");
      if (it->name == "berth") {
        if (auto left = hugetlb.unbind(); !left.empty()) say("bench: WARNING: " + left);
        if (!keep) fs::remove_all(tmp);
        return 1;
      }
      it = rts.erase(it);
    } else {
      it->peak_rss = 0;
      ++it;
    }
  }

  std::fprintf(stderr, "bench: %d iterations, runtimes:", iterations);
  for (auto& rt : rts) std::fprintf(stderr, " %s", rt.name.c_str());
  std::fprintf(stderr, "\n");
  for (int i = 0; i < iterations; ++i) {
    for (size_t k = 0; k < rts.size(); ++k) one_iteration(rts[(i + k) % rts.size()], bundle, tmp, i);
    if ((i + 1) % 25 == 0) std::fprintf(stderr, "bench: %d/%d\n", i + 1, iterations);
  }

  // Untimed: the runtimes' own peak memory (see exit_hwm_kib), 5 runs each.
  for (auto& rt : rts) {
    if (rt.floor || rt.ctr) continue;
    for (int i = 0; i < 5; ++i) {
      std::string id = "bench-hwm-" + rt.name + "-" + std::to_string(::getpid()) + "-" + std::to_string(i);
      rt.exit_hwm = std::max({rt.exit_hwm, exit_hwm_kib({rt.path, "--root", rt.root, "run", "--bundle", bundle, id}),
                              exit_hwm_kib({rt.path, "--root", rt.root, "delete", "--force", id})});
    }
  }

  if (auto left = hugetlb.unbind(); !left.empty()) say("bench: WARNING: " + left);

  const Runtime& b = rts.front();
  double b_mean = mean(b.ms), b_med = percentile(b.ms, 50), b_p95 = percentile(b.ms, 95);
  std::printf("\nberth_bench: %d sequential `run` of /bin/true + `delete --force`, round-robin\n", iterations);
  std::printf("%-7s %9s %9s %9s %14s %10s %6s   %s\n", "runtime", "mean ms", "median ms", "p95 ms", "peak RSS KiB",
              "VmHWM KiB", "fails", "ratio to berth (mean / median / p95 / RSS / VmHWM)");
  for (const auto& rt : rts) {
    double m = mean(rt.ms), med = percentile(rt.ms, 50), p95 = percentile(rt.ms, 95);
    std::string ratio = rt.name == "berth" ? "-"
                                           : rt.name + "/berth = " + fmt("%.2fx", m / b_mean) + " / " +
                                                 fmt("%.2fx", med / b_med) + " / " + fmt("%.2fx", p95 / b_p95) +
                                                 " / " + fmt("%.2fx", static_cast<double>(rt.peak_rss) / static_cast<double>(b.peak_rss)) +
                                                 (rt.exit_hwm ? " / " + fmt("%.2fx", static_cast<double>(rt.exit_hwm) / static_cast<double>(b.exit_hwm)) : "");
    std::string hwm = rt.exit_hwm ? std::to_string(rt.exit_hwm) : "-";
    std::printf("%-7s %9.2f %9.2f %9.2f %14ld %10s %6d   %s\n", rt.name.c_str(), m, med, p95, rt.peak_rss, hwm.c_str(),
                rt.failures, ratio.c_str());
  }
  std::printf("floor = clone(NEWPID|NEWNET|NEWIPC|NEWUTS|NEWNS) + chroot + exec /bin/true in the bench itself\n");
  std::printf("peak RSS = max ru_maxrss (wait4) of the runtime's run and delete processes; for ctr it is the client only;\n"
              "  it starts at the bench's own high-water mark (vfork), so it is a floor, not the runtime's size\n");
  std::printf("VmHWM = the runtime process's own peak at exit (ptrace exit stop), max over 5 untimed run+delete\n");
  int rc = 0;
  for (const auto& rt : rts) {
    if (rt.failures) {
      std::printf("%s: %d failed iterations; first: %s\n", rt.name.c_str(), rt.failures, rt.first_error.c_str());
      rc = 1;
    }
  }
  if (keep) std::printf("kept %s\n", tmp.c_str());
  else fs::remove_all(tmp);
  return rc;
}

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

namespace {

namespace fs = std::filesystem;

#ifndef BERTH_DEFAULT_BINARY
#define BERTH_DEFAULT_BINARY "berth"
#endif

void say(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool write_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | O_CREAT, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  int saved = errno;
  ::close(fd);
  errno = saved;
  return ok;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(0, 1);
  return s;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::optional<std::string> find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  // root's PATH usually has the sbin dirs; be sure (Debian puts runc in /usr/sbin).
  p += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::istringstream in(p);
  for (std::string dir; std::getline(in, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

double now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Outcome {
  int status = -1;  // wait status, -1 = could not start
  long maxrss_kib = 0;
  std::string err;  // stderr, kept for the report on failure
};

bool exited_ok(int status) { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string describe(int status) {
  if (status < 0) return "not started";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

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
  if (!exited_ok(st)) o.err = read_file(err_path).value_or("");
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
      std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status").value_or(""));
      for (std::string line; std::getline(in, line);)
        if (line.starts_with("VmHWM:")) hwm = std::atol(line.c_str() + 6);
    }
    bool forward = event == 0 && sig != SIGTRAP && sig != SIGSTOP;
    ::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(forward ? sig : 0)));
  }
  return hwm;
}

// ---------------------------------------------------------------------------
// hugetlb rebinding (DESIGN.md, Testing): Debian's crun 1.8 refuses the hybrid
// layout while the v2 hierarchy holds a controller; here v2 holds hugetlb only, so
// hugetlb moves to a v1 hierarchy for the run and back at the end.

constexpr const char* kUnified = "/sys/fs/cgroup/unified";
constexpr const char* kHugetlbV1 = "/sys/fs/cgroup/hugetlb";

bool hugetlb_on_v1() {
  auto mi = read_file("/proc/self/mountinfo");
  if (!mi) return false;
  std::istringstream in(*mi);
  for (std::string line; std::getline(in, line);) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto f = split_ws(line.substr(dash + 3));
    if (f.size() >= 3 && f[0] == "cgroup" && ("," + f[2] + ",").find(",hugetlb,") != std::string::npos) return true;
  }
  return false;
}

// /proc/cgroups: "hugetlb <hierarchy id> <num cgroups, dying ones included> <enabled>".
std::optional<std::vector<long>> hugetlb_row() {
  auto text = read_file("/proc/cgroups");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto f = split_ws(line);
    if (f.size() >= 4 && f[0] == "hugetlb") return std::vector<long>{std::atol(f[1].c_str()), std::atol(f[2].c_str())};
  }
  return std::nullopt;
}
std::optional<long> hugetlb_hierarchy() {
  auto r = hugetlb_row();
  return r ? std::optional<long>((*r)[0]) : std::nullopt;
}
std::optional<long> hugetlb_cgroups() {
  auto r = hugetlb_row();
  return r ? std::optional<long>((*r)[1]) : std::nullopt;
}

bool subtree_has_procs(const fs::path& dir) {
  std::error_code ec;
  if (trim(read_file((dir / "cgroup.procs").string()).value_or("x")) != "") return true;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec) && subtree_has_procs(e.path())) return true;
  return false;
}

// Removes the empty (no process anywhere below) child cgroups of root, deepest first.
void remove_empty_children(const fs::path& root, std::vector<std::string>& log) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    return std::distance(a.begin(), a.end()) > std::distance(b.begin(), b.end());
  });
  for (auto& d : dirs) {
    if (subtree_has_procs(d)) continue;
    if (::rmdir(d.c_str()) == 0) log.push_back("removed leftover cgroup " + d.string());
  }
}

// Why hugetlb cannot leave v2: the v2 cgroups holding processes (their hugetlb css,
// live or dying, pins the controller) and cgroup.stat's dying count.
std::string v2_hugetlb_holders() {
  std::vector<std::string> busy;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(kUnified, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    auto procs = read_file((it->path() / "cgroup.procs").string());
    if (procs && !procs->empty()) busy.push_back(it->path().string());
  }
  std::string dying;
  std::istringstream stat(read_file(std::string(kUnified) + "/cgroup.stat").value_or(""));
  for (std::string l; std::getline(stat, l);)
    if (l.starts_with("nr_dying_subsys_hugetlb ")) dying = l.substr(24);
  std::string out = "v2 cgroups with processes: ";
  for (size_t i = 0; i < busy.size(); ++i) out += (i ? ", " : "") + busy[i];
  if (busy.empty()) out += "none";
  return out + "; dying hugetlb csses: " + (dying.empty() ? "?" : dying);
}

struct HugetlbRebind {
  bool mounted = false, created_dir = false, root_had_hugetlb = false;

  // Returns "" on success (or when nothing is needed), else why it failed.
  std::string bind() {
    if (hugetlb_on_v1()) return "";
    if (!fs::exists(std::string(kUnified) + "/cgroup.controllers")) return "";  // no hybrid v2 hierarchy
    auto ctl = split_ws(read_file(std::string(kUnified) + "/cgroup.controllers").value_or(""));
    if (std::find(ctl.begin(), ctl.end(), "hugetlb") == ctl.end()) return "";
    // A process in a v2 cgroup pins a hugetlb css there: the rebinding would fail
    // after all, and toggling the host's controllers would only disturb whoever owns
    // that cgroup. Leave everything as it is.
    if (auto holders = v2_hugetlb_holders(); holders.find("processes: none;") == std::string::npos)
      return "a v2 cgroup holds processes, so hugetlb cannot leave v2 (" + holders + ")";
    std::vector<std::string> log;
    remove_empty_children(kUnified, log);
    for (auto& l : log) say("bench: " + l);
    auto sc = split_ws(read_file(std::string(kUnified) + "/cgroup.subtree_control").value_or(""));
    root_had_hugetlb = std::find(sc.begin(), sc.end(), "hugetlb") != sc.end();
    if (root_had_hugetlb && !write_file(std::string(kUnified) + "/cgroup.subtree_control", "-hugetlb"))
      return std::string("write -hugetlb to ") + kUnified + "/cgroup.subtree_control: " + std::strerror(errno) +
             " (a v2 cgroup with processes still uses hugetlb?)";
    if (::mkdir(kHugetlbV1, 0755) == 0) created_dir = true;
    else if (errno != EEXIST) return std::string("mkdir ") + kHugetlbV1 + ": " + std::strerror(errno);
    // The v2 css of hugetlb goes away asynchronously after -hugetlb: EBUSY for a while.
    int err = 0;
    for (int i = 0; i < 100; ++i) {
      if (::mount("cgroup", kHugetlbV1, "cgroup", 0, "hugetlb") == 0) {
        mounted = true;
        return "";
      }
      err = errno;
      if (err != EBUSY) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string why = std::string("mount -t cgroup -o hugetlb cgroup ") + kHugetlbV1 + ": " + std::strerror(err) +
                      (err == EBUSY ? " (a v2 cgroup still has hugetlb; " + v2_hugetlb_holders() + ")" : "");
    unbind();
    return why;
  }

  void unbind() {
    // A v1 hierarchy is destroyed at umount only if it has no child cgroup then, dying
    // ones included (they linger a moment after rmdir); otherwise it stays alive,
    // unmounted, and keeps hugetlb from v2. So: remove the children, wait for
    // /proc/cgroups to count the root alone, unmount, and if hugetlb is still bound
    // to a v1 hierarchy, mount it again and retry.
    for (int attempt = 0; mounted && attempt < 5; ++attempt) {
      if (attempt > 0 && ::mount("cgroup", kHugetlbV1, "cgroup", 0, "hugetlb") != 0) break;
      std::vector<std::string> log;
      remove_empty_children(kHugetlbV1, log);
      for (int i = 0; i < 100 && hugetlb_cgroups().value_or(0) > 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      bool ok = false;
      for (int i = 0; i < 40 && !ok; ++i) {
        ok = ::umount2(kHugetlbV1, 0) == 0;
        if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!ok) break;
      for (int i = 0; i < 50 && hugetlb_hierarchy().value_or(0) != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      mounted = hugetlb_hierarchy().value_or(0) != 0;
    }
    if (mounted) {
      say(std::string("bench: WARNING: cannot give hugetlb back to cgroup v2 (") + kHugetlbV1 +
          " keeps child cgroups or is busy); it stays on a v1 hierarchy");
      return;
    }
    if (!mounted && created_dir) {
      ::rmdir(kHugetlbV1);
      created_dir = false;
    }
    if (!mounted && root_had_hugetlb) {
      bool ok = false;
      for (int i = 0; i < 40 && !ok; ++i) {
        ok = write_file(std::string(kUnified) + "/cgroup.subtree_control", "+hugetlb");
        if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!ok) say(std::string("bench: WARNING: cannot re-enable hugetlb in ") + kUnified + "/cgroup.subtree_control");
      root_had_hugetlb = false;
    }
  }
};

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
  auto cfg = read_file(dir + "/config.json");
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
  if (!write_file(dir + "/config.json", *cfg)) return "write config.json";
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
      rt.first_error = !exited_ok(run.status) ? "run " + describe(run.status) + ": " + trim(run.err)
                                              : "delete " + describe(del.status) + ": " + trim(del.err);
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
    else say("bench: ********** SKIPPING ctr: installed but containerd does not answer (" + trim(v.err) + ") **********");
  } else {
    say("bench: ********** SKIPPING containerd (ctr): not installed **********");
  }
  rts.push_back({.name = "floor", .floor = true});
  for (auto& rt : rts) {
    rt.root = tmp + "/root-" + rt.name;
    fs::create_directories(rt.root);
  }

  HugetlbRebind hugetlb;
  bool has_crun = std::any_of(rts.begin(), rts.end(), [](auto& r) { return r.name == "crun"; });
  if (has_crun) {
    if (auto why = hugetlb.bind(); !why.empty()) {
      say("bench: ********** SKIPPING crun: cannot bind hugetlb to a v1 hierarchy: " + why + " **********");
      std::erase_if(rts, [](auto& r) { return r.name == "crun"; });
    } else if (hugetlb.mounted) {
      say(std::string("bench: hugetlb bound to ") + kHugetlbV1 + " for crun (undone at the end)");
    }
  }

  // Warm-up (page cache, first-run setup); a runtime that cannot run at all is dropped.
  for (auto it = rts.begin(); it != rts.end();) {
    if (!one_iteration(*it, bundle, tmp, -1)) {
      Runtime probe = *it;
      one_iteration(probe, bundle, tmp, 0);
      say("bench: ********** SKIPPING " + it->name + ": warm-up run failed: " + probe.first_error + " **********");
      if (it->name == "berth") {
        hugetlb.unbind();
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

  hugetlb.unbind();

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

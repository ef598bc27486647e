// berth_cri_bench: pod start, pod removal and memory of berthd against containerd 1.6
// with runc, both driven over CRI v1 by the same grpc++ client in the same run.
//
// What it sets up, all in one temp dir and all removed at the end:
//   - a docker-registry on 127.0.0.1 with the busybox test image
//     (tests/support/make_test_images.py) and a pause image whose entrypoint is a static
//     pause binary (`berth-shim pause` by default; tests/bench/make_pause_image.py);
//   - one CNI conflist shape (bridge + portmap, host-local IPAM with a private dataDir),
//     written once per runtime with its own bridge name and /24 so they never collide;
//   - berthd with its own root, state, socket, CNI dir and cgroup root;
//   - containerd with a generated config.toml: its own root/state/sockets, the CRI plugin
//     with sandbox_image on the local registry (plain http through a hosts.toml),
//     restrict_oom_score_adj (root has no CAP_SYS_RESOURCE here), overlayfs, runc v2
//     shim with a private runc root.
// A containerd that cannot start is reported and skipped: berth's figures still print.
//
// Pod start = RunPodSandbox + CreateContainer + StartContainer (busybox `sleep 3600`),
// each timed on its own; pod removal = StopPodSandbox + RemovePodSandbox. The runtimes
// alternate (the first one rotates) after one untimed warm-up pod each, so drift on these
// shared machines hits both alike. Images are pulled through CRI PullImage first, untimed.
//
// Memory: idle daemon RSS (after start, Version and the pulls, no pod yet); then, after the
// timed pods, one runtime at a time starts --pods pods with one running container each:
// daemon growth (RSS with the pods minus RSS just before them) + the RSS of every shim
// process (+ containerd's pause processes, shown on their own), divided by the pods. PSS
// (smaps_rollup) is printed beside RSS because RSS counts shared pages once per process;
// the goals are stated on RSS.
//
// Streaming (CRI Exec and ExecSync): one pod per runtime with a sleeper; ExecSync of
// `true` --exec-runs times; the same command through Exec's URL and a streaming client
// (berth-stream-client: moby/spdystream, as kubelet), each timed from the Exec call to
// the end of the session; and 1 GiB of stdout (`dd` of /dev/zero) streamed to the
// client, timed the same way. Both runtimes alternate call by call.
//
// Usage (root): berth_cri_bench [--iterations N] [--pods N] [--berthd PATH]
//                              [--berth-shim PATH] [--berth PATH] [--pause-binary PATH [--pause-arg A]]
//                              [--stream-client PATH] [--exec-runs N] [--stream-mib N] [--only-streaming]
//                              [--containerd PATH] [--no-containerd] [--workdir DIR] [--keep] [--verbose]
//
// Only the CRI stubs (grpc++ and the generated messages) are linked: the bench shares no
// code with what it measures.

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cri/proto/runtime_api.h"  // before the grpc header: hides the signal macros
#include "cri/proto/api.grpc.pb.h"
#include "tests/support/bench_util.h"
#include "tests/support/loopback_port.h"
#include "tests/support/test_files.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = ::runtime::v1;

#ifndef BERTH_SOURCE_DIR
#define BERTH_SOURCE_DIR "."
#endif
#ifndef BERTHD_DEFAULT_BINARY
#define BERTHD_DEFAULT_BINARY "berthd"
#endif
#ifndef BERTH_SHIM_DEFAULT_BINARY
#define BERTH_SHIM_DEFAULT_BINARY "berth-shim"
#endif
#ifndef BERTH_DEFAULT_BINARY
#define BERTH_DEFAULT_BINARY "berth"
#endif

using berth::testing::describe;
using berth::testing::exited_ok;
using berth::testing::find_in_path;
using berth::testing::free_loopback_port;
using berth::testing::lines_of;
using berth::testing::loopback_port_open;
using berth::testing::now_ms;
using berth::testing::slurp;
using berth::testing::trim_text;
using berth::testing::words;
using berth::testing::write_str;

bool g_verbose = false;

void say(const std::string& line) { std::fprintf(stderr, "cri-bench: %s\n", line.c_str()); }

// Any failure unwinds to main, which cleans up.
struct Fatal {
  std::string what;
};

volatile sig_atomic_t g_stop = 0;
volatile pid_t g_foreground = 0;

void on_signal(int) {
  g_stop = 1;
  if (g_foreground > 0) ::kill(g_foreground, SIGKILL);
}

void check_stop() {
  if (g_stop) throw Fatal{"interrupted"};
}

std::string tail_of(const std::string& s, size_t n = 800) { return s.size() <= n ? s : "..." + s.substr(s.size() - n); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// bench_util's spawn, failing the bench when fork does.
pid_t start_process(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
  pid_t pid = berth::testing::spawn(argv, out_path, err_path);
  if (pid < 0) throw Fatal{std::string("fork: ") + std::strerror(errno)};
  return pid;
}

struct Outcome {
  int status = -1;
  double ms = 0;
  std::string err;
};

// interruptible: a pending SIGINT/SIGTERM kills the command (not for cleanup commands).
Outcome run_cmd(const std::vector<std::string>& argv, const std::string& log_prefix, bool interruptible = true) {
  std::string out = log_prefix + ".out", err = log_prefix + ".err";
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  Outcome o;
  double t0 = now_ms();
  pid_t pid = start_process(argv, out, err);
  if (interruptible) g_foreground = pid;
  if (interruptible && g_stop) ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  g_foreground = 0;
  o.ms = now_ms() - t0;
  o.status = st;
  if (!exited_ok(st)) {
    o.err = trim_text(slurp(err).value_or(""));
    if (o.err.empty()) o.err = trim_text(slurp(out).value_or(""));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) o.err = "cannot execute " + argv[0];
  }
  return o;
}

Outcome must(const std::vector<std::string>& argv, const std::string& log_prefix, const std::string& what) {
  Outcome o = run_cmd(argv, log_prefix);
  check_stop();
  if (!exited_ok(o.status)) throw Fatal{what + " failed (" + describe(o.status) + "): " + tail_of(o.err)};
  return o;
}

// A daemon we started: SIGTERM, then SIGKILL after `patience`.
struct Daemon {
  std::string name;
  pid_t pid = -1;
  int exit_status = -1;  // once reaped
  bool alive() {
    if (pid <= 0) return false;
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) pid = -1, exit_status = st;
    return r == 0;
  }
  void stop(int patience_s = 10) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < patience_s * 10; ++i) {
      if (!alive()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    say(name + " did not stop on SIGTERM in " + std::to_string(patience_s) + " s; SIGKILL");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

// Unmounts everything at or under dir, deepest first.
int unmount_under(const std::string& dir) {
  std::vector<std::string> targets;
  for (const auto& line : lines_of(slurp("/proc/self/mountinfo").value_or(""))) {
    auto w = words(line);
    if (w.size() > 4 && (w[4] == dir || w[4].starts_with(dir + "/"))) targets.push_back(w[4]);
  }
  std::sort(targets.begin(), targets.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  int n = 0;
  for (const auto& t : targets)
    if (::umount2(t.c_str(), MNT_DETACH) == 0) ++n;
  return n;
}

// ---------------------------------------------------------------------------
// Processes and their memory.

struct Proc {
  pid_t pid = 0;
  pid_t ppid = 0;
  unsigned long long start = 0;  // starttime from /proc/PID/stat: tells pid reuse apart
  std::string exe;               // readlink /proc/PID/exe ("" if gone or a kernel thread)
  std::vector<std::string> argv;
  long rss_kib = 0;
  long pss_kib = 0;
};

long status_kib(const std::string& status, const char* field) {
  size_t n = std::strlen(field);
  for (const auto& line : lines_of(status))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  return -1;
}

std::optional<Proc> read_proc(pid_t pid) {
  std::string base = "/proc/" + std::to_string(pid);
  auto status = slurp(base + "/status");
  auto stat = slurp(base + "/stat");
  if (!status || !stat) return std::nullopt;
  Proc p;
  p.pid = pid;
  p.ppid = static_cast<pid_t>(status_kib(*status, "PPid"));
  p.rss_kib = std::max(0L, status_kib(*status, "VmRSS"));
  // Fields after the last ')' (comm may hold spaces): state ppid ... starttime is the 20th.
  auto close = stat->rfind(')');
  if (close != std::string::npos) {
    auto f = words(stat->substr(close + 1));
    if (f.size() > 19) p.start = std::strtoull(f[19].c_str(), nullptr, 10);
  }
  char buf[4096];
  ssize_t n = ::readlink((base + "/exe").c_str(), buf, sizeof buf - 1);
  if (n > 0) p.exe.assign(buf, static_cast<size_t>(n));
  std::string cmd = slurp(base + "/cmdline").value_or("");
  for (size_t i = 0; i < cmd.size();) {
    size_t e = cmd.find('\0', i);
    if (e == std::string::npos) e = cmd.size();
    p.argv.push_back(cmd.substr(i, e - i));
    i = e + 1;
  }
  return p;
}

// PSS is only read for the processes that are counted: smaps_rollup walks every mapping.
long read_pss_kib(pid_t pid) {
  auto s = slurp("/proc/" + std::to_string(pid) + "/smaps_rollup");
  return s ? std::max(0L, status_kib(*s, "Pss")) : 0;
}

std::vector<Proc> all_procs() {
  std::vector<Proc> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    if (auto p = read_proc(std::atoi(name.c_str()))) out.push_back(std::move(*p));
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

struct MemFigure {
  long rss_kib = 0, pss_kib = 0;
  int count = 0;
  void add(const Proc& p) {
    rss_kib += p.rss_kib;
    pss_kib += read_pss_kib(p.pid);
    ++count;
  }
};

// The 1, 5 and 15 minute load averages: what else ran on the machine.
std::string loadavg() {
  auto w = words(slurp("/proc/loadavg").value_or(""));
  if (w.size() < 3) return "?";
  return w[0] + " " + w[1] + " " + w[2];
}

double mib(long kib) { return static_cast<double>(kib) / 1024.0; }

// ---------------------------------------------------------------------------
// Statistics.

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest rank.
double p90(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(0.9 * static_cast<double>(v.size())));
  return v[std::max<size_t>(rank, 1) - 1];
}

// ---------------------------------------------------------------------------
// One CRI runtime under test.

const char* const kPhases[] = {"RunPodSandbox", "CreateContainer", "StartContainer", "StopPodSandbox",
                               "RemovePodSandbox"};

struct MemorySnapshot {
  long daemon_rss = 0, daemon_pss = 0;
};

struct Runtime {
  std::string name;  // "berth" or "containerd"
  std::string dir;   // its part of the temp dir
  std::string socket;
  std::string cni_dir, bridge, subnet, log_dir;
  Daemon daemon;
  std::string version;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::RuntimeService::Stub> rt;
  std::unique_ptr<v1::ImageService::Stub> img;
  std::string busybox_ref;  // what CreateContainer names
  std::set<std::string> live_pods;
  std::set<std::string> ever_ids;  // every pod and container id, for the leftover checks
  int pod_counter = 0;

  // Per-phase times of the timed iterations.
  std::map<std::string, std::vector<double>> ms;
  std::vector<double> start_total, removal_total;
  int failures = 0;
  std::string first_error;

  // Memory.
  MemorySnapshot idle, before_pods, with_pods;
  MemFigure shims, pause, other;
  std::vector<std::string> other_cmds;
  int pods_started = 0;
  double pods_start_ms = 0;
  std::vector<double> mem_start_ms;  // pod start (sum) of each pod of the memory phase, in order
  bool mem_done = false;

  // Streaming.
  std::string stream_container;
  std::vector<double> exec_sync_ms, exec_stream_ms, throughput_mib_s;

  void connect() {
    channel = grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials());
    rt = v1::RuntimeService::NewStub(channel);
    img = v1::ImageService::NewStub(channel);
  }
  MemorySnapshot daemon_memory() const {
    MemorySnapshot m;
    if (auto p = read_proc(daemon.pid)) m.daemon_rss = p->rss_kib;
    m.daemon_pss = read_pss_kib(daemon.pid);
    return m;
  }
};

std::unique_ptr<grpc::ClientContext> ctx(int seconds = 60) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return c;
}

std::string status_text(const grpc::Status& s) {
  return "grpc " + std::to_string(static_cast<int>(s.error_code())) + ": " + s.error_message();
}

bool cri_version(Runtime& r, std::string* out, int timeout_s = 2) {
  v1::VersionRequest req;
  v1::VersionResponse resp;
  auto s = r.rt->Version(ctx(timeout_s).get(), req, &resp);
  if (s.ok() && out) *out = resp.runtime_name() + " " + resp.runtime_version() + " (CRI " + resp.runtime_api_version() + ")";
  return s.ok();
}

// Waits until the daemon answers Version and reports RuntimeReady and NetworkReady, as
// kubelet does before it starts pods.
void wait_ready(Runtime& r, const std::string& log_path, int timeout_s = 30) {
  std::string why = "no answer to Version on " + r.socket;
  for (int i = 0; i < timeout_s * 20; ++i) {
    check_stop();
    if (!r.daemon.alive())
      throw Fatal{r.name + " exited at start (" + describe(r.daemon.exit_status) +
                  "): " + tail_of(trim_text(slurp(log_path).value_or("")))};
    if (fs::exists(r.socket) && cri_version(r, &r.version)) {
      v1::StatusRequest req;
      v1::StatusResponse resp;
      auto s = r.rt->Status(ctx(2).get(), req, &resp);
      if (!s.ok()) {
        why = "Status: " + status_text(s);
      } else {
        bool ready = true;
        why.clear();
        for (auto& c : resp.status().conditions())
          if (!c.status()) ready = false, why += c.type() + " false (" + c.reason() + ": " + c.message() + ") ";
        if (ready) return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw Fatal{r.name + " not ready within " + std::to_string(timeout_s) + " s: " + why};
}

void pull(Runtime& r, const std::string& ref) {
  v1::PullImageRequest req;
  req.mutable_image()->set_image(ref);
  v1::PullImageResponse resp;
  double t0 = now_ms();
  auto s = r.img->PullImage(ctx(300).get(), req, &resp);
  check_stop();
  if (!s.ok()) throw Fatal{r.name + ": PullImage " + ref + ": " + status_text(s)};
  say(r.name + ": pulled " + ref + " in " + fmt("%.0f ms", now_ms() - t0) + " (" + resp.image_ref() + ")");
}

// What kubelet sends for a BestEffort pod without volumes, minus the kubelet-only
// annotations: own network, IPC and UTS, the container's own pid namespace,
// seccomp Unconfined (kubelet's default without SeccompDefault).
v1::PodSandboxConfig pod_config(Runtime& r, const std::string& name) {
  v1::PodSandboxConfig c;
  std::string unique = name + "-" + std::to_string(++r.pod_counter);
  c.mutable_metadata()->set_name(unique);
  c.mutable_metadata()->set_namespace_("bench");
  c.mutable_metadata()->set_uid("uid-" + r.name + "-" + unique);
  c.mutable_metadata()->set_attempt(0);
  c.set_hostname(unique);
  c.set_log_directory(r.log_dir + "/" + unique);
  (*c.mutable_labels())["app"] = "cri-bench";
  (*c.mutable_labels())["io.kubernetes.pod.name"] = unique;
  (*c.mutable_labels())["io.kubernetes.pod.namespace"] = "bench";
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_namespace_options()->set_network(v1::POD);
  sc->mutable_namespace_options()->set_pid(v1::CONTAINER);
  sc->mutable_namespace_options()->set_ipc(v1::POD);
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  return c;
}

v1::ContainerConfig container_config(Runtime& r) {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name("sleeper");
  c.mutable_metadata()->set_attempt(0);
  c.mutable_image()->set_image(r.busybox_ref);
  c.add_command("sleep");
  c.add_args("3600");
  c.set_log_path("sleeper/0.log");
  (*c.mutable_labels())["io.kubernetes.container.name"] = "sleeper";
  auto* lx = c.mutable_linux();
  lx->mutable_resources()->set_cpu_shares(2);  // BestEffort
  lx->mutable_resources()->set_oom_score_adj(1000);
  auto* sc = lx->mutable_security_context();
  sc->mutable_namespace_options()->set_network(v1::POD);
  sc->mutable_namespace_options()->set_pid(v1::CONTAINER);
  sc->mutable_namespace_options()->set_ipc(v1::POD);
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  return c;
}

struct PodTimes {
  double run = 0, create = 0, start = 0;
  std::string pod_id, container_id;
  std::string error;
};

// RunPodSandbox + CreateContainer + StartContainer, each timed. On a failure the pod (if
// any) stays in live_pods for removal.
PodTimes start_pod(Runtime& r, const std::string& name) {
  PodTimes t;
  v1::PodSandboxConfig pc = pod_config(r, name);
  // kubelet makes the pod's log directory before RunPodSandbox.
  fs::create_directories(pc.log_directory());
  {
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = pc;
    v1::RunPodSandboxResponse resp;
    double t0 = now_ms();
    auto s = r.rt->RunPodSandbox(ctx().get(), req, &resp);
    t.run = now_ms() - t0;
    if (!s.ok()) return t.error = "RunPodSandbox: " + status_text(s), t;
    t.pod_id = resp.pod_sandbox_id();
    r.live_pods.insert(t.pod_id);
    r.ever_ids.insert(t.pod_id);
  }
  std::string cid;
  {
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(t.pod_id);
    *req.mutable_config() = container_config(r);
    *req.mutable_sandbox_config() = pc;
    v1::CreateContainerResponse resp;
    double t0 = now_ms();
    auto s = r.rt->CreateContainer(ctx().get(), req, &resp);
    t.create = now_ms() - t0;
    if (!s.ok()) return t.error = "CreateContainer: " + status_text(s), t;
    cid = resp.container_id();
    t.container_id = cid;
    r.ever_ids.insert(cid);
  }
  {
    v1::StartContainerRequest req;
    req.set_container_id(cid);
    v1::StartContainerResponse resp;
    double t0 = now_ms();
    auto s = r.rt->StartContainer(ctx().get(), req, &resp);
    t.start = now_ms() - t0;
    if (!s.ok()) return t.error = "StartContainer: " + status_text(s), t;
  }
  return t;
}

struct RemoveTimes {
  double stop = 0, remove = 0;
  std::string error;
};

RemoveTimes remove_pod(Runtime& r, const std::string& id) {
  RemoveTimes t;
  {
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse resp;
    double t0 = now_ms();
    auto s = r.rt->StopPodSandbox(ctx().get(), req, &resp);
    t.stop = now_ms() - t0;
    if (!s.ok()) t.error = "StopPodSandbox: " + status_text(s);
  }
  {
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse resp;
    double t0 = now_ms();
    auto s = r.rt->RemovePodSandbox(ctx().get(), req, &resp);
    t.remove = now_ms() - t0;
    if (!s.ok()) {
      if (t.error.empty()) t.error = "RemovePodSandbox: " + status_text(s);
    } else {
      r.live_pods.erase(id);
    }
  }
  return t;
}

// Removes every pod the daemon lists (ours: each daemon is private to the bench).
void remove_all_pods(Runtime& r) {
  if (!r.rt || !r.daemon.alive()) return;
  v1::ListPodSandboxRequest req;
  v1::ListPodSandboxResponse resp;
  auto s = r.rt->ListPodSandbox(ctx(30).get(), req, &resp);
  std::set<std::string> ids = r.live_pods;
  if (s.ok())
    for (auto& p : resp.items()) ids.insert(p.id());
  else
    say(r.name + ": ListPodSandbox at cleanup: " + status_text(s));
  for (auto& id : ids) {
    auto t = remove_pod(r, id);
    if (!t.error.empty()) say(r.name + ": removing pod " + id + " at cleanup: " + t.error);
  }
}

// ---------------------------------------------------------------------------

// ---- streaming --------------------------------------------------------------

// berth-stream-client bench-exec: URLs in on its stdin, one "done <exit> <stdout bytes>
// <us>" (or "error <message>") line out per URL.
struct StreamClient {
  pid_t pid = -1;
  FILE* in = nullptr;
  FILE* out = nullptr;

  void start(const std::string& binary, const std::string& err_path) {
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) throw Fatal{"pipe"};
    pid = ::fork();
    if (pid < 0) throw Fatal{"fork"};
    if (pid == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl(binary.c_str(), binary.c_str(), "bench-exec", "--ping-ms", "0", "--timeout-sec", "600", nullptr);
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in = ::fdopen(to_child[1], "w");
    out = ::fdopen(from_child[0], "r");
  }
  // The session's exit code and stdout bytes.
  std::pair<int, uint64_t> run(const std::string& url) {
    std::fprintf(in, "%s\n", url.c_str());
    std::fflush(in);
    char line[4096];
    if (!std::fgets(line, sizeof line, out)) throw Fatal{"berth-stream-client ended early (see its log)"};
    int code = -1;
    unsigned long long bytes = 0, us = 0;
    if (std::sscanf(line, "done %d %llu %llu", &code, &bytes, &us) != 3)
      throw Fatal{"berth-stream-client: " + trim_text(line)};
    return {code, bytes};
  }
  ~StreamClient() {
    if (in) std::fclose(in);
    if (out) std::fclose(out);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

double exec_sync_once(Runtime& r, const std::vector<std::string>& cmd) {
  v1::ExecSyncRequest req;
  req.set_container_id(r.stream_container);
  for (auto& c : cmd) req.add_cmd(c);
  req.set_timeout(60);
  v1::ExecSyncResponse resp;
  double t0 = now_ms();
  auto s = r.rt->ExecSync(ctx().get(), req, &resp);
  double t = now_ms() - t0;
  if (!s.ok()) throw Fatal{r.name + ": ExecSync: " + status_text(s)};
  if (resp.exit_code() != 0) throw Fatal{r.name + ": ExecSync exited " + std::to_string(resp.exit_code())};
  return t;
}

// Exec through the URL; returns the milliseconds from the Exec call to the session's end.
double exec_stream_once(Runtime& r, StreamClient& client, const std::vector<std::string>& cmd, uint64_t* bytes) {
  v1::ExecRequest req;
  req.set_container_id(r.stream_container);
  for (auto& c : cmd) req.add_cmd(c);
  req.set_stdout(true);
  req.set_stderr(true);
  v1::ExecResponse resp;
  double t0 = now_ms();
  auto s = r.rt->Exec(ctx().get(), req, &resp);
  if (!s.ok()) throw Fatal{r.name + ": Exec: " + status_text(s)};
  auto [code, got] = client.run(resp.url());
  double t = now_ms() - t0;
  if (code != 0) throw Fatal{r.name + ": streamed exec exited " + std::to_string(code)};
  if (bytes) *bytes = got;
  return t;
}

struct Bench {
  std::string tmp;
  std::string registry_host;
  std::string busybox_ref, pause_ref;
  std::string berthd_bin, shim_bin, berth_bin, pause_bin, pause_arg;
  std::string ip_bin;
  Daemon registry{"docker-registry"};
  Runtime berth, ctd;
  bool have_ctd = false;
  std::string ctd_skip_reason;
  std::string ctd_config_text;
  std::string berth_cgroup_root;
  // Hierarchies where containerd's default cgroup parent (/k8s.io, from its CRI
  // namespace: the pods name no cgroup_parent) did not exist before the bench.
  std::vector<fs::path> ctd_parent_new;
  std::set<std::string> netns_before;
  static std::set<std::string> netns_names() {
    std::set<std::string> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator("/var/run/netns", ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      out.insert(it->path().filename().string());
    return out;
  }
  int iterations = 20, pods = 50;
  int exec_runs = 100, stream_mib = 1024;
  std::string stream_client;

  std::string log(const std::string& what) const { return tmp + "/logs/" + what; }

  // ---- network -------------------------------------------------------------
  // A /24 nobody routes yet, under 10.203.0.0/16.
  std::string free_subnet(std::mt19937& rng, const std::set<std::string>& taken) {
    std::string routes = slurp("/proc/net/route").value_or("");
    for (int tries = 0; tries < 200; ++tries) {
      int n = 10 + static_cast<int>(rng() % 240);
      std::string subnet = "10.203." + std::to_string(n) + ".0/24";
      if (taken.count(subnet)) continue;
      // /proc/net/route lists destinations as little-endian hex: 10.203.n.0 -> 00nnCB0A.
      char hex[16];
      std::snprintf(hex, sizeof hex, "00%02XCB0A", n);
      if (routes.find(hex) != std::string::npos) continue;
      return subnet;
    }
    throw Fatal{"no free /24 under 10.203.0.0/16"};
  }

  void write_cni(Runtime& r) {
    fs::create_directories(r.cni_dir);
    std::string conf = R"({"cniVersion":"1.0.0","name":"berth-bench-)" + r.name + R"(","plugins":[)" +
                       R"({"type":"bridge","bridge":")" + r.bridge +
                       R"(","isGateway":true,"ipMasq":false,"hairpinMode":true,)" +
                       R"("ipam":{"type":"host-local","ranges":[[{"subnet":")" + r.subnet + R"("}]],)" +
                       R"("routes":[{"dst":"0.0.0.0/0"}],"dataDir":")" + r.dir + R"(/ipam"}},)" +
                       R"({"type":"portmap","capabilities":{"portMappings":true}}]})";
    if (!write_str(r.cni_dir + "/10-bench.conflist", conf + "\n")) throw Fatal{"cannot write " + r.cni_dir};
  }

  // ---- registry and images --------------------------------------------------
  void start_registry_and_push() {
    auto registry_bin = find_in_path("docker-registry");
    auto skopeo = find_in_path("skopeo");
    auto python = find_in_path("python3");
    if (!registry_bin) throw Fatal{"docker-registry not installed (apt-get install docker-registry)"};
    if (!skopeo) throw Fatal{"skopeo not installed: it pushes the images to the registry"};
    if (!python) throw Fatal{"python3 not installed: it builds the test images"};
    std::string images = tmp + "/images";
    must({*python, "-B", std::string(BERTH_SOURCE_DIR) + "/tests/support/make_test_images.py", "--busybox",
          "/bin/busybox", "--out", images, "--only", "busybox"},
         log("make-images"), "make_test_images.py");
    std::vector<std::string> pause_cmd = {*python, "-B", std::string(BERTH_SOURCE_DIR) + "/tests/bench/make_pause_image.py",
                                          "--binary", pause_bin, "--out", images + "/pause"};
    if (!pause_arg.empty()) pause_cmd.push_back(pause_arg);
    must(pause_cmd, log("make-pause"), "make_pause_image.py");

    int port = free_loopback_port();
    if (port == 0) throw Fatal{std::string("cannot find a free port: ") + std::strerror(errno)};
    registry_host = "127.0.0.1:" + std::to_string(port);
    busybox_ref = registry_host + "/bench/busybox:latest";
    pause_ref = registry_host + "/bench/pause:latest";
    std::string reg_cfg =
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " + tmp + "/registry\n"
        "http:\n  addr: " + registry_host + "\n";
    if (!write_str(tmp + "/registry.yml", reg_cfg)) throw Fatal{"cannot write the registry config"};
    registry.pid = start_process({*registry_bin, "serve", tmp + "/registry.yml"}, log("registry.out"), log("registry.log"));
    for (int i = 0;; ++i) {
      check_stop();
      if (!registry.alive())
        throw Fatal{"docker-registry exited at start: " + tail_of(trim_text(slurp(log("registry.log")).value_or("")))};
      if (loopback_port_open(port)) break;
      if (i > 100) throw Fatal{"docker-registry does not listen on " + registry_host + " after 10 s"};
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto [layout, ref] : {std::pair{images + "/busybox", busybox_ref}, std::pair{images + "/pause", pause_ref}})
      must({*skopeo, "copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout + ":latest", "docker://" + ref},
           log("push"), "skopeo copy to " + ref);
    say("registry on " + registry_host + " with " + busybox_ref + " and " + pause_ref + " (pause: " + pause_bin +
        (pause_arg.empty() ? "" : " " + pause_arg) + ")");
  }

  // ---- berthd ----------------------------------------------------------------
  void start_berth() {
    Runtime& r = berth;
    std::string none = r.dir + "/berthd.toml";
    if (!write_str(none, "")) throw Fatal{"cannot write " + none};
    r.daemon.name = "berthd";
    r.daemon.pid = start_process({berthd_bin, "--config", none, "--root", r.dir + "/root", "--state", r.dir + "/state",
                          "--socket", r.socket, "--cni-conf-dir", r.cni_dir, "--cni-bin-dir", "/usr/lib/cni",
                          "--cgroup-root", berth_cgroup_root, "--shim-binary", shim_bin, "--runtime-binary",
                          berth_bin, "--insecure-registry", registry_host, "--log-level", "warn"},
                         log("berthd.out"), log("berthd.log"));
    r.connect();
    wait_ready(r, log("berthd.log"));
    say("berthd up: " + r.version);
  }

  // ---- containerd ------------------------------------------------------------
  void start_containerd(const std::string& containerd_bin, const std::string& runc_bin) {
    Runtime& r = ctd;
    const std::string& d = r.dir;
    fs::create_directories(d + "/certs.d/" + registry_host);
    std::string hosts = "server = \"http://" + registry_host + "\"\n\n[host.\"http://" + registry_host +
                        "\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
    if (!write_str(d + "/certs.d/" + registry_host + "/hosts.toml", hosts)) throw Fatal{"cannot write hosts.toml"};
    const std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
    ctd_config_text =
        "version = 2\n"
        "root = \"" + d + "/root\"\n"
        "state = \"" + d + "/state\"\n"
        "# Plugins that need what these machines lack (or that only log): off.\n"
        "disabled_plugins = [\n"
        "  \"io.containerd.snapshotter.v1.aufs\",\n"
        "  \"io.containerd.snapshotter.v1.btrfs\",\n"
        "  \"io.containerd.snapshotter.v1.devmapper\",\n"
        "  \"io.containerd.snapshotter.v1.zfs\",\n"
        "  \"io.containerd.tracing.processor.v1.otlp\",\n"
        "  \"io.containerd.internal.v1.tracing\",\n"
        "]\n\n"
        "[grpc]\n  address = \"" + r.socket + "\"\n\n"
        "[ttrpc]\n  address = \"" + r.socket + ".ttrpc\"\n\n"
        "[debug]\n  address = \"\"\n  level = \"warn\"\n\n"
        "[metrics]\n  address = \"\"\n\n"
        "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"" + d + "/opt\"\n\n" +
        cri + "]\n"
        "  sandbox_image = \"" + pause_ref + "\"\n"
        "  # Root here lacks CAP_SYS_RESOURCE: no negative oom_score_adj for the sandbox.\n"
        "  restrict_oom_score_adj = true\n"
        "  stream_server_address = \"127.0.0.1\"\n"
        "  stream_server_port = \"0\"\n"
        "  enable_selinux = false\n"
        "  disable_apparmor = true\n\n" +
        cri + ".containerd]\n"
        "  snapshotter = \"overlayfs\"\n"
        "  default_runtime_name = \"runc\"\n\n" +
        cri + ".containerd.runtimes.runc]\n"
        "  runtime_type = \"io.containerd.runc.v2\"\n\n" +
        cri + ".containerd.runtimes.runc.options]\n"
        "  BinaryName = \"" + runc_bin + "\"\n"
        "  Root = \"" + d + "/runc\"\n"
        "  SystemdCgroup = false\n\n" +
        cri + ".cni]\n"
        "  bin_dir = \"/usr/lib/cni\"\n"
        "  conf_dir = \"" + r.cni_dir + "\"\n"
        "  max_conf_num = 1\n\n" +
        cri + ".registry]\n"
        "  # hosts.toml there makes " + registry_host + " plain http.\n"
        "  config_path = \"" + d + "/certs.d\"\n";
    if (!write_str(d + "/config.toml", ctd_config_text)) throw Fatal{"cannot write the containerd config"};
    r.daemon.name = "containerd";
    r.daemon.pid = start_process({containerd_bin, "--config", d + "/config.toml"}, log("containerd.out"), log("containerd.log"));
    r.connect();
    wait_ready(r, log("containerd.log"));
    say("containerd up: " + r.version);
  }

  // ---- processes that belong to a runtime's pods -------------------------------
  // berth: berth-shim processes whose command line names our state dir (one per
  // container), and berth-shim `pause` holders (pods sharing a pid namespace) whose
  // parent is a berthd we started or init. containerd: containerd-shim-runc-v2 processes
  // bound to our containerd's address; their children that run /pause are the pause
  // processes. Other descendants of the shims that are not the workload are `other`.
  void classify(Runtime& r, const std::set<std::pair<pid_t, unsigned long long>>& before) {
    r.shims = {}, r.pause = {}, r.other = {};
    r.other_cmds.clear();
    auto procs = all_procs();
    std::map<pid_t, std::vector<const Proc*>> children;
    for (auto& p : procs) children[p.ppid].push_back(&p);
    std::vector<const Proc*> shims;
    for (auto& p : procs) {
      if (before.count({p.pid, p.start})) continue;
      std::string base = fs::path(p.exe).filename().string();
      std::string cmd = joined(p.argv);
      if (r.name == "berth" && (p.exe == shim_bin || base == "berth-shim")) {
        if (p.argv.size() > 1 && p.argv[1] == "pause") {
          if (p.ppid == r.daemon.pid || p.ppid == 1) r.pause.add(p);
        } else if (cmd.find("--state-dir " + r.dir + "/") != std::string::npos) {
          r.shims.add(p);
          shims.push_back(&p);
        }
      } else if (r.name == "containerd" && base == "containerd-shim-runc-v2" &&
                 cmd.find("-address " + r.socket) != std::string::npos) {
        r.shims.add(p);
        shims.push_back(&p);
      }
    }
    // Descendants of the shims.
    std::vector<const Proc*> todo;
    for (auto* s : shims)
      for (auto* c : children[s->pid]) todo.push_back(c);
    while (!todo.empty()) {
      const Proc* p = todo.back();
      todo.pop_back();
      for (auto* c : children[p->pid]) todo.push_back(c);
      std::string cmd = joined(p->argv);
      if (cmd == "sleep 3600") continue;  // the workload
      if (!p->argv.empty() && (p->argv[0] == "/pause")) {
        r.pause.add(*p);
      } else {
        r.other.add(*p);
        if (r.other_cmds.size() < 5) r.other_cmds.push_back(cmd.empty() ? "[" + p->exe + "]" : cmd);
      }
    }
  }

  // One pod per runtime; ExecSync and streamed exec of `true`, alternating call by
  // call; then the large stream, alternating too.
  void streaming_phase(std::vector<Runtime*>& rts) {
    std::vector<std::unique_ptr<StreamClient>> clients;
    for (Runtime* r : rts) {
      PodTimes t = start_pod(*r, "stream");
      if (!t.error.empty()) throw Fatal{r->name + ": streaming pod: " + t.error};
      r->stream_container = t.container_id;
      clients.push_back(std::make_unique<StreamClient>());
      clients.back()->start(stream_client, log("stream-client-" + r->name));
    }
    const std::vector<std::string> true_cmd = {"/bin/true"};
    // Warm-up, untimed.
    for (size_t k = 0; k < rts.size(); ++k) {
      exec_sync_once(*rts[k], true_cmd);
      exec_stream_once(*rts[k], *clients[k], true_cmd, nullptr);
    }
    for (int i = 0; i < exec_runs; ++i)
      for (size_t n = 0; n < rts.size(); ++n) {
        check_stop();
        size_t k = (static_cast<size_t>(i) + n) % rts.size();
        rts[k]->exec_sync_ms.push_back(exec_sync_once(*rts[k], true_cmd));
        rts[k]->exec_stream_ms.push_back(exec_stream_once(*rts[k], *clients[k], true_cmd, nullptr));
      }
    const std::vector<std::string> dd = {"/bin/dd", "if=/dev/zero", "bs=1048576", "count=" + std::to_string(stream_mib)};
    for (int i = 0; i < 3; ++i)
      for (size_t n = 0; n < rts.size(); ++n) {
        check_stop();
        size_t k = (static_cast<size_t>(i) + n) % rts.size();
        uint64_t bytes = 0;
        double ms = exec_stream_once(*rts[k], *clients[k], dd, &bytes);
        if (bytes != static_cast<uint64_t>(stream_mib) << 20)
          throw Fatal{rts[k]->name + ": streamed " + std::to_string(bytes) + " bytes, not " + std::to_string(stream_mib) +
                      " MiB"};
        rts[k]->throughput_mib_s.push_back(stream_mib / (ms / 1000.0));
        say(rts[k]->name + ": " + std::to_string(stream_mib) + " MiB of stdout in " + fmt("%.0f ms", ms));
      }
    for (Runtime* r : rts) remove_all_pods(*r);
  }

  void memory_phase(Runtime& r) {
    say(r.name + ": memory with " + std::to_string(pods) + " pods");
    std::set<std::pair<pid_t, unsigned long long>> before;
    for (auto& p : all_procs()) before.insert({p.pid, p.start});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    r.before_pods = r.daemon_memory();
    double t0 = now_ms();
    for (int i = 0; i < pods; ++i) {
      check_stop();
      PodTimes t = start_pod(r, "mem");
      if (!t.error.empty()) throw Fatal{r.name + ": pod " + std::to_string(i + 1) + " of " + std::to_string(pods) +
                                        " for the memory figures: " + t.error};
      ++r.pods_started;
      r.mem_start_ms.push_back(t.run + t.create + t.start);
    }
    r.pods_start_ms = now_ms() - t0;
    // Let the shims and the daemon settle (first status writes, log writers, GC).
    std::this_thread::sleep_for(std::chrono::seconds(3));
    r.with_pods = r.daemon_memory();
    classify(r, before);
    r.mem_done = true;
    if (g_verbose) {
      say(r.name + ": shims " + std::to_string(r.shims.count) + ", pause " + std::to_string(r.pause.count) + ", other " +
          std::to_string(r.other.count));
      for (auto& c : r.other_cmds) say("  other: " + c);
    }
    if (r.shims.count == 0) say("WARNING: " + r.name + ": no shim process found: the classification is wrong");
    t0 = now_ms();
    for (auto id : std::set<std::string>(r.live_pods)) {
      check_stop();
      auto t = remove_pod(r, id);
      if (!t.error.empty()) say(r.name + ": removing pod " + id + ": " + t.error);
    }
    say(r.name + ": " + std::to_string(pods) + " pods started in " + fmt("%.0f ms", r.pods_start_ms) + ", removed in " +
        fmt("%.0f ms", now_ms() - t0));
  }

  // ---- cleanup -----------------------------------------------------------------
  // Our shims (and their containers) that outlived their daemon.
  void kill_orphans() {
    auto procs = all_procs();
    std::map<pid_t, std::vector<const Proc*>> children;
    for (auto& p : procs) children[p.ppid].push_back(&p);
    std::vector<pid_t> victims;
    for (auto& p : procs) {
      std::string base = fs::path(p.exe).filename().string();
      std::string cmd = joined(p.argv);
      bool ours = (base == "berth-shim" && cmd.find("--state-dir " + berth.dir + "/") != std::string::npos) ||
                  (have_ctd && base == "containerd-shim-runc-v2" && cmd.find("-address " + ctd.socket) != std::string::npos);
      if (!ours) continue;
      std::vector<const Proc*> todo{&p};
      while (!todo.empty()) {
        const Proc* q = todo.back();
        todo.pop_back();
        victims.push_back(q->pid);
        for (auto* c : children[q->pid]) todo.push_back(c);
      }
    }
    if (victims.empty()) return;
    say("killing " + std::to_string(victims.size()) + " leftover shim/container process(es)");
    for (auto it = victims.rbegin(); it != victims.rend(); ++it) ::kill(*it, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }

  void remove_cgroups() {
    // berth's cgroup root in every hierarchy; containerd's runc cgroups are named by
    // container id, and should be gone already.
    std::error_code ec;
    for (auto it = fs::directory_iterator("/sys/fs/cgroup", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::vector<fs::path> dirs;
      fs::path root = it->path() / berth_cgroup_root.substr(1);
      std::error_code e2;
      if (!berth_cgroup_root.empty() && fs::is_directory(root, e2)) {
        for (auto d = fs::recursive_directory_iterator(root, e2); !e2 && d != fs::recursive_directory_iterator();
             d.increment(e2))
          if (d->is_directory(e2)) dirs.push_back(d->path());
        dirs.push_back(root);
      }
      for (auto& id : ctd.ever_ids) {
        for (fs::path p : {it->path() / id, it->path() / "k8s.io" / id})
          if (fs::is_directory(p, e2)) dirs.push_back(p);
      }
      std::sort(dirs.begin(), dirs.end(), [](auto& a, auto& b) { return a.string().size() > b.string().size(); });
      for (auto& d : dirs)
        if (::rmdir(d.c_str()) != 0 && errno != ENOENT) say("WARNING: cannot remove cgroup " + d.string() + ": " + std::strerror(errno));
    }
    // containerd's /k8s.io parent, where we made it and it is empty now (EBUSY: in use).
    for (auto& p : ctd_parent_new) ::rmdir(p.c_str());
  }

  void cleanup(bool keep) {
    for (Runtime* r : {&berth, &ctd}) {
      try {
        remove_all_pods(*r);
      } catch (...) {
      }
    }
    berth.daemon.stop();
    ctd.daemon.stop(20);
    registry.stop();
    kill_orphans();
    for (Runtime* r : {&berth, &ctd})
      if (!r->bridge.empty() && !ip_bin.empty() && fs::exists("/sys/class/net/" + r->bridge))
        if (auto o = run_cmd({ip_bin, "link", "del", r->bridge}, log("ip-del"), false);
            !exited_ok(o.status))
          say("WARNING: cannot delete bridge " + r->bridge + ": " + o.err);
    remove_cgroups();
    // containerd's network namespaces live in /var/run/netns (cni-<uuid>); a removed
    // sandbox takes its own with it. Report new ones (another containerd on the machine
    // may have made them, so they are not removed).
    int new_netns = 0;
    for (auto& n : netns_names())
      if (n.starts_with("cni-") && !netns_before.count(n)) ++new_netns;
    if (new_netns) say("WARNING: " + std::to_string(new_netns) + " new cni-* network namespace(s) in /var/run/netns");
    if (tmp.empty()) return;
    if (int n = unmount_under(tmp)) say("unmounted " + std::to_string(n) + " mount(s) left under " + tmp);
    if (keep) {
      say("kept " + tmp);
    } else {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      if (ec) say("WARNING: cannot remove " + tmp + ": " + ec.message());
    }
  }
};

// ---------------------------------------------------------------------------
// Output.

void print_timing(const Bench& b) {
  const Runtime* be = &b.berth;
  const Runtime* cd = b.have_ctd ? &b.ctd : nullptr;
  std::printf("\nPod start and removal (ms; %d timed pods per runtime, round-robin after one untimed warm-up each)\n",
              b.iterations);
  std::printf("%-20s %11s %9s %15s %9s %18s\n", "phase", "berth med", "p90", "containerd med", "p90",
              "containerd/berth");
  auto row = [&](const std::string& label, const std::vector<double>& bv, const std::vector<double>* cv) {
    double bm = median(bv);
    std::string cmed = "-", cp90 = "-", ratio = "-";
    if (cv && !cv->empty()) {
      cmed = fmt("%.1f", median(*cv));
      cp90 = fmt("%.1f", p90(*cv));
      ratio = fmt("%.2fx", median(*cv) / bm);
    }
    std::printf("%-20s %11.1f %9.1f %15s %9s %18s\n", label.c_str(), bm, p90(bv), cmed.c_str(), cp90.c_str(),
                ratio.c_str());
  };
  for (int i = 0; i < 3; ++i)
    row(kPhases[i], be->ms.at(kPhases[i]), cd ? &cd->ms.at(kPhases[i]) : nullptr);
  row("pod start (sum)", be->start_total, cd ? &cd->start_total : nullptr);
  for (int i = 3; i < 5; ++i)
    row(kPhases[i], be->ms.at(kPhases[i]), cd ? &cd->ms.at(kPhases[i]) : nullptr);
  row("pod removal (sum)", be->removal_total, cd ? &cd->removal_total : nullptr);
  std::printf("(pod start and removal: median and p90 of the per-pod sums, not sums of the phase medians.\n"
              " berth makes the container's namespaces, mounts and init in CreateContainer and only releases it in\n"
              " StartContainer; containerd runs `runc create` and `runc start` both in StartContainer, so compare the\n"
              " sums. StopPodSandbox kills the container (no StopContainer first) in both.)\n");
  if (cd && !cd->start_total.empty() && !be->start_total.empty()) {
    double bm = median(be->start_total), cm = median(cd->start_total);
    std::printf("GOAL pod start <= 1/3 of containerd's: berth %.1f ms vs containerd %.1f ms / 3 = %.1f ms: %s "
                "(berth takes %.0f%% of containerd's time)\n",
                bm, cm, cm / 3, bm <= cm / 3 ? "MET" : "NOT MET", 100 * bm / cm);
  } else {
    std::printf("GOAL pod start <= 1/3 of containerd's: not judged (no containerd figures)\n");
  }
}

void print_streaming(const Bench& b) {
  const Runtime* be = &b.berth;
  const Runtime* cd = b.have_ctd && !b.ctd.exec_sync_ms.empty() ? &b.ctd : nullptr;
  if (be->exec_sync_ms.empty()) return;
  std::printf("\nExec (ms; `true`, %d timed calls per runtime after one warm-up, alternating; streamed: from the Exec\n"
              "call until the streaming client saw the exit status, SPDY/3.1 v4.channel.k8s.io via moby/spdystream)\n",
              b.exec_runs);
  std::printf("%-22s %11s %9s %15s %9s %18s\n", "call", "berth med", "p90", "containerd med", "p90", "containerd/berth");
  auto row = [&](const char* label, const std::vector<double>& bv, const std::vector<double>* cv) {
    std::string cmed = "-", cp90 = "-", ratio = "-";
    if (cv && !cv->empty()) {
      cmed = fmt("%.2f", median(*cv));
      cp90 = fmt("%.2f", p90(*cv));
      ratio = fmt("%.2fx", median(*cv) / median(bv));
    }
    std::printf("%-22s %11.2f %9.2f %15s %9s %18s\n", label, median(bv), p90(bv), cmed.c_str(), cp90.c_str(),
                ratio.c_str());
  };
  row("ExecSync", be->exec_sync_ms, cd ? &cd->exec_sync_ms : nullptr);
  row("Exec + stream", be->exec_stream_ms, cd ? &cd->exec_stream_ms : nullptr);
  double bt = median(be->throughput_mib_s);
  std::printf("stdout throughput (%d MiB, median of 3): berth %.0f MiB/s", b.stream_mib, bt);
  if (cd) std::printf(", containerd %.0f MiB/s: %.2fx", median(cd->throughput_mib_s), bt / median(cd->throughput_mib_s));
  std::printf("\n");
  if (cd) {
    bool sync = median(be->exec_sync_ms) < median(cd->exec_sync_ms);
    bool stream = median(be->exec_stream_ms) < median(cd->exec_stream_ms);
    bool tput = bt > median(cd->throughput_mib_s);
    std::printf("GOAL faster than containerd: ExecSync %s, streamed exec %s, throughput %s\n", sync ? "MET" : "NOT MET",
                stream ? "MET" : "NOT MET", tput ? "MET" : "NOT MET");
  } else {
    std::printf("GOAL faster than containerd: not judged (no containerd figures)\n");
  }
}

void print_memory(const Bench& b) {
  const Runtime& be = b.berth;
  const Runtime* cd = b.have_ctd && b.ctd.mem_done ? &b.ctd : nullptr;
  int pods = b.pods;
  std::printf("\nMemory (MiB; RSS = VmRSS, PSS = smaps_rollup Pss; %d pods, one running busybox container each)\n", pods);
  std::printf("%-34s %9s %9s %15s %9s %18s\n", "", "berth RSS", "PSS", "containerd RSS", "PSS", "containerd/berth RSS");
  auto row = [&](const std::string& label, long brss, long bpss, std::optional<std::pair<long, long>> c) {
    std::string crss = "-", cpss = "-", ratio = "-";
    if (c) {
      crss = fmt("%.2f", mib(c->first));
      cpss = fmt("%.2f", mib(c->second));
      if (brss > 0) ratio = fmt("%.2fx", static_cast<double>(c->first) / static_cast<double>(brss));
    }
    std::printf("%-34s %9.2f %9.2f %15s %9s %18s\n", label.c_str(), mib(brss), mib(bpss), crss.c_str(), cpss.c_str(),
                ratio.c_str());
  };
  auto opt = [&](auto f) -> std::optional<std::pair<long, long>> {
    if (!cd) return std::nullopt;
    return f(*cd);
  };
  row("idle daemon", be.idle.daemon_rss, be.idle.daemon_pss,
      b.have_ctd ? std::optional<std::pair<long, long>>({b.ctd.idle.daemon_rss, b.ctd.idle.daemon_pss}) : std::nullopt);
  if (!be.mem_done) {
    std::printf("(no per-pod figures)\n");
    return;
  }
  row("daemon before the pods", be.before_pods.daemon_rss, be.before_pods.daemon_pss,
      opt([](const Runtime& r) { return std::pair{r.before_pods.daemon_rss, r.before_pods.daemon_pss}; }));
  row("daemon with the pods", be.with_pods.daemon_rss, be.with_pods.daemon_pss,
      opt([](const Runtime& r) { return std::pair{r.with_pods.daemon_rss, r.with_pods.daemon_pss}; }));
  auto growth = [](const Runtime& r) {
    return std::pair{r.with_pods.daemon_rss - r.before_pods.daemon_rss, r.with_pods.daemon_pss - r.before_pods.daemon_pss};
  };
  row("daemon growth", growth(be).first, growth(be).second, opt(growth));
  auto label = [&](const char* what, const MemFigure& bf, const MemFigure* cf) {
    return std::string(what) + " (" + std::to_string(bf.count) + (cf ? " / " + std::to_string(cf->count) : "") + ")";
  };
  row(label("shims, all", be.shims, cd ? &cd->shims : nullptr), be.shims.rss_kib, be.shims.pss_kib,
      opt([](const Runtime& r) { return std::pair{r.shims.rss_kib, r.shims.pss_kib}; }));
  row(label("pause processes", be.pause, cd ? &cd->pause : nullptr), be.pause.rss_kib, be.pause.pss_kib,
      opt([](const Runtime& r) { return std::pair{r.pause.rss_kib, r.pause.pss_kib}; }));
  if (be.other.count || (cd && cd->other.count))
    row(label("other per-pod processes", be.other, cd ? &cd->other : nullptr), be.other.rss_kib, be.other.pss_kib,
        opt([](const Runtime& r) { return std::pair{r.other.rss_kib, r.other.pss_kib}; }));
  auto per_pod = [&](const Runtime& r, bool with_pause) {
    auto g = growth(r);
    long rss = g.first + r.shims.rss_kib + r.other.rss_kib + (with_pause ? r.pause.rss_kib : 0);
    long pss = g.second + r.shims.pss_kib + r.other.pss_kib + (with_pause ? r.pause.pss_kib : 0);
    return std::pair{rss / pods, pss / pods};
  };
  auto bp = per_pod(be, true);
  row("per pod: (growth+shims+pause)/pods", bp.first, bp.second,
      opt([&](const Runtime& r) { return per_pod(r, true); }));
  if (cd) {
    auto bx = per_pod(be, false);
    row("per pod without pause", bx.first, bx.second, opt([&](const Runtime& r) { return per_pod(r, false); }));
  }
  std::printf("per shim (RSS, mean): berth %.2f MiB", be.shims.count ? mib(be.shims.rss_kib / be.shims.count) : 0.0);
  if (cd && cd->shims.count)
    std::printf(", containerd-shim-runc-v2 %.2f MiB (one per pod: it runs the pause and the container)",
                mib(cd->shims.rss_kib / cd->shims.count));
  std::printf("\n");
  std::printf("%d pods started one after another in: berth %.0f ms", pods, be.pods_start_ms);
  if (cd) std::printf(", containerd %.0f ms", cd->pods_start_ms);
  std::printf("\n");
  // Does a pod start get slower with more pods running?
  auto ends = [&](const Runtime& r) {
    size_t k = std::min<size_t>(10, r.mem_start_ms.size() / 2);
    if (k == 0) return std::string("-");
    std::vector<double> first(r.mem_start_ms.begin(), r.mem_start_ms.begin() + static_cast<long>(k));
    std::vector<double> last(r.mem_start_ms.end() - static_cast<long>(k), r.mem_start_ms.end());
    return fmt("%.1f", median(first)) + " -> " + fmt("%.1f", median(last)) + " ms";
  };
  size_t k = std::min<size_t>(10, be.mem_start_ms.size() / 2);
  std::printf("pod start (sum) as the pods pile up, median of the first %zu -> the last %zu: berth %s", k, k,
              ends(be).c_str());
  if (cd) std::printf(", containerd %s", ends(*cd).c_str());
  std::printf("\n");
  std::printf("The goals use RSS. PSS divides each shared page among the processes mapping it, so the shims'\n"
              "PSS is much lower; a daemon's PSS also moves with whatever else maps the same libraries at that\n"
              "moment (other daemons and tests on a shared machine), so its PSS growth is noisy.\n");
  if (b.have_ctd) {
    double ratio = static_cast<double>(be.idle.daemon_rss) / static_cast<double>(b.ctd.idle.daemon_rss);
    std::printf("GOAL idle daemon RSS <= 1/4 of containerd's: berthd %.1f MiB vs containerd %.1f MiB / 4 = %.1f MiB: %s "
                "(berthd is %.0f%% of containerd)\n",
                mib(be.idle.daemon_rss), mib(b.ctd.idle.daemon_rss), mib(b.ctd.idle.daemon_rss) / 4,
                ratio <= 0.25 ? "MET" : "NOT MET", 100 * ratio);
  } else {
    std::printf("GOAL idle daemon RSS <= 1/4 of containerd's: not judged (no containerd figures)\n");
  }
  std::printf("GOAL per-pod overhead < 2 MiB (RSS): berth %.2f MiB: %s", mib(bp.first),
              bp.first < 2048 ? "MET" : "NOT MET");
  if (cd) std::printf(" (containerd: %.2f MiB)", mib(per_pod(*cd, true).first));
  std::printf("\n");
}

int usage(const char* argv0, int rc) {
  std::printf(
      "usage: %s [options]   (as root)\n"
      "  --iterations N     timed pods per runtime (default 20), after one warm-up each\n"
      "  --pods N           pods kept running for the memory figures (default 50)\n"
      "  --berthd PATH      default %s\n"
      "  --berth-shim PATH  default %s\n"
      "  --berth PATH       berth runtime CLI, default %s\n"
      "  --pause-binary P   static binary for containerd's pause image (default: berth-shim, run as `pause`)\n"
      "  --pause-arg A      its argument (default `pause` with berth-shim, none otherwise)\n"
      "  --containerd PATH  containerd to compare with (default: from PATH)\n"
      "  --no-containerd    measure berth alone\n"
      "  --stream-client P  berth-stream-client for the exec figures, default %s\n"
      "  --exec-runs N      timed ExecSync and streamed exec calls per runtime (default 100)\n"
      "  --stream-mib N     stdout streamed for the throughput figure (default 1024)\n"
      "  --only-streaming   skip the pod start and memory phases\n"
      "  --workdir DIR      where the temp dir goes (default /tmp; keep it short: unix socket paths)\n"
      "  --keep             keep the temp dir (logs, configs)\n"
      "  --verbose          say more\n",
      argv0, BERTHD_DEFAULT_BINARY, BERTH_SHIM_DEFAULT_BINARY, BERTH_DEFAULT_BINARY, STREAM_CLIENT_DEFAULT_BINARY);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  bool keep = false, no_ctd = false, only_streaming = false;
  bool pause_arg_given = false;
  std::string workdir = "/tmp", containerd_path;
  b.berthd_bin = BERTHD_DEFAULT_BINARY;
  b.shim_bin = BERTH_SHIM_DEFAULT_BINARY;
  b.berth_bin = BERTH_DEFAULT_BINARY;
  b.stream_client = STREAM_CLIENT_DEFAULT_BINARY;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::optional<std::string> {
      std::string f = flag;
      if (a == f && i + 1 < argc) return std::string(argv[++i]);
      if (a.starts_with(f + "=")) return a.substr(f.size() + 1);
      return std::nullopt;
    };
    if (auto v = value("--iterations")) b.iterations = std::atoi(v->c_str());
    else if (auto v = value("-n")) b.iterations = std::atoi(v->c_str());
    else if (auto v = value("--pods")) b.pods = std::atoi(v->c_str());
    else if (auto v = value("--berthd")) b.berthd_bin = *v;
    else if (auto v = value("--berth-shim")) b.shim_bin = *v;
    else if (auto v = value("--berth")) b.berth_bin = *v;
    else if (auto v = value("--pause-binary")) b.pause_bin = *v;
    else if (auto v = value("--pause-arg")) b.pause_arg = *v, pause_arg_given = true;
    else if (auto v = value("--workdir")) workdir = *v;
    else if (auto v = value("--containerd")) containerd_path = *v;
    else if (auto v = value("--stream-client")) b.stream_client = *v;
    else if (auto v = value("--exec-runs")) b.exec_runs = std::atoi(v->c_str());
    else if (auto v = value("--stream-mib")) b.stream_mib = std::atoi(v->c_str());
    else if (a == "--only-streaming") only_streaming = true;
    else if (a == "--no-containerd") no_ctd = true;
    else if (a == "--keep") keep = true;
    else if (a == "--verbose" || a == "-v") g_verbose = true;
    else if (a == "-h" || a == "--help") return usage(argv[0], 0);
    else {
      say("unknown argument " + a);
      return usage(argv[0], 2);
    }
  }
  if (b.iterations <= 0 || b.pods <= 0 || b.exec_runs <= 0 || b.stream_mib <= 0) {
    say("--iterations, --pods, --exec-runs and --stream-mib must be positive");
    return 2;
  }
  if (::geteuid() != 0) {
    say("must run as root (namespaces, mounts, cgroups, CNI)");
    return 2;
  }
  for (auto* p : {&b.berthd_bin, &b.shim_bin, &b.berth_bin}) {
    if (::access(p->c_str(), X_OK) != 0) {
      say("cannot execute " + *p + " (build berthd, berth-shim and berth, or pass --berthd/--berth-shim/--berth)");
      return 2;
    }
    *p = fs::canonical(*p).string();
  }
  if (b.pause_bin.empty()) {
    b.pause_bin = b.shim_bin;
    if (!pause_arg_given) b.pause_arg = "pause";
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);

  int rc = 0;
  std::string load_before = loadavg();
  try {
    if (::access("/usr/lib/cni/bridge", X_OK) != 0) throw Fatal{"no CNI plugins in /usr/lib/cni (containernetworking-plugins)"};
    if (::access("/bin/busybox", X_OK) != 0) throw Fatal{"no /bin/busybox (busybox-static)"};
    auto ip = find_in_path("ip");
    if (!ip) throw Fatal{"iproute2's ip is not installed"};
    b.ip_bin = *ip;

    char tmpl_buf[4096];
    std::snprintf(tmpl_buf, sizeof tmpl_buf, "%s/crib-XXXXXX", workdir.c_str());
    if (!::mkdtemp(tmpl_buf)) throw Fatal{std::string("mkdtemp in ") + workdir + ": " + std::strerror(errno)};
    b.tmp = fs::absolute(tmpl_buf).string();
    fs::create_directories(b.tmp + "/logs");

    std::mt19937 rng(std::random_device{}());
    std::set<std::string> taken;
    std::string tag = std::to_string(::getpid() % 100000);
    for (Runtime* r : {&b.berth, &b.ctd}) {
      r->name = r == &b.berth ? "berth" : "containerd";
      r->dir = b.tmp + (r == &b.berth ? "/b" : "/c");
      r->socket = r->dir + "/cri.sock";
      r->cni_dir = r->dir + "/net.d";
      r->log_dir = r->dir + "/logs";
      r->bridge = std::string(r == &b.berth ? "crbb" : "crbc") + tag;
      r->subnet = b.free_subnet(rng, taken);
      taken.insert(r->subnet);
      for (auto* k : kPhases) r->ms[k];
      fs::create_directories(r->log_dir);
    }
    if (b.ctd.socket.size() + 8 >= sizeof(sockaddr_un{}.sun_path)) throw Fatal{"--workdir path too long for a unix socket"};
    b.berth_cgroup_root = "/berth-cri-bench-" + tag;
    b.netns_before = Bench::netns_names();
    {
      std::error_code ec;
      for (auto it = fs::directory_iterator("/sys/fs/cgroup", ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (!fs::exists(it->path() / "k8s.io")) b.ctd_parent_new.push_back(it->path() / "k8s.io");
    }

    b.start_registry_and_push();
    for (Runtime* r : {&b.berth, &b.ctd}) b.write_cni(*r);

    // 1. The daemons.
    b.start_berth();
    if (no_ctd) {
      b.ctd_skip_reason = "--no-containerd";
    } else {
      auto containerd = containerd_path.empty() ? find_in_path("containerd") : std::optional<std::string>(containerd_path);
      if (containerd && ::access(containerd->c_str(), X_OK) != 0) containerd.reset();
      auto runc = find_in_path("runc");
      auto shim = find_in_path("containerd-shim-runc-v2");
      if (!containerd || !runc || !shim) {
        b.ctd_skip_reason = std::string("not installed: ") + (containerd ? "" : "containerd ") + (runc ? "" : "runc ") +
                            (shim ? "" : "containerd-shim-runc-v2");
      } else {
        try {
          b.start_containerd(*containerd, *runc);
          b.have_ctd = true;
        } catch (const Fatal& f) {
          if (g_stop) throw;
          b.ctd_skip_reason = f.what;
          b.ctd.daemon.stop();
        }
      }
    }
    if (!b.have_ctd) say("********** containerd skipped: " + b.ctd_skip_reason + " **********");

    // 2. Images through CRI, untimed; then the idle figures.
    b.berth.busybox_ref = b.ctd.busybox_ref = b.busybox_ref;
    pull(b.berth, b.busybox_ref);
    if (b.have_ctd) {
      try {
        pull(b.ctd, b.pause_ref);
        pull(b.ctd, b.busybox_ref);
      } catch (const Fatal& f) {
        if (g_stop) throw;
        b.have_ctd = false;
        b.ctd_skip_reason = f.what;
        b.ctd.daemon.stop();
        say("********** containerd skipped: " + f.what + " **********");
      }
    }
    std::vector<Runtime*> rts{&b.berth};
    if (b.have_ctd) rts.push_back(&b.ctd);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    for (Runtime* r : rts) {
      cri_version(*r, nullptr);
      r->idle = r->daemon_memory();
      say(r->name + ": idle daemon RSS " + fmt("%.1f MiB", mib(r->idle.daemon_rss)) + ", PSS " +
          fmt("%.1f MiB", mib(r->idle.daemon_pss)));
    }

    // 3. Warm-up: one pod each, untimed. A runtime that fails it is dropped (berth: fatal).
    for (auto it = rts.begin(); it != rts.end();) {
      Runtime& r = **it;
      PodTimes t = start_pod(r, "warm");
      std::string err = t.error;
      for (auto id : std::set<std::string>(r.live_pods)) {
        auto rm = remove_pod(r, id);
        if (err.empty()) err = rm.error;
      }
      check_stop();
      if (err.empty()) {
        say(r.name + ": warm-up pod " + fmt("%.0f ms", t.run + t.create + t.start));
        ++it;
        continue;
      }
      if (r.name == "berth") throw Fatal{"berth: warm-up pod failed: " + err};
      b.have_ctd = false;
      b.ctd_skip_reason = "warm-up pod failed: " + err;
      say("********** containerd skipped: " + b.ctd_skip_reason + " **********");
      remove_all_pods(r);
      r.daemon.stop(20);
      it = rts.erase(it);
    }

    // 4. Streaming.
    if (::access(b.stream_client.c_str(), X_OK) == 0) {
      b.streaming_phase(rts);
    } else {
      say("********** streaming skipped: no berth-stream-client at " + b.stream_client +
          " (build it: ninja berth-stream-client; needs golang-go) **********");
    }

    // 5. Timed pods, round-robin with a rotating first runtime.
    for (int i = 0; i < (only_streaming ? 0 : b.iterations); ++i) {
      for (size_t k = 0; k < rts.size(); ++k) {
        Runtime& r = *rts[(static_cast<size_t>(i) + k) % rts.size()];
        check_stop();
        PodTimes t = start_pod(r, "pod");
        RemoveTimes rm;
        if (!t.pod_id.empty()) rm = remove_pod(r, t.pod_id);
        for (auto id : std::set<std::string>(r.live_pods)) remove_pod(r, id);
        std::string err = !t.error.empty() ? t.error : rm.error;
        std::string head = r.name + " " + std::to_string(i + 1) + "/" + std::to_string(b.iterations) + ": ";
        if (!err.empty()) {
          ++r.failures;
          if (r.first_error.empty()) r.first_error = err;
          say(head + "FAILED " + err);
          continue;
        }
        r.ms["RunPodSandbox"].push_back(t.run);
        r.ms["CreateContainer"].push_back(t.create);
        r.ms["StartContainer"].push_back(t.start);
        r.ms["StopPodSandbox"].push_back(rm.stop);
        r.ms["RemovePodSandbox"].push_back(rm.remove);
        r.start_total.push_back(t.run + t.create + t.start);
        r.removal_total.push_back(rm.stop + rm.remove);
        if (g_verbose)
          say(head + "run " + fmt("%.1f", t.run) + " create " + fmt("%.1f", t.create) + " start " + fmt("%.1f", t.start) +
              " | stop " + fmt("%.1f", rm.stop) + " remove " + fmt("%.1f", rm.remove) + " ms");
      }
    }
    if (!only_streaming && b.berth.start_total.empty())
      throw Fatal{"berth: every timed pod failed; first: " + b.berth.first_error};

    // 6. Memory with --pods pods, one runtime at a time.
    for (Runtime* r : only_streaming ? std::vector<Runtime*>{} : rts) {
      try {
        b.memory_phase(*r);
      } catch (const Fatal& f) {
        if (g_stop) throw;
        say("********** " + r->name + ": memory figures failed: " + f.what + " **********");
        if (r->first_error.empty()) r->first_error = f.what;
        ++r->failures;
        remove_all_pods(*r);
        r->mem_done = false;
      }
    }

    // 7. The tables.
    std::printf("\nberth_cri_bench: CRI v1 over grpc++, the same client for both runtimes, in one run\n");
    std::printf("berth:      %s (berthd %s)\n", b.berth.version.c_str(), b.berthd_bin.c_str());
    if (b.have_ctd || !b.ctd.version.empty())
      std::printf("containerd: %s, runc v2 shim, overlayfs\n", b.ctd.version.c_str());
    if (!b.have_ctd) std::printf("containerd: SKIPPED: %s\n", b.ctd_skip_reason.c_str());
    std::printf("pod: busybox `sleep 3600` (%s), own net/ipc/uts, container pid namespace, seccomp Unconfined,\n"
                "     CNI bridge + portmap, host-local IPAM (no port mappings); containerd's sandbox image %s\n"
                "     (%s%s)\n",
                b.busybox_ref.c_str(), b.pause_ref.c_str(), fs::path(b.pause_bin).filename().c_str(),
                b.pause_arg.empty() ? "" : (" " + b.pause_arg).c_str());
    std::printf("machine: %u CPUs; load average (1, 5, 15 min) %s at the start, %s at the end\n",
                std::thread::hardware_concurrency(), load_before.c_str(), loadavg().c_str());
    if (!only_streaming) {
      print_timing(b);
      print_memory(b);
    }
    print_streaming(b);
    for (Runtime* r : {&b.berth, &b.ctd}) {
      if (r->failures) {
        std::printf("%s: %d failure(s); first: %s\n", r->name.c_str(), r->failures, r->first_error.c_str());
        rc = 1;
      }
    }
    std::fflush(stdout);
  } catch (const Fatal& f) {
    say("ERROR: " + f.what);
    rc = g_stop ? 130 : 1;
  } catch (const std::exception& e) {
    say(std::string("ERROR: ") + e.what());
    rc = 1;
  }
  if (rc != 0 && !b.tmp.empty() && !keep) say("logs were in " + b.tmp + "/logs (pass --keep to keep them)");
  b.cleanup(keep);
  return rc;
}

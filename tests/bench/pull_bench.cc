// berth_pull_bench: how long does pulling and unpacking a large image from a registry
// take, and how much memory does it need, for berth against containerd 1.6 (ctr) and
// skopeo + umoci?
//
// The image is `big` from tests/support/make_test_images.py (--mb MiB of generated files
// over 5 gzip layers), pushed to a docker-registry this bench starts on 127.0.0.1. Every
// iteration of every tool starts from an empty store; the tools run round-robin (the
// starting tool rotates) so drift on these shared machines hits all of them alike, and
// the table prints ratios to berth (DESIGN.md, Testing). The page cache cannot be
// dropped here, so each tool first does one untimed warm-up pull: every timed pull reads
// a warm registry.
//
// Usage (root): berth_pull_bench [--mb N] [--iterations N] [--berthctl PATH]
//                               [--images DIR] [--workdir DIR] [--keep]
//
// Only libc, libstdc++ and nlohmann_json (to read images.json) are used: the bench must
// not share code with what it measures.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/bench_util.h"
#include "tests/support/loopback_port.h"
#include "tests/support/test_files.h"

namespace {

namespace fs = std::filesystem;

#ifndef BERTHCTL_DEFAULT_BINARY
#define BERTHCTL_DEFAULT_BINARY "berthctl"
#endif
#ifndef BERTH_SOURCE_DIR
#define BERTH_SOURCE_DIR "."
#endif

using berth::testing::describe;
using berth::testing::exited_ok;
using berth::testing::find_in_path;
using berth::testing::free_loopback_port;
using berth::testing::loopback_port_open;
using berth::testing::now_ms;
using berth::testing::slurp;
using berth::testing::trim_text;
using berth::testing::write_str;

void say(const std::string& line) { std::fprintf(stderr, "pull-bench: %s\n", line.c_str()); }

// Any failure unwinds to main, which cleans up (registry, containerd, mounts, temp dirs).
struct Fatal {
  std::string what;
};

volatile sig_atomic_t g_stop = 0;
volatile pid_t g_foreground = 0;  // the command being waited for, killed on a signal

void on_signal(int) {
  g_stop = 1;
  if (g_foreground > 0) ::kill(g_foreground, SIGKILL);
}

void check_stop() {
  if (g_stop) throw Fatal{"interrupted"};
}

std::string tail_of(const std::string& s, size_t n = 600) { return s.size() <= n ? s : "..." + s.substr(s.size() - n); }

// bench_util's spawn, failing the bench when fork does.
pid_t start_process(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
  pid_t pid = berth::testing::spawn(argv, out_path, err_path);
  if (pid < 0) throw Fatal{std::string("fork: ") + std::strerror(errno)};
  return pid;
}

struct Outcome {
  int status = -1;
  long maxrss_kib = 0;
  double ms = 0;
  std::string err;
  double disk_bytes = 0;  // what the pull left on disk (filled in by the tool's pull)
};

// Runs argv to completion. wait4's ru_maxrss is the peak RSS of the command (and of the
// children it reaped itself).
Outcome run_cmd(const std::vector<std::string>& argv, const std::string& log_prefix) {
  std::string out = log_prefix + ".out", err = log_prefix + ".err";
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  Outcome o;
  double t0 = now_ms();
  pid_t pid = start_process(argv, out, err);
  g_foreground = pid;
  if (g_stop) ::kill(pid, SIGKILL);
  rusage ru{};
  int st = 0;
  while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  g_foreground = 0;
  o.ms = now_ms() - t0;
  o.status = st;
  o.maxrss_kib = ru.ru_maxrss;
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

long proc_status_kib(pid_t pid, const char* field) {
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status").value_or(""));
  size_t n = std::strlen(field);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  return -1;
}

// Unmounts everything at or under dir, deepest first (containerd or berth may leave
// mounts behind when killed in the middle of an unpack).
int unmount_under(const std::string& dir) {
  std::vector<std::string> targets;
  for (const auto& line : berth::testing::lines_of(slurp("/proc/self/mountinfo").value_or(""))) {
    auto w = berth::testing::words(line);
    if (w.size() > 4 && (w[4] == dir || w[4].starts_with(dir + "/"))) targets.push_back(w[4]);
  }
  std::sort(targets.begin(), targets.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  int n = 0;
  for (const auto& t : targets)
    if (::umount2(t.c_str(), MNT_DETACH) == 0) ++n;
  return n;
}

// Allocated bytes under dir (st_blocks), hard links counted once: a sanity check that a
// pull really unpacked the image.
double disk_usage(const std::string& dir) {
  std::set<std::pair<dev_t, ino_t>> seen;
  double total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen.insert({st.st_dev, st.st_ino}).second) continue;
    total += static_cast<double>(st.st_blocks) * 512;
  }
  return total;
}

void remove_tree(const std::string& dir) {
  unmount_under(dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) say("WARNING: cannot remove " + dir + ": " + ec.message());
}

// A daemon we started (registry, containerd): stopped with SIGTERM, then SIGKILL.
struct Daemon {
  std::string name;
  pid_t pid = -1;
  bool alive() {
    if (pid <= 0) return false;
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) pid = -1;
    return r == 0;
  }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (!alive()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    say(name + " did not stop on SIGTERM in 10 s; SIGKILL");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

// ---------------------------------------------------------------------------

struct Tool {
  std::string name;
  std::vector<double> ms;
  long peak_rss_kib = 0;
  double disk_bytes = 0;  // max over the timed pulls
  long daemon_hwm_kib = 0;     // containerd only: its absolute VmHWM, for the notes
  long client_rss_kib = 0;     // containerd only: ctr's part of peak_rss_kib (max)
  long daemon_growth_kib = 0;  // containerd only: the daemon's part (max)
  int failures = 0;
  std::string first_error;
};

struct Bench {
  std::string tmp;
  std::string ref;  // 127.0.0.1:PORT/bench/big:latest
  std::string registry_host;
  std::string berthctl, ctr, containerd_bin, skopeo, umoci;
  Daemon registry{"docker-registry"};
  Daemon containerd{"containerd"};
  std::string ctd_dir, ctd_sock;
  int run_no = 0;

  std::string log(const std::string& what) { return tmp + "/logs/" + what; }

  // --- berth -------------------------------------------------------------------
  Outcome pull_berth() {
    std::string store = tmp + "/berth-store-" + std::to_string(++run_no);
    fs::create_directories(store);
    Outcome o = run_cmd({berthctl, "--root", store, "--insecure-registry", registry_host, "pull", "--quiet", ref},
                        log("berth"));
    if (exited_ok(o.status)) o.disk_bytes = disk_usage(store);
    remove_tree(store);
    return o;
  }

  // --- containerd --------------------------------------------------------------
  void start_containerd() {
    ctd_dir = tmp + "/containerd";
    ctd_sock = ctd_dir + "/containerd.sock";
    if (ctd_sock.size() + 8 >= sizeof(sockaddr_un{}.sun_path)) throw Fatal{"work dir path too long for a unix socket"};
    fs::create_directories(ctd_dir);
    std::string cfg =
        "version = 2\n"
        "root = \"" + ctd_dir + "/root\"\n"
        "state = \"" + ctd_dir + "/state\"\n"
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.aufs\",\n"
        "  \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.devmapper\",\n"
        "  \"io.containerd.snapshotter.v1.zfs\"]\n"
        "[grpc]\n  address = \"" + ctd_sock + "\"\n"
        "[ttrpc]\n  address = \"" + ctd_sock + ".ttrpc\"\n"
        "[debug]\n  address = \"\"\n  level = \"warn\"\n"
        "[metrics]\n  address = \"\"\n"
        "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"" + ctd_dir + "/opt\"\n";
    if (!write_str(ctd_dir + "/config.toml", cfg)) throw Fatal{"cannot write containerd config"};
    containerd.pid = start_process({containerd_bin, "--config", ctd_dir + "/config.toml"}, log("containerd.out"),
                           log("containerd.log"));
    for (int i = 0; i < 150; ++i) {
      check_stop();
      if (!containerd.alive())
        throw Fatal{"containerd exited at start: " + tail_of(trim_text(slurp(log("containerd.log")).value_or("")))};
      if (fs::exists(ctd_sock) && exited_ok(run_cmd({ctr, "--address", ctd_sock, "version"}, log("ctr-version")).status))
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw Fatal{"containerd did not answer on " + ctd_sock + " within 15 s"};
  }
  std::vector<std::string> ctr_cmd(std::vector<std::string> rest) {
    std::vector<std::string> v{ctr, "--address", ctd_sock, "-n", "bench"};
    v.insert(v.end(), rest.begin(), rest.end());
    return v;
  }

  // Returns the pull's outcome with maxrss = ctr's peak + containerd's VmHWM growth.
  Outcome pull_containerd(Tool& t) {
    pid_t d = containerd.pid;
    if (!containerd.alive()) throw Fatal{"containerd died: " + tail_of(trim_text(slurp(log("containerd.log")).value_or("")))};
    // "5" resets the peak RSS (VmHWM) to the current RSS.
    std::string clear = "/proc/" + std::to_string(d) + "/clear_refs";
    if (!write_str(clear, "5")) throw Fatal{"cannot reset containerd's VmHWM via " + clear + ": " + std::strerror(errno)};
    long base = proc_status_kib(d, "VmRSS");
    Outcome o = run_cmd(ctr_cmd({"images", "pull", "--plain-http", ref}), log("ctr-pull"));
    long hwm = proc_status_kib(d, "VmHWM");
    t.daemon_hwm_kib = std::max(t.daemon_hwm_kib, hwm);
    if (exited_ok(o.status)) {
      t.client_rss_kib = std::max(t.client_rss_kib, o.maxrss_kib);
      t.daemon_growth_kib = std::max(t.daemon_growth_kib, hwm - base);
    }
    o.maxrss_kib += std::max(0L, hwm - base);
    check_stop();
    if (exited_ok(o.status)) o.disk_bytes = disk_usage(ctd_dir + "/root");
    // Untimed: remove the image; --sync waits for the garbage collector, which deletes
    // the content blobs and the snapshots. Then check nothing is left.
    must(ctr_cmd({"images", "rm", "--sync", ref}), log("ctr-rm"), "ctr images rm");
    if (std::string left = containerd_leftovers(); !left.empty())
      throw Fatal{"containerd store not empty after `ctr images rm --sync`: " + left};
    return o;
  }

  std::string containerd_leftovers() {
    std::string left;
    auto count = [](const fs::path& p) {
      std::error_code ec;
      size_t n = 0;
      for (auto it = fs::directory_iterator(p, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++n;
      return n;
    };
    fs::path root = ctd_dir + "/root";
    if (size_t n = count(root / "io.containerd.content.v1.content/blobs/sha256")) left += std::to_string(n) + " blobs ";
    if (size_t n = count(root / "io.containerd.snapshotter.v1.overlayfs/snapshots")) left += std::to_string(n) + " snapshots";
    return left;
  }

  // --- skopeo + umoci -----------------------------------------------------------
  Outcome pull_skopeo_umoci() {
    std::string dir = tmp + "/skopeo-" + std::to_string(++run_no);
    fs::create_directories(dir);
    Outcome a = run_cmd({skopeo, "copy", "--quiet", "--src-tls-verify=false", "docker://" + ref, "oci:" + dir + "/layout:latest"},
                        log("skopeo"));
    Outcome o = a;
    if (exited_ok(a.status) && !g_stop) {
      Outcome b = run_cmd({umoci, "unpack", "--image", dir + "/layout:latest", dir + "/bundle"}, log("umoci"));
      o.status = b.status;
      o.ms = a.ms + b.ms;
      o.maxrss_kib = std::max(a.maxrss_kib, b.maxrss_kib);
      if (!exited_ok(b.status)) o.err = "umoci unpack: " + b.err;
      else if (!fs::exists(dir + "/bundle/rootfs/big")) o.status = 1, o.err = "umoci unpack left no rootfs/big";
      else o.disk_bytes = disk_usage(dir);
    } else {
      o.err = "skopeo copy: " + a.err;
    }
    remove_tree(dir);
    return o;
  }

  Outcome pull(Tool& t) {
    if (t.name == "berth") return pull_berth();
    if (t.name == "containerd") return pull_containerd(t);
    return pull_skopeo_umoci();
  }

  void cleanup(bool keep) {
    containerd.stop();
    registry.stop();
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

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double mib(double kib_or_bytes, double unit) { return kib_or_bytes / unit; }

int usage(const char* argv0, int rc) {
  std::printf(
      "usage: %s [--mb N] [--iterations N] [--berthctl PATH] [--images DIR] [--workdir DIR] [--keep]\n"
      "  --mb N          size of the generated image's files in MiB (default 300)\n"
      "  --iterations N  timed pulls per tool, each from an empty store (default 3)\n"
      "  --berthctl P    berthctl to measure (default %s)\n"
      "  --images DIR    reuse images made by make_test_images.py --bench-mb N --out DIR\n"
      "  --workdir DIR   where the temp dir goes (default /tmp)\n"
      "  --keep          keep the temp dir (logs, registry storage)\n",
      argv0, BERTHCTL_DEFAULT_BINARY);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  int mb = 300, iterations = 3;
  bool keep = false;
  std::string berthctl = BERTHCTL_DEFAULT_BINARY, images_dir, workdir = "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::optional<std::string> {
      std::string f = flag;
      if (a == f && i + 1 < argc) return std::string(argv[++i]);
      if (a.starts_with(f + "=")) return a.substr(f.size() + 1);
      return std::nullopt;
    };
    if (auto v = value("--mb")) mb = std::atoi(v->c_str());
    else if (auto v = value("--iterations")) iterations = std::atoi(v->c_str());
    else if (auto v = value("-n")) iterations = std::atoi(v->c_str());
    else if (auto v = value("--berthctl")) berthctl = *v;
    else if (auto v = value("--images")) images_dir = *v;
    else if (auto v = value("--workdir")) workdir = *v;
    else if (a == "--keep") keep = true;
    else if (a == "-h" || a == "--help") return usage(argv[0], 0);
    else {
      say("unknown argument " + a);
      return usage(argv[0], 2);
    }
  }
  if (mb <= 0 || iterations <= 0) {
    say("--mb and --iterations must be positive");
    return 2;
  }
  if (::geteuid() != 0) {
    say("must run as root (containerd, umoci unpack and berth keep owners and make mounts)");
    return 2;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);

  Bench b;
  std::vector<Tool> tools;
  std::vector<std::string> skipped;
  int rc = 0;
  try {
    auto registry_bin = find_in_path("docker-registry");
    auto skopeo = find_in_path("skopeo");
    auto python = find_in_path("python3");
    if (!registry_bin) throw Fatal{"docker-registry not installed (apt-get install docker-registry)"};
    if (!skopeo) throw Fatal{"skopeo not installed: it pushes the image to the registry"};
    b.skopeo = *skopeo;

    char tmpl_buf[4096];
    std::snprintf(tmpl_buf, sizeof tmpl_buf, "%s/berth-pull-bench-XXXXXX", workdir.c_str());
    if (!::mkdtemp(tmpl_buf)) throw Fatal{std::string("mkdtemp in ") + workdir + ": " + std::strerror(errno)};
    b.tmp = fs::absolute(tmpl_buf).string();
    fs::create_directories(b.tmp + "/logs");

    // The tools, in table order; berth is optional until berthctl exists.
    if (::access(berthctl.c_str(), X_OK) == 0) {
      b.berthctl = fs::absolute(berthctl).string();
      tools.push_back({.name = "berth"});
    } else {
      skipped.push_back("berth: skipped: berthctl not found at " + berthctl + " (build it, or pass --berthctl PATH)");
    }
    auto ctr = find_in_path("ctr");
    auto containerd = find_in_path("containerd");
    if (ctr && containerd) {
      b.ctr = *ctr, b.containerd_bin = *containerd;
      tools.push_back({.name = "containerd"});
    } else {
      skipped.push_back("containerd: skipped: containerd or ctr not installed");
    }
    if (auto umoci = find_in_path("umoci")) {
      b.umoci = *umoci;
      tools.push_back({.name = "skopeo+umoci"});
    } else {
      skipped.push_back("skopeo+umoci: skipped: umoci not installed");
    }
    for (auto& s : skipped) say("********** " + s + " **********");
    if (tools.empty()) throw Fatal{"nothing to measure"};

    // 1. The image.
    if (images_dir.empty()) {
      if (!python) throw Fatal{"python3 not installed: it builds the test image"};
      images_dir = b.tmp + "/images";
      std::string script = std::string(BERTH_SOURCE_DIR) + "/tests/support/make_test_images.py";
      say("building the " + std::to_string(mb) + " MiB image with " + script);
      Outcome o = must({*python, script, "--busybox", "/bin/busybox", "--out", images_dir, "--only", "big", "--bench-mb",
                        std::to_string(mb)},
                       b.log("make-images"), "make_test_images.py");
      say("image built in " + fmt("%.1f", o.ms / 1000) + " s");
    }
    auto manifest_json = slurp(images_dir + "/images.json");
    if (!manifest_json) throw Fatal{"no images.json in " + images_dir};
    auto images = nlohmann::json::parse(*manifest_json, nullptr, false);
    if (images.is_discarded() || !images["images"].contains("big"))
      throw Fatal{images_dir + "/images.json has no `big` image (make_test_images.py --bench-mb N)"};
    const auto& big = images["images"]["big"];
    double compressed = big["layer_bytes"]["compressed"].get<double>();
    double uncompressed = big["layer_bytes"]["uncompressed"].get<double>();
    size_t nlayers = big["layers"].size();
    long files = big.value("file_count", 0L);
    mb = big.value("bench_mb", mb);

    // 2. The registry.
    int port = free_loopback_port();
    if (port == 0) throw Fatal{std::string("cannot find a free port: ") + std::strerror(errno)};
    b.registry_host = "127.0.0.1:" + std::to_string(port);
    b.ref = b.registry_host + "/bench/big:latest";
    std::string reg_cfg =
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " + b.tmp + "/registry\n  delete:\n    enabled: true\n"
        "http:\n  addr: " + b.registry_host + "\n";
    if (!write_str(b.tmp + "/registry.yml", reg_cfg)) throw Fatal{"cannot write the registry config"};
    b.registry.pid = start_process({*registry_bin, "serve", b.tmp + "/registry.yml"}, b.log("registry.out"), b.log("registry.log"));
    for (int i = 0;; ++i) {
      check_stop();
      if (!b.registry.alive())
        throw Fatal{"docker-registry exited at start: " + tail_of(trim_text(slurp(b.log("registry.log")).value_or("")))};
      if (loopback_port_open(port)) break;
      if (i > 100) throw Fatal{"docker-registry does not listen on " + b.registry_host + " after 10 s"};
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Outcome push = must({b.skopeo, "copy", "--quiet", "--dest-tls-verify=false", "oci:" + images_dir + "/big:latest",
                         "docker://" + b.ref},
                        b.log("push"), "skopeo copy (push to the registry)");
    say("pushed to " + b.ref + " in " + fmt("%.1f", push.ms / 1000) + " s");

    // 3. containerd, started once; its start is not timed.
    if (std::any_of(tools.begin(), tools.end(), [](auto& t) { return t.name == "containerd"; })) {
      try {
        b.start_containerd();
      } catch (const Fatal& f) {
        if (g_stop) throw;
        say("********** containerd: skipped: " + f.what + " **********");
        skipped.push_back("containerd: skipped: " + f.what);
        std::erase_if(tools, [](auto& t) { return t.name == "containerd"; });
        b.containerd.stop();
      }
    }

    // 4. One untimed warm-up per tool (page cache, first-run setup); a tool that fails
    // here is dropped, except berth, whose failure ends the bench.
    for (auto it = tools.begin(); it != tools.end();) {
      say("warm-up: " + it->name);
      Outcome o;
      try {
        o = b.pull(*it);
      } catch (const Fatal& f) {
        if (g_stop) throw;
        o.err = f.what;
      }
      check_stop();
      if (!exited_ok(o.status)) {
        std::string why = it->name + ": warm-up pull failed (" + describe(o.status) + "): " + tail_of(o.err);
        if (it->name == "berth") throw Fatal{why};
        say("********** SKIPPING " + why + " **********");
        skipped.push_back(it->name + ": skipped: warm-up pull failed");
        if (it->name == "containerd") b.containerd.stop();
        it = tools.erase(it);
      } else {
        it->client_rss_kib = it->daemon_growth_kib = it->daemon_hwm_kib = 0;  // timed pulls only
        ++it;
      }
    }
    if (tools.empty()) throw Fatal{"every tool failed its warm-up"};

    // 5. Timed pulls, round-robin with a rotating start. Before each one, sync so the
    // previous pull's dirty pages are not written back during this one.
    for (int i = 0; i < iterations; ++i) {
      for (size_t k = 0; k < tools.size(); ++k) {
        Tool& t = tools[(static_cast<size_t>(i) + k) % tools.size()];
        ::sync();
        Outcome o;
        try {
          o = b.pull(t);
        } catch (const Fatal& f) {
          if (g_stop) throw;
          o.err = f.what;
          o.status = -1;
        }
        check_stop();
        if (exited_ok(o.status)) {
          t.ms.push_back(o.ms);
          t.peak_rss_kib = std::max(t.peak_rss_kib, o.maxrss_kib);
          t.disk_bytes = std::max(t.disk_bytes, o.disk_bytes);
          say(t.name + " " + std::to_string(i + 1) + "/" + std::to_string(iterations) + ": " + fmt("%.0f ms", o.ms) +
              ", peak RSS " + fmt("%.1f MiB", mib(static_cast<double>(o.maxrss_kib), 1024)) + ", on disk " +
              fmt("%.1f MiB", mib(o.disk_bytes, 1 << 20)));
        } else {
          ++t.failures;
          if (t.first_error.empty()) t.first_error = describe(o.status) + ": " + tail_of(o.err);
          say(t.name + " " + std::to_string(i + 1) + "/" + std::to_string(iterations) + ": FAILED " + t.first_error);
        }
      }
    }

    // 6. The table.
    const Tool* berth = nullptr;
    for (auto& t : tools)
      if (t.name == "berth") berth = &t;
    std::printf("\nberth_pull_bench: pull + unpack of %s from a local docker-registry\n", b.ref.c_str());
    std::printf("image: %d MiB of generated files (%ld files) in %zu gzip layers: %.1f MiB compressed, %.1f MiB "
                "uncompressed (tar)\n",
                mb, files, nlayers, mib(compressed, 1 << 20), mib(uncompressed, 1 << 20));
    std::printf("%d timed pulls per tool, each into an empty store, round-robin; one untimed warm-up pull per tool "
                "first\n(the page cache cannot be dropped here, so every timed pull reads a warm registry)\n\n",
                iterations);
    std::printf("%-14s %10s %10s %13s %13s %6s   %s\n", "tool", "median ms", "min ms", "peak RSS MiB", "on disk MiB",
                "fails", "ratio to berth (median time / peak RSS)");
    for (const auto& t : tools) {
      double med = median(t.ms);
      double mn = t.ms.empty() ? NAN : *std::min_element(t.ms.begin(), t.ms.end());
      std::string ratio = "-";
      if (t.name != "berth") {
        if (berth && !berth->ms.empty() && !t.ms.empty())
          ratio = t.name + "/berth = " + fmt("%.2fx", med / median(berth->ms)) + " / " +
                  fmt("%.2fx", static_cast<double>(t.peak_rss_kib) / static_cast<double>(berth->peak_rss_kib));
        else
          ratio = "n/a (no berth figures)";
      }
      std::printf("%-14s %10.0f %10.0f %13.1f %13.1f %6d   %s\n", t.name.c_str(), med, mn,
                  mib(static_cast<double>(t.peak_rss_kib), 1024), mib(t.disk_bytes, 1 << 20), t.failures, ratio.c_str());
    }
    for (const auto& s : skipped) std::printf("%s\n", s.c_str());
    std::printf("\npeak RSS: max over the timed pulls of wait4's ru_maxrss of the command;\n"
                "  containerd = ctr's ru_maxrss + containerd's VmHWM growth during the pull (VmHWM reset with\n"
                "  clear_refs 5 before it, minus the RSS then); skopeo+umoci = max of the two commands,\n"
                "  whose times are added\n"
                "on disk: allocated bytes the pull left in the tool's store (content + unpacked files + metadata;\n"
                "  skopeo+umoci: the OCI layout + the bundle), measured untimed after each pull\n");
    for (const auto& t : tools)
      if (t.name == "containerd")
        std::printf("  containerd: ctr up to %.1f MiB, daemon growth up to %.1f MiB; the daemon's absolute VmHWM\n"
                    "  (its idle RSS included) was %.1f MiB\n",
                    mib(static_cast<double>(t.client_rss_kib), 1024), mib(static_cast<double>(t.daemon_growth_kib), 1024),
                    mib(static_cast<double>(t.daemon_hwm_kib), 1024));
    std::printf("containerd: its own root/state/socket, cri disabled, overlayfs snapshotter; `ctr images rm --sync`\n"
                "  (untimed) empties content and snapshots between pulls\n");
    for (const auto& t : tools) {
      if (t.failures) {
        std::printf("%s: %d failed pulls; first: %s\n", t.name.c_str(), t.failures, t.first_error.c_str());
        rc = 1;
      }
    }
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

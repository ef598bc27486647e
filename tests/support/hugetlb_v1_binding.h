// crun 1.8 refuses a hybrid cgroup layout while the v2 hierarchy holds a controller
// (here: hugetlb). Tests and benchmarks that run crun bind hugetlb to a v1 hierarchy
// for their duration and hand it back to v2 afterwards; this does both, carefully,
// because a half-done rebinding leaves the host in a layout no runtime expects.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_files.h"

namespace berth::testing {

namespace hugetlb_detail {

namespace fs = std::filesystem;

using berth::testing::lines_of;
using berth::testing::slurp;
using berth::testing::words;
using berth::testing::write_str;

inline constexpr const char* kUnified = "/sys/fs/cgroup/unified";
inline constexpr const char* kHugetlbV1 = "/sys/fs/cgroup/hugetlb";

inline bool hugetlb_mounted_v1() {
  for (auto& line : lines_of(slurp("/proc/self/mountinfo").value_or(""))) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto f = words(line.substr(dash + 3));
    if (f.size() >= 3 && f[0] == "cgroup" && ("," + f[2] + ",").find(",hugetlb,") != std::string::npos) return true;
  }
  return false;
}

// /proc/cgroups row of hugetlb: {hierarchy id (0 = v2), cgroups incl. dying ones}.
inline std::pair<long, long> hugetlb_row() {
  for (auto& line : lines_of(slurp("/proc/cgroups").value_or(""))) {
    auto f = words(line);
    if (f.size() >= 4 && f[0] == "hugetlb") return {std::atol(f[1].c_str()), std::atol(f[2].c_str())};
  }
  return {0, 0};
}

inline bool subtree_has_procs(const fs::path& dir) {
  std::error_code ec;
  auto procs = slurp((dir / "cgroup.procs").string());
  if (!procs || !words(*procs).empty()) return true;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec) && subtree_has_procs(e.path())) return true;
  return false;
}

// rmdir of every child cgroup of root that holds no process, deepest first.
inline void remove_empty_children(const fs::path& root) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    return std::distance(a.begin(), a.end()) > std::distance(b.begin(), b.end());
  });
  for (auto& d : dirs)
    if (!subtree_has_procs(d)) ::rmdir(d.c_str());
}

// Why hugetlb cannot leave v2: the v2 cgroups holding processes (their hugetlb css,
// live or dying, pins the controller) and cgroup.stat's dying count.
inline std::string v2_hugetlb_holders() {
  std::vector<std::string> busy;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(kUnified, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    auto procs = slurp((it->path() / "cgroup.procs").string());
    if (procs && !procs->empty()) busy.push_back(it->path().string());
  }
  std::string dying;
  std::istringstream stat(slurp(std::string(kUnified) + "/cgroup.stat").value_or(""));
  for (std::string l; std::getline(stat, l);)
    if (l.starts_with("nr_dying_subsys_hugetlb ")) dying = l.substr(24);
  std::string out = "v2 cgroups with processes: ";
  for (size_t i = 0; i < busy.size(); ++i) out += (i ? ", " : "") + busy[i];
  if (busy.empty()) out += "none";
  return out + "; dying hugetlb csses: " + (dying.empty() ? "?" : dying);
}

class HugetlbV1Binding {
 public:
  // True while this object holds hugetlb on a v1 hierarchy.
  bool bound() const { return mounted; }
  static const char* v1_mountpoint() { return kHugetlbV1; }

  // "" when crun can run (bound now, or nothing to do), else why not.
  std::string bind() {
    if (hugetlb_mounted_v1()) return "";
    auto controllers = words(slurp(std::string(kUnified) + "/cgroup.controllers").value_or(""));
    if (std::find(controllers.begin(), controllers.end(), "hugetlb") == controllers.end()) return "";
    // A process in a v2 cgroup pins a hugetlb css there: the rebinding would fail
    // after all, and toggling the host's controllers would only disturb whoever owns
    // that cgroup. Leave everything as it is.
    if (auto holders = v2_hugetlb_holders(); holders.find("processes: none;") == std::string::npos)
      return "a v2 cgroup holds processes, so hugetlb cannot leave v2 (" + holders + ")";
    remove_empty_children(kUnified);  // leftovers (e.g. unified/berth) keep +hugetlb
    auto sc = words(slurp(std::string(kUnified) + "/cgroup.subtree_control").value_or(""));
    root_had_hugetlb = std::find(sc.begin(), sc.end(), "hugetlb") != sc.end();
    if (root_had_hugetlb && !write_str(std::string(kUnified) + "/cgroup.subtree_control", "-hugetlb"))
      return std::string("cannot write -hugetlb to ") + kUnified + "/cgroup.subtree_control: " + std::strerror(errno) +
             " (a v2 cgroup with processes uses hugetlb)";
    if (::mkdir(kHugetlbV1, 0755) == 0) created_dir = true;
    else if (errno != EEXIST) return std::string("mkdir ") + kHugetlbV1 + ": " + std::strerror(errno);
    int err = 0;
    for (int i = 0; i < 100; ++i) {  // the v2 css goes away asynchronously: EBUSY a while
      if (::mount("cgroup", kHugetlbV1, "cgroup", 0, "hugetlb") == 0) {
        mounted = true;
        return "";
      }
      err = errno;
      if (err != EBUSY) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string why = std::string("mount -t cgroup -o hugetlb cgroup ") + kHugetlbV1 + " failed: " + std::strerror(err) +
                      (err == EBUSY ? " (a v2 cgroup still has hugetlb; " + v2_hugetlb_holders() + ")" : "");
    unbind();
    return why;
  }

  // A v1 hierarchy dies at umount only if it has no child cgroup, dying ones included;
  // otherwise it lingers unmounted and keeps hugetlb. Wait for the children to go,
  // and remount + unmount while hugetlb is still bound to v1.
  // "" when hugetlb is back on v2 (or was never moved), else what is left over.
  std::string unbind() {
    for (int attempt = 0; mounted && attempt < 5; ++attempt) {
      if (attempt > 0 && ::mount("cgroup", kHugetlbV1, "cgroup", 0, "hugetlb") != 0) break;
      remove_empty_children(kHugetlbV1);
      for (int i = 0; i < 100 && hugetlb_row().second > 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      bool ok = false;
      for (int i = 0; i < 40 && !(ok = ::umount2(kHugetlbV1, 0) == 0); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!ok) break;
      for (int i = 0; i < 50 && hugetlb_row().first != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      mounted = hugetlb_row().first != 0;
    }
    if (mounted) return std::string("hugetlb stays bound to a v1 hierarchy (") + kHugetlbV1 + " busy)";
    if (created_dir) ::rmdir(kHugetlbV1);
    created_dir = false;
    if (root_had_hugetlb) {
      bool ok = false;
      for (int i = 0; i < 50 && !(ok = write_str(std::string(kUnified) + "/cgroup.subtree_control", "+hugetlb")); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      root_had_hugetlb = false;
      if (!ok) return std::string("cannot write +hugetlb back to ") + kUnified + "/cgroup.subtree_control";
    }
    return "";
  }
 private:
  bool mounted = false, created_dir = false, root_had_hugetlb = false;
};

}  // namespace hugetlb_detail

using hugetlb_detail::HugetlbV1Binding;

}  // namespace berth::testing

// cgroup v1, hybrid and v2 support: hierarchy detection, OCI cgroupsPath resolution,
// the pure OCI-resources -> cgroupfs-writes mapping, and CgroupManager, which owns one
// container's cgroup in every mounted hierarchy.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "runtime/oci/spec.h"

namespace berth::cgroups {

enum class Mode { v1, hybrid, v2 };

struct Layout {
  Mode mode = Mode::v1;
  // controller or "name=systemd" -> mountpoint; a comounted "cpu,cpuacct" mount
  // appears under each of its controllers.
  std::map<std::string, std::string> v1_mounts;
  std::string unified_mount;                  // "" if no cgroup2 mount
  std::set<std::string> unified_controllers;  // cgroup.controllers of the unified root

  static Result<Layout> detect(const std::string& mountinfo_path = "/proc/self/mountinfo");
  // Same as detect() but on mountinfo text already read (tests, /proc/<pid>/mountinfo).
  static Result<Layout> parse(const std::string& mountinfo_text);

  // True if `controller` is a real v1 controller mount (not a name= hierarchy).
  bool has_v1(const std::string& controller) const;
  // True if `controller` (v2 name: "io", "hugetlb", ...) can be used in the unified
  // hierarchy. Core files ("cgroup", and "freezer"/"devices", which v2 provides
  // without a controller) count as available whenever a cgroup2 mount exists.
  bool has_unified(const std::string& controller) const;
};

// OCI cgroupsPath -> absolute cgroup path below every hierarchy root.
//   ""               -> "/berth/<id>"
//   "a/b"            -> "/berth/a/b"
//   "/a/./b/"        -> "/a/b"      (cleaned; ".." that escapes is an error)
//   "slice:prefix:n" -> "/<slice expanded like systemd>/<prefix>-<n>.scope"
//                       ("a-b.slice" -> "a.slice/a-b.slice", "" or "-.slice" -> root)
// The root cgroup itself is rejected: a container never owns it.
Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& container_id);

// One cgroupfs write.
struct Write {
  std::string controller;  // v1 controller name, or v2 name when `v2` is set ("io", "cgroup")
  std::string file;        // file name inside the cgroup dir
  std::string value;
  bool v2 = false;         // goes to the unified hierarchy
  bool if_exists = false;  // skip when the file is absent (or the kernel says EOPNOTSUPP)
  std::string fallback_file;  // tried when `file` is absent (blkio.weight -> blkio.bfq.weight)

  bool operator==(const Write&) const = default;
};

// Pure mappings. Conventions (runc-compatible): 0 means "unset" for memory limit,
// swap, reservation, kernel, kernel_tcp, cpu quota/period/shares and pids limit;
// -1 means unlimited where the kernel has an unlimited value; other negatives are
// errors naming the field. OCI swap is memory+swap; v2 gets swap - limit.
// Device rules become devices.deny/devices.allow writes on v1 and nothing on v2
// (v2 uses a BPF program, see device_filter.h).
Result<std::vector<Write>> writes_v1(const oci::Resources&);
Result<std::vector<Write>> writes_v2(const oci::Resources&);
// Per controller group, v1 flavour if the controller is mounted in v1, else v2
// flavour if it is in the unified hierarchy, else an error "controller X not
// available" (only for groups the resources actually set).
Result<std::vector<Write>> writes_for(const Layout&, const oci::Resources&);

// v1 keeps memory.memsw.limit_in_bytes >= memory.limit_in_bytes after every write:
// puts the memsw write first when the new memsw is unlimited or above the current
// limit, else the limit write first. No-op unless both are present. apply() calls it
// with the limit read from the cgroup.
void order_v1_memory_writes(std::vector<Write>& writes, uint64_t current_limit);

// Conversions shared with tests.
uint64_t cpu_weight_from_shares(uint64_t shares);  // 0 stays 0 (unset)
uint64_t io_weight_from_blkio(uint64_t weight);    // 0 stays 0 (unset)

class CgroupManager {
 public:
  struct Options {
    // The tree is a plain directory standing in for cgroupfs (tests): writes create
    // files the kernel would have created and destroy() deletes regular files.
    // Never set for real cgroupfs.
    bool fake_tree = false;
    // How long freeze() waits for the kernel to report frozen.
    int freeze_timeout_ms = 5000;
  };

  // mkdir in every hierarchy (v1: each controller mount + name=systemd; unified if
  // mounted). v1 cpuset: copies cpuset.cpus/mems from the parent into every level
  // that has them empty. v2/hybrid: enables the unified controllers in each
  // ancestor's cgroup.subtree_control. On failure removes the dirs it made.
  static Result<CgroupManager> create(const Layout&, const std::string& path);
  static Result<CgroupManager> create(const Layout&, const std::string& path, Options);
  // An existing cgroup (state/update/delete); touches nothing.
  static CgroupManager open(const Layout&, const std::string& path);
  static CgroupManager open(const Layout&, const std::string& path, Options);

  Result<> add_process(pid_t pid);  // cgroup.procs in every hierarchy
  // The calling thread joins every v1 hierarchy by writing "0" to its tasks file. In
  // a single-threaded process that moves the whole process, and unlike add_process()
  // it skips the kernel's global threadgroup lock, whose first writer waits out an RCU
  // grace period (~10 ms here). The unified hierarchy is joined at birth instead:
  // clone3(CLONE_INTO_CGROUP) with unified_dir_fd().
  Result<> join_v1_as_current_thread() const;
  // O_PATH fd on this cgroup's unified dir; -1 in an fd-less UniqueFd if none.
  Result<UniqueFd> unified_dir_fd() const;
  // Initial limits and live update; see writes_for() for routing. v1 memory limit and
  // memsw are ordered so memsw >= limit holds after each write. Device rules: v1
  // devices writes, or (devices not in v1) a BPF program on the unified dir.
  Result<> apply(const oci::Resources&);

  Result<> freeze();  // v1 freezer.state until FROZEN; v2 cgroup.freeze + cgroup.events
  Result<> thaw();
  Result<bool> frozen();

  Result<std::vector<pid_t>> pids() const;  // recursive, sorted
  // kill(2) every pid. SIGKILL: freeze first so nothing forks in between, thaw after
  // (pure v2 with cgroup.kill uses that instead).
  Result<> signal_all(int sig);
  // rmdir every dir, children first, retrying EBUSY briefly; ENOENT is success.
  Result<> destroy();

  bool exists() const;
  std::string path() const { return path_; }
  // Host dir of this cgroup for a controller ("" if none). "unified" names the
  // cgroup2 dir; "name=systemd" the named v1 hierarchy.
  std::string dir(const std::string& controller) const;
  const Layout& layout() const { return layout_; }
  // Every distinct host dir of this cgroup (v1 mounts, then unified).
  std::vector<std::string> dirs() const;

 private:
  CgroupManager(Layout layout, std::string path, Options opts)
      : layout_(std::move(layout)), path_(std::move(path)), opts_(opts) {}
  Result<> write(const std::string& dir, const std::string& file, const std::string& value) const;
  Result<> apply_write(const Write& w) const;
  Result<> enable_unified(const std::set<std::string>& controllers) const;
  std::string freezer_dir(bool* v2) const;

  Layout layout_;
  std::string path_;
  Options opts_;
};

}  // namespace berth::cgroups

// CgroupManager: one container's cgroup across every mounted hierarchy.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/file_util.h"
#include "common/unique_fd.h"
#include "isolators/cgroups/cgroups.h"
#include "isolators/cgroups/device_filter.h"

namespace berth::cgroups {
namespace {

constexpr int kEnotsupp = 524;  // kernel-internal ENOTSUPP leaks out of some cgroup files

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool file_exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string full = dir + "/" + name;
    if (e->d_type == DT_DIR || (e->d_type == DT_UNKNOWN && is_dir(full))) out.push_back(full);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Fake trees hold regular files that cgroupfs would have removed with the dir.
void remove_plain_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string full = dir + "/" + e->d_name;
    if (e->d_type == DT_REG || (e->d_type == DT_UNKNOWN && !is_dir(full))) ::unlink(full.c_str());
  }
  ::closedir(d);
}

// rmdir, retrying EBUSY while exiting tasks leave the cgroup. ENOENT is success.
Result<> rmdir_retry(const std::string& dir, bool fake) {
  if (fake) remove_plain_files(dir);
  int delay = 1;
  for (int waited = 0;; waited += delay, delay = std::min(delay * 2, 100)) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return {};
    if (errno != EBUSY || waited >= 3000) return sys_fail("rmdir " + dir);
    sleep_ms(delay);
  }
}

Result<> remove_tree_children_first(const std::string& dir, bool fake) {
  for (const auto& child : subdirs(dir)) BERTH_TRY_VOID(remove_tree_children_first(child, fake));
  return rmdir_retry(dir, fake);
}

Result<> collect_pids(const std::string& dir, std::vector<pid_t>& out) {
  auto procs = read_file(dir + "/cgroup.procs");
  if (!procs) {
    if (procs.error().code == ENOENT && !is_dir(dir)) return {};  // removed while walking
    return std::unexpected(procs.error().wrap("list processes of " + dir));
  }
  for (const auto& line : split(*procs, '\n')) {
    auto t = trim(line);
    if (t.empty()) continue;
    try {
      out.push_back(static_cast<pid_t>(std::stol(std::string(t))));
    } catch (...) {
      return invalid("list processes of " + dir + ": bad pid \"" + std::string(t) + "\"");
    }
  }
  for (const auto& child : subdirs(dir)) BERTH_TRY_VOID(collect_pids(child, out));
  return {};
}

std::string event_field(const std::string& events, std::string_view key) {
  for (const auto& line : split(events, '\n')) {
    auto parts = split(line, ' ');
    if (parts.size() == 2 && parts[0] == key) return parts[1];
  }
  return "";
}

}  // namespace

Result<> CgroupManager::write(const std::string& dir, const std::string& file, const std::string& value) const {
  std::string p = dir + "/" + file;
  if (opts_.fake_tree) {
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return sys_fail("write " + p);
    if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
      return sys_fail("write " + p);
    return {};
  }
  auto r = write_existing(p, value);
  if (!r) return fail(r.error().code, "write \"" + value + "\" to " + p + ": " + std::strerror(r.error().code));
  return {};
}

std::vector<std::string> CgroupManager::dirs() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& [controller, mount] : layout_.v1_mounts) {
    if (seen.insert(mount).second) out.push_back(mount + path_);
  }
  if (!layout_.unified_mount.empty() && seen.insert(layout_.unified_mount).second)
    out.push_back(layout_.unified_mount + path_);
  return out;
}

std::string CgroupManager::dir(const std::string& controller) const {
  if (controller == "unified") return layout_.unified_mount.empty() ? "" : layout_.unified_mount + path_;
  auto it = layout_.v1_mounts.find(controller);
  if (it != layout_.v1_mounts.end()) return it->second + path_;
  if (layout_.has_unified(controller)) return layout_.unified_mount + path_;
  return "";
}

CgroupManager CgroupManager::open(const Layout& layout, const std::string& path) { return open(layout, path, {}); }

CgroupManager CgroupManager::open(const Layout& layout, const std::string& path, Options opts) {
  return CgroupManager(layout, path, opts);
}

Result<CgroupManager> CgroupManager::create(const Layout& layout, const std::string& path) {
  return create(layout, path, {});
}

Result<CgroupManager> CgroupManager::create(const Layout& layout, const std::string& path, Options opts) {
  auto parts = split(path, '/');
  if (path.empty() || path.front() != '/' || parts.empty() ||
      std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p == "." || p == ".."; }))
    return invalid("create cgroup: invalid path \"" + path + "\" (use resolve_path)");
  CgroupManager m(layout, path, opts);
  std::vector<std::string> created;
  auto undo = [&] {
    for (auto it = created.rbegin(); it != created.rend(); ++it) (void)rmdir_retry(*it, opts.fake_tree);
  };
  auto make = [&]() -> Result<> {
    std::set<std::string> mounts;
    for (const auto& [c, mount] : layout.v1_mounts) mounts.insert(mount);
    if (!layout.unified_mount.empty()) mounts.insert(layout.unified_mount);
    for (const auto& mount : mounts) {
      std::string cur = mount;
      for (const auto& part : parts) {
        cur += "/" + part;
        if (::mkdir(cur.c_str(), 0755) == 0) created.push_back(cur);
        else if (errno != EEXIST) return sys_fail("create cgroup: mkdir " + cur);
      }
    }
    // v1 cpuset starts empty in a new cgroup and refuses tasks until filled.
    if (layout.has_v1("cpuset")) {
      std::string cur = layout.v1_mounts.at("cpuset");
      for (const auto& part : parts) {
        std::string parent = cur;
        cur += "/" + part;
        for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
          auto mine = read_file(cur + "/" + file);
          if (mine && !trim(*mine).empty()) continue;
          auto inherited = read_file(parent + "/" + file);
          if (!inherited) return std::unexpected(inherited.error().wrap("create cgroup: copy " + std::string(file)));
          BERTH_TRY_VOID(m.write(cur, file, std::string(trim(*inherited))));
        }
      }
    }
    // Pure v2: enable every controller the root offers, as runc does. Hybrid: the
    // unified hierarchy belongs to the host too; enable only what apply() needs, so an
    // idle host keeps its controllers free (crun and v1 rebinding rely on that).
    if (layout.mode == Mode::v2) {
      std::set<std::string> wanted;
      for (const auto& c : layout.unified_controllers)
        if (!layout.has_v1(c)) wanted.insert(c);
      BERTH_TRY_VOID(m.enable_unified(wanted));
    }
    return {};
  };
  if (auto r = make(); !r) {
    undo();
    return std::unexpected(r.error());
  }
  return m;
}

Result<> CgroupManager::enable_unified(const std::set<std::string>& wanted) const {
  // A controller's files appear in a cgroup only once every ancestor has it in
  // cgroup.subtree_control. The leaf itself keeps none so it may hold processes.
  if (layout_.unified_mount.empty() || wanted.empty()) return {};
  auto parts = split(path_, '/');
  std::string cur = layout_.unified_mount;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::set<std::string> want = wanted;
    if (auto avail = read_file(cur + "/cgroup.controllers")) {
      std::set<std::string> have;
      for (auto& c : split(trim(*avail), ' ')) have.insert(c);
      std::erase_if(want, [&](const std::string& c) { return !have.contains(c); });
    }
    if (auto enabled = read_file(cur + "/cgroup.subtree_control")) {
      for (auto& c : split(trim(*enabled), ' ')) want.erase(c.front() == '+' ? c.substr(1) : c);
    }
    if (!want.empty()) {
      std::string all;
      for (const auto& c : want) all += (all.empty() ? "+" : " +") + c;
      if (!write(cur, "cgroup.subtree_control", all)) {
        // One unavailable controller fails the whole write; enable what we can
        // and let apply() report a limit it cannot set.
        for (const auto& c : want) (void)write(cur, "cgroup.subtree_control", "+" + c);
      }
    }
    cur += "/" + parts[i];
  }
  return {};
}

Result<> CgroupManager::join_v1_as_current_thread() const {
  std::set<std::string> seen;
  for (const auto& [controller, mount] : layout_.v1_mounts) {
    if (!seen.insert(mount).second) continue;
    auto r = write(mount + path_, "tasks", "0");
    if (!r) return std::unexpected(r.error().wrap("join cgroup"));
  }
  return {};
}

Result<UniqueFd> CgroupManager::unified_dir_fd() const {
  if (layout_.unified_mount.empty()) return UniqueFd();
  std::string d = layout_.unified_mount + path_;
  UniqueFd fd(::open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_fail("open " + d);
  return fd;
}

Result<> CgroupManager::add_process(pid_t pid) {
  for (const auto& d : dirs()) {
    auto r = write(d, "cgroup.procs", std::to_string(pid));
    if (!r) return std::unexpected(r.error().wrap("add process " + std::to_string(pid) + " to cgroup"));
  }
  return {};
}

Result<> CgroupManager::apply_write(const Write& w) const {
  std::string d = w.v2 ? dir("unified") : (layout_.has_v1(w.controller) ? dir(w.controller) : "");
  if (d.empty()) return fail(ENOTSUP, "controller " + w.controller + " not available");
  std::vector<std::string> candidates = {w.file};
  if (!w.fallback_file.empty()) candidates.push_back(w.fallback_file);
  if (opts_.fake_tree) {
    // Optional files exist in a fake tree only if the test made them; otherwise the
    // primary file is created as the kernel would have.
    for (const auto& f : candidates)
      if (file_exists(d + "/" + f)) return write(d, f, w.value);
    if (w.if_exists) return {};
    return write(d, w.file, w.value);
  }
  Error first;
  for (const auto& f : candidates) {
    auto r = write(d, f, w.value);
    if (r) return {};
    if (first.message.empty()) first = r.error();
    if (r.error().code != ENOENT) break;
  }
  bool unsupported = first.code == ENOENT || first.code == EOPNOTSUPP || first.code == kEnotsupp;
  if (w.if_exists && unsupported) return {};
  return std::unexpected(first);
}

void order_v1_memory_writes(std::vector<Write>& writes, uint64_t current_limit) {
  auto is = [](const Write& w, const char* file) { return !w.v2 && w.file == file; };
  auto limit = std::find_if(writes.begin(), writes.end(), [&](const Write& w) { return is(w, "memory.limit_in_bytes"); });
  auto memsw = std::find_if(writes.begin(), writes.end(), [&](const Write& w) { return is(w, "memory.memsw.limit_in_bytes"); });
  if (limit == writes.end() || memsw == writes.end()) return;
  int64_t new_swap = -1;
  try {
    new_swap = std::stoll(memsw->value);
  } catch (...) {
  }
  bool swap_first = new_swap < 0 || current_limit < static_cast<uint64_t>(new_swap);
  if (swap_first != (memsw < limit)) std::iter_swap(limit, memsw);
}

Result<> CgroupManager::apply(const oci::Resources& r) {
  auto writes = BERTH_TRY(writes_for(layout_, r));
  if (std::any_of(writes.begin(), writes.end(), [](const Write& w) { return w.file == "memory.memsw.limit_in_bytes"; })) {
    uint64_t current = 0;
    if (auto cur = read_file(dir("memory") + "/memory.limit_in_bytes")) {
      try {
        current = std::stoull(std::string(trim(*cur)));
      } catch (...) {
      }
    }
    order_v1_memory_writes(writes, current);
  }
  if (layout_.mode == Mode::hybrid) {
    std::set<std::string> needed;
    for (const auto& w : writes)
      if (w.v2 && w.controller != "cgroup") needed.insert(w.controller);
    BERTH_TRY_VOID(enable_unified(needed));
  }
  for (const auto& w : writes) {
    auto res = apply_write(w);
    if (!res) return std::unexpected(res.error().wrap("apply cgroup limits to " + path_));
  }
  if (!r.devices.empty() && !layout_.has_v1("devices")) {
    if (layout_.unified_mount.empty()) return fail(ENOTSUP, "controller devices not available");
    if (opts_.fake_tree) {
      BERTH_TRY_VOID(device_filter_program(r.devices));  // validate; a plain dir takes no BPF
    } else {
      auto res = attach_device_filter(dir("unified"), r.devices);
      if (!res) return std::unexpected(res.error().wrap("apply device rules to " + path_));
    }
  }
  return {};
}

std::string CgroupManager::freezer_dir(bool* v2) const {
  *v2 = !layout_.has_v1("freezer");
  if (!*v2) return dir("freezer");
  return dir("unified");
}

Result<> CgroupManager::freeze() {
  bool v2;
  std::string d = freezer_dir(&v2);
  if (d.empty()) return fail(ENOTSUP, "freeze " + path_ + ": no freezer available");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.freeze_timeout_ms);
  int delay = 1;
  if (v2) BERTH_TRY_VOID(write(d, "cgroup.freeze", "1"));
  while (true) {
    if (v2) {
      auto events = read_file(d + "/cgroup.events");
      if (!events) return std::unexpected(events.error().wrap("freeze " + path_));
      if (event_field(*events, "frozen") == "1") return {};
    } else {
      // Re-writing FROZEN retries tasks that were busy (e.g. in vfork) last time.
      BERTH_TRY_VOID(write(d, "freezer.state", "FROZEN"));
      auto state = read_file(d + "/freezer.state");
      if (!state) return std::unexpected(state.error().wrap("freeze " + path_));
      if (trim(*state) == "FROZEN") return {};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      (void)thaw();
      return fail(EBUSY, "freeze " + path_ + ": timed out waiting for the cgroup to freeze");
    }
    sleep_ms(delay);
    delay = std::min(delay * 2, 20);
  }
}

Result<> CgroupManager::thaw() {
  bool v2;
  std::string d = freezer_dir(&v2);
  if (d.empty()) return fail(ENOTSUP, "thaw " + path_ + ": no freezer available");
  return v2 ? write(d, "cgroup.freeze", "0") : write(d, "freezer.state", "THAWED");
}

Result<bool> CgroupManager::frozen() {
  bool v2;
  std::string d = freezer_dir(&v2);
  if (d.empty()) return fail(ENOTSUP, "freezer state of " + path_ + ": no freezer available");
  if (v2) {
    if (auto events = read_file(d + "/cgroup.events")) return event_field(*events, "frozen") == "1";
    auto want = read_file(d + "/cgroup.freeze");
    if (!want) return std::unexpected(want.error().wrap("freezer state of " + path_));
    return trim(*want) == "1";
  }
  auto state = read_file(d + "/freezer.state");
  if (!state) return std::unexpected(state.error().wrap("freezer state of " + path_));
  return trim(*state) == "FROZEN";
}

Result<std::vector<pid_t>> CgroupManager::pids() const {
  std::string d;
  for (const char* c : {"freezer", "pids", "memory"})
    if (layout_.has_v1(c)) {
      d = dir(c);
      break;
    }
  if (d.empty()) d = dir("unified");
  if (d.empty() && !dirs().empty()) d = dirs().front();
  if (d.empty()) return fail(ENOTSUP, "list processes of " + path_ + ": no hierarchy");
  if (!is_dir(d)) return fail(ENOENT, "list processes of " + path_ + ": " + d + " does not exist");
  std::vector<pid_t> out;
  BERTH_TRY_VOID(collect_pids(d, out));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<> CgroupManager::signal_all(int sig) {
  if (sig == SIGKILL && layout_.mode == Mode::v2 && file_exists(dir("unified") + "/cgroup.kill"))
    return write(dir("unified"), "cgroup.kill", "1");
  // Frozen tasks cannot fork, so the pid list stays complete while we kill.
  bool froze = sig == SIGKILL && freeze().has_value();
  auto list = pids();
  Result<> result;
  if (!list) {
    result = std::unexpected(list.error());
  } else {
    for (pid_t pid : *list) {
      if (::kill(pid, sig) < 0 && errno != ESRCH && result)
        result = sys_fail("signal " + std::to_string(sig) + " to pid " + std::to_string(pid));
    }
  }
  if (froze) {
    auto t = thaw();
    if (!t && result) result = t;
  }
  return result;
}

Result<> CgroupManager::destroy() {
  Result<> result;
  for (const auto& d : dirs()) {
    auto r = remove_tree_children_first(d, opts_.fake_tree);
    if (!r && result) result = std::unexpected(r.error().wrap("destroy cgroup " + path_));
  }
  return result;
}

bool CgroupManager::exists() const {
  auto all = dirs();
  return std::any_of(all.begin(), all.end(), is_dir);
}

}  // namespace berth::cgroups

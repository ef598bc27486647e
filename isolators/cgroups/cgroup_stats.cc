#include "isolators/cgroups/cgroup_stats.h"

#include <cstdlib>
#include <string>

#include "common/file_util.h"

namespace berth::cgroups {

namespace {

std::optional<uint64_t> read_number(const std::string& dir, const char* file) {
  if (dir.empty()) return std::nullopt;
  auto text = read_file(dir + "/" + file);
  if (!text) return std::nullopt;
  auto t = trim(*text);
  if (t == "max") return std::nullopt;
  return std::strtoull(std::string(t).c_str(), nullptr, 10);
}

// "key value" lines (memory.stat, cpu.stat, memory.events).
std::optional<uint64_t> read_key(const std::string& dir, const char* file, std::string_view key) {
  if (dir.empty()) return std::nullopt;
  auto text = read_file(dir + "/" + file);
  if (!text) return std::nullopt;
  for (auto line : split(*text, '\n')) {
    auto fields = split(line, ' ');
    if (fields.size() == 2 && fields[0] == key) return std::strtoull(fields[1].c_str(), nullptr, 10);
  }
  return std::nullopt;
}

// v1 reports "no limit" as a huge page-rounded number.
constexpr uint64_t kV1Unlimited = 1ull << 62;

}  // namespace

Result<Stats> read_stats(const CgroupManager& cgroup) {
  if (!cgroup.exists()) return fail(ENOENT, "cgroup " + cgroup.path() + " does not exist");
  const Layout& layout = cgroup.layout();
  std::string unified = layout.unified_mount.empty() ? "" : cgroup.dir("unified");
  Stats s;

  if (layout.has_v1("cpuacct")) {
    s.cpu_usage_ns = read_number(cgroup.dir("cpuacct"), "cpuacct.usage");
  } else if (layout.has_unified("cpu")) {
    if (auto usec = read_key(unified, "cpu.stat", "usage_usec")) s.cpu_usage_ns = *usec * 1000;
  }

  if (layout.has_v1("memory")) {
    std::string dir = cgroup.dir("memory");
    s.memory_usage_bytes = read_number(dir, "memory.usage_in_bytes");
    auto inactive = read_key(dir, "memory.stat", "total_inactive_file");
    if (s.memory_usage_bytes)
      s.memory_working_set_bytes = *s.memory_usage_bytes - std::min(*s.memory_usage_bytes, inactive.value_or(0));
    s.memory_rss_bytes = read_key(dir, "memory.stat", "total_rss");
    s.page_faults = read_key(dir, "memory.stat", "total_pgfault").value_or(0);
    s.major_page_faults = read_key(dir, "memory.stat", "total_pgmajfault").value_or(0);
    if (auto limit = read_number(dir, "memory.limit_in_bytes"); limit && *limit < kV1Unlimited) s.memory_limit_bytes = limit;
    s.oom_kills = read_key(dir, "memory.oom_control", "oom_kill").value_or(0);
  } else if (layout.has_unified("memory")) {
    s.memory_usage_bytes = read_number(unified, "memory.current");
    auto inactive = read_key(unified, "memory.stat", "inactive_file");
    if (s.memory_usage_bytes)
      s.memory_working_set_bytes = *s.memory_usage_bytes - std::min(*s.memory_usage_bytes, inactive.value_or(0));
    s.memory_rss_bytes = read_key(unified, "memory.stat", "anon");
    s.page_faults = read_key(unified, "memory.stat", "pgfault").value_or(0);
    s.major_page_faults = read_key(unified, "memory.stat", "pgmajfault").value_or(0);
    s.memory_limit_bytes = read_number(unified, "memory.max");
    s.oom_kills = read_key(unified, "memory.events", "oom_kill").value_or(0);
  }

  if (layout.has_v1("pids")) s.pids = read_number(cgroup.dir("pids"), "pids.current");
  else if (layout.has_unified("pids")) s.pids = read_number(unified, "pids.current");
  return s;
}

}  // namespace berth::cgroups

// Usage figures of one cgroup, read from whichever hierarchy holds each controller:
// what CRI stats and the Mesos usage call report.
#pragma once

#include <cstdint>
#include <optional>

#include "isolators/cgroups/cgroups.h"

namespace berth::cgroups {

struct Stats {
  std::optional<uint64_t> cpu_usage_ns;
  std::optional<uint64_t> memory_usage_bytes;
  // usage minus inactive file pages: what the kernel cannot reclaim cheaply, and
  // what kubelet evicts on.
  std::optional<uint64_t> memory_working_set_bytes;
  std::optional<uint64_t> memory_rss_bytes;
  std::optional<uint64_t> memory_limit_bytes;  // unset when unlimited
  uint64_t page_faults = 0, major_page_faults = 0;
  uint64_t oom_kills = 0;
  std::optional<uint64_t> pids;
};

// Missing controllers leave their fields unset; a missing cgroup is ENOENT.
Result<Stats> read_stats(const CgroupManager& cgroup);

}  // namespace berth::cgroups

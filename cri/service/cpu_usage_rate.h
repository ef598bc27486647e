// CpuUsage.usage_nano_cores: CPU time a pod or container used since its previous
// sample, per second of wall time. CRI leaves the rate to the runtime (containerd
// keeps the last sample per container the same way); without a previous sample the
// field stays unset and kubelet works it out itself.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

namespace berth::cri {

class CpuUsageRate {
 public:
  // Records the sample and returns the rate since the one before. A sample no newer
  // than the last (the same cgroup reading served twice) repeats the last rate.
  std::optional<uint64_t> sample(const std::string& id, int64_t timestamp_ns, uint64_t usage_ns);
  // Forgets every id not in `live`, after a listing showed which still exist.
  void retain(const std::set<std::string>& live);

 private:
  struct Sample {
    int64_t at_ns = 0;
    uint64_t usage_ns = 0;
    std::optional<uint64_t> rate;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Sample> last_;
};

}  // namespace berth::cri

#include "cri/service/cpu_usage_rate.h"

namespace berth::cri {

std::optional<uint64_t> CpuUsageRate::sample(const std::string& id, int64_t timestamp_ns, uint64_t usage_ns) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = last_.try_emplace(id, Sample{timestamp_ns, usage_ns, std::nullopt});
  if (inserted) return std::nullopt;
  Sample& prev = it->second;
  if (timestamp_ns <= prev.at_ns) return prev.rate;
  std::optional<uint64_t> rate;
  // A counter that went backwards belongs to a new cgroup under the same id.
  if (usage_ns >= prev.usage_ns) {
    unsigned __int128 used = usage_ns - prev.usage_ns;
    rate = static_cast<uint64_t>(used * 1'000'000'000u / static_cast<uint64_t>(timestamp_ns - prev.at_ns));
  }
  prev = Sample{timestamp_ns, usage_ns, rate};
  return rate;
}

void CpuUsageRate::retain(const std::set<std::string>& live) {
  std::lock_guard lock(mu_);
  std::erase_if(last_, [&](const auto& entry) { return !live.contains(entry.first); });
}

}  // namespace berth::cri

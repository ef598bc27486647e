#include "runtime/containerizer/resources_conversion.h"

namespace berth::pod {

oci::Resources to_oci_resources(const Resources& r) {
  oci::Resources out;
  oci::CpuResources cpu;
  bool cpu_set = false;
  if (r.cpu_shares > 0) cpu.shares = static_cast<uint64_t>(r.cpu_shares), cpu_set = true;
  if (r.cpu_quota != 0) cpu.quota = r.cpu_quota, cpu_set = true;
  if (r.cpu_period > 0) cpu.period = static_cast<uint64_t>(r.cpu_period), cpu_set = true;
  if (!r.cpuset_cpus.empty()) cpu.cpus = r.cpuset_cpus, cpu_set = true;
  if (!r.cpuset_mems.empty()) cpu.mems = r.cpuset_mems, cpu_set = true;
  if (cpu_set) out.cpu = cpu;
  if (r.memory_limit_in_bytes > 0 || r.memory_swap_limit_in_bytes != 0) {
    oci::MemoryResources mem;
    if (r.memory_limit_in_bytes > 0) mem.limit = r.memory_limit_in_bytes;
    if (r.memory_swap_limit_in_bytes != 0) mem.swap = r.memory_swap_limit_in_bytes;
    out.memory = mem;
  }
  for (auto& h : r.hugepage_limits) out.hugepage_limits.push_back({h.page_size, h.limit});
  out.unified = r.unified;
  return out;
}

}  // namespace berth::pod

// OCI resources -> ordered cgroupfs writes, per controller group and hierarchy flavour.
// Pure: no file is touched here, so every conversion is unit-testable.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "common/file_util.h"
#include "isolators/cgroups/cgroups.h"

namespace berth::cgroups {
namespace {

using Out = std::vector<Write>;

void add(Out& out, std::string controller, std::string file, std::string value, bool v2,
         bool if_exists = false, std::string fallback = "") {
  out.push_back(Write{std::move(controller), std::move(file), std::move(value), v2, if_exists,
                      std::move(fallback)});
}

// -1 is "unlimited"; other negatives are errors naming the field.
Result<> check_limit(std::optional<int64_t> v, std::string_view field) {
  if (v && *v < -1)
    return invalid("resources." + std::string(field) + ": invalid value " + std::to_string(*v) +
                   " (must be >= -1)");
  return {};
}

std::string v1_value(int64_t v) { return std::to_string(v); }
std::string v2_value(int64_t v) { return v == -1 ? "max" : std::to_string(v); }

Result<std::string> device_id(int64_t major, int64_t minor, std::string_view field) {
  if (major < 0 || minor < 0 || major > UINT32_MAX || minor > UINT32_MAX)
    return invalid("resources." + std::string(field) + ": invalid device " + std::to_string(major) +
                   ":" + std::to_string(minor));
  return std::to_string(major) + ":" + std::to_string(minor);
}

// ---- memory ----------------------------------------------------------------

Result<> memory(const oci::Resources& r, bool v2, Out& out) {
  if (!r.memory) return {};
  const auto& m = *r.memory;
  BERTH_TRY_VOID(check_limit(m.limit, "memory.limit"));
  BERTH_TRY_VOID(check_limit(m.swap, "memory.swap"));
  BERTH_TRY_VOID(check_limit(m.reservation, "memory.reservation"));
  BERTH_TRY_VOID(check_limit(m.kernel, "memory.kernel"));
  BERTH_TRY_VOID(check_limit(m.kernel_tcp, "memory.kernelTCP"));
  if (m.swappiness && *m.swappiness > 100)
    return invalid("resources.memory.swappiness: invalid value " + std::to_string(*m.swappiness) +
                   " (must be 0..100)");
  int64_t limit = m.limit.value_or(0);
  int64_t swap = m.swap.value_or(0);
  // runc: unlimited memory with swap unset means both unlimited (memsw >= limit).
  if (limit == -1 && swap == 0) swap = -1;
  if (limit > 0 && swap > 0 && swap < limit)
    return invalid("resources.memory.swap (" + std::to_string(swap) +
                   ") is memory+swap and must be >= resources.memory.limit (" + std::to_string(limit) + ")");
  if (limit == -1 && swap > 0)
    return invalid("resources.memory.swap must be -1 when resources.memory.limit is -1");
  int64_t reservation = m.reservation.value_or(0);

  if (!v2) {
    // apply() reorders these two against the current limit so memsw >= limit holds.
    if (limit != 0) add(out, "memory", "memory.limit_in_bytes", v1_value(limit), false);
    if (swap != 0) add(out, "memory", "memory.memsw.limit_in_bytes", v1_value(swap), false, swap == -1);
    if (reservation != 0) add(out, "memory", "memory.soft_limit_in_bytes", v1_value(reservation), false);
    if (m.kernel.value_or(0) != 0)
      add(out, "memory", "memory.kmem.limit_in_bytes", v1_value(*m.kernel), false, true);
    if (m.kernel_tcp.value_or(0) != 0)
      add(out, "memory", "memory.kmem.tcp.limit_in_bytes", v1_value(*m.kernel_tcp), false, true);
    if (m.swappiness) add(out, "memory", "memory.swappiness", std::to_string(*m.swappiness), false);
    if (m.disable_oom_killer)
      add(out, "memory", "memory.oom_control", *m.disable_oom_killer ? "1" : "0", false);
    return {};
  }
  // v2: memory.swap.max is swap alone; kernel memory, swappiness and the OOM-killer
  // switch have no v2 files and are ignored (as runc does).
  if (swap != 0) {
    if (swap == -1) {
      add(out, "memory", "memory.swap.max", "max", true, /*if_exists=*/true);
    } else {
      if (limit <= 0) return invalid("resources.memory.swap: cannot set a swap limit without a memory limit");
      add(out, "memory", "memory.swap.max", std::to_string(swap - limit), true);
    }
  }
  if (limit != 0) add(out, "memory", "memory.max", v2_value(limit), true);
  if (reservation != 0) add(out, "memory", "memory.low", v2_value(reservation), true);
  return {};
}

// ---- cpu ---------------------------------------------------------------------

Result<> cpu(const oci::Resources& r, bool v2, Out& out) {
  if (!r.cpu) return {};
  const auto& c = *r.cpu;
  BERTH_TRY_VOID(check_limit(c.quota, "cpu.quota"));
  BERTH_TRY_VOID(check_limit(c.realtime_runtime, "cpu.realtimeRuntime"));
  if (c.idle && *c.idle != 0 && *c.idle != 1)
    return invalid("resources.cpu.idle: invalid value " + std::to_string(*c.idle) + " (must be 0 or 1)");
  uint64_t shares = c.shares.value_or(0);
  int64_t quota = c.quota.value_or(0);
  uint64_t period = c.period.value_or(0);
  if (!v2) {
    if (shares != 0) add(out, "cpu", "cpu.shares", std::to_string(shares), false);
    // Period before quota: a quota is checked against the period in force.
    if (period != 0) add(out, "cpu", "cpu.cfs_period_us", std::to_string(period), false);
    if (quota != 0) add(out, "cpu", "cpu.cfs_quota_us", v1_value(quota), false);
    if (c.burst) add(out, "cpu", "cpu.cfs_burst_us", std::to_string(*c.burst), false);
    if (c.realtime_period.value_or(0) != 0)
      add(out, "cpu", "cpu.rt_period_us", std::to_string(*c.realtime_period), false);
    if (c.realtime_runtime.value_or(0) != 0)
      add(out, "cpu", "cpu.rt_runtime_us", v1_value(*c.realtime_runtime), false);
    if (c.idle) add(out, "cpu", "cpu.idle", std::to_string(*c.idle), false);
    return {};
  }
  if (c.realtime_period.value_or(0) != 0 || c.realtime_runtime.value_or(0) != 0)
    return invalid("resources.cpu.realtimePeriod/realtimeRuntime: not supported on cgroup v2");
  if (shares != 0) add(out, "cpu", "cpu.weight", std::to_string(cpu_weight_from_shares(shares)), true);
  if (quota != 0 || period != 0) {
    std::string value = quota > 0 ? std::to_string(quota) : "max";
    if (period != 0) value += " " + std::to_string(period);
    add(out, "cpu", "cpu.max", value, true);
  }
  if (c.burst) add(out, "cpu", "cpu.max.burst", std::to_string(*c.burst), true);
  if (c.idle) add(out, "cpu", "cpu.idle", std::to_string(*c.idle), true);
  return {};
}

Result<> cpuset(const oci::Resources& r, bool v2, Out& out) {
  if (!r.cpu) return {};
  auto list = [&](const std::string& s, const char* field, const char* file) -> Result<> {
    std::string_view v = trim(s);
    if (v.empty()) return {};
    if (!std::all_of(v.begin(), v.end(), [](char ch) { return (ch >= '0' && ch <= '9') || ch == ',' || ch == '-'; }))
      return invalid(std::string("resources.cpu.") + field + ": invalid list \"" + s + "\"");
    add(out, "cpuset", file, std::string(v), v2);
    return {};
  };
  BERTH_TRY_VOID(list(r.cpu->cpus, "cpus", "cpuset.cpus"));
  BERTH_TRY_VOID(list(r.cpu->mems, "mems", "cpuset.mems"));
  return {};
}

// ---- pids --------------------------------------------------------------------

Result<> pids(const oci::Resources& r, bool v2, Out& out) {
  BERTH_TRY_VOID(check_limit(r.pids_limit, "pids.limit"));
  if (r.pids_limit.value_or(0) == 0) return {};
  add(out, "pids", "pids.max", v2_value(*r.pids_limit), v2);
  return {};
}

// ---- block io ----------------------------------------------------------------

Result<> check_weight(std::optional<uint16_t> w, std::string_view field) {
  if (w && *w != 0 && (*w < 10 || *w > 1000))
    return invalid("resources.blockIO." + std::string(field) + ": invalid value " + std::to_string(*w) +
                   " (must be 10..1000)");
  return {};
}

Result<> blkio(const oci::Resources& r, bool v2, Out& out) {
  if (!r.block_io) return {};
  const auto& b = *r.block_io;
  BERTH_TRY_VOID(check_weight(b.weight, "weight"));
  BERTH_TRY_VOID(check_weight(b.leaf_weight, "leafWeight"));
  const std::string ctl = v2 ? "io" : "blkio";
  if (b.weight.value_or(0) != 0) {
    if (v2) add(out, ctl, "io.weight", "default " + std::to_string(io_weight_from_blkio(*b.weight)), true);
    else add(out, ctl, "blkio.weight", std::to_string(*b.weight), false, false, "blkio.bfq.weight");
  }
  if (b.leaf_weight.value_or(0) != 0 && !v2)
    add(out, ctl, "blkio.leaf_weight", std::to_string(*b.leaf_weight), false, true);
  for (const auto& wd : b.weight_device) {
    BERTH_TRY_VOID(check_weight(wd.weight, "weightDevice.weight"));
    BERTH_TRY_VOID(check_weight(wd.leaf_weight, "weightDevice.leafWeight"));
    std::string dev = BERTH_TRY(device_id(wd.major, wd.minor, "blockIO.weightDevice"));
    if (wd.weight.value_or(0) != 0) {
      if (v2) add(out, ctl, "io.weight", dev + " " + std::to_string(io_weight_from_blkio(*wd.weight)), true);
      else add(out, ctl, "blkio.weight_device", dev + " " + std::to_string(*wd.weight), false, false,
               "blkio.bfq.weight_device");
    }
    if (wd.leaf_weight.value_or(0) != 0 && !v2)
      add(out, ctl, "blkio.leaf_weight_device", dev + " " + std::to_string(*wd.leaf_weight), false, true);
  }
  struct Throttle {
    const std::vector<oci::ThrottleDevice>* list;
    const char* v1_file;
    const char* v2_key;
    const char* field;
  };
  const Throttle throttles[] = {
      {&b.throttle_read_bps, "blkio.throttle.read_bps_device", "rbps", "throttleReadBpsDevice"},
      {&b.throttle_write_bps, "blkio.throttle.write_bps_device", "wbps", "throttleWriteBpsDevice"},
      {&b.throttle_read_iops, "blkio.throttle.read_iops_device", "riops", "throttleReadIOPSDevice"},
      {&b.throttle_write_iops, "blkio.throttle.write_iops_device", "wiops", "throttleWriteIOPSDevice"},
  };
  // v2 has one io.max line per device carrying all four limits; keep first-seen order.
  std::vector<std::pair<std::string, std::string>> io_max;
  for (const auto& t : throttles) {
    for (const auto& td : *t.list) {
      std::string dev = BERTH_TRY(device_id(td.major, td.minor, std::string("blockIO.") + t.field));
      if (!v2) {
        add(out, ctl, t.v1_file, dev + " " + std::to_string(td.rate), false);
        continue;
      }
      // v1 uses 0 to lift a limit; v2 spells that "max".
      std::string kv = std::string(t.v2_key) + "=" + (td.rate == 0 ? "max" : std::to_string(td.rate));
      auto it = std::find_if(io_max.begin(), io_max.end(), [&](const auto& p) { return p.first == dev; });
      if (it == io_max.end()) io_max.emplace_back(dev, kv);
      else it->second += " " + kv;
    }
  }
  for (auto& [dev, kvs] : io_max) add(out, ctl, "io.max", dev + " " + kvs, true);
  return {};
}

// ---- hugetlb -----------------------------------------------------------------

Result<> hugetlb(const oci::Resources& r, bool v2, Out& out) {
  for (const auto& h : r.hugepage_limits) {
    const std::string& size = h.page_size;
    size_t digits = 0;
    while (digits < size.size() && size[digits] >= '0' && size[digits] <= '9') ++digits;
    std::string_view unit = std::string_view(size).substr(digits);
    if (digits == 0 || (unit != "KB" && unit != "MB" && unit != "GB"))
      return invalid("resources.hugepageLimits.pageSize: invalid page size \"" + size + "\"");
    std::string base = "hugetlb." + size;
    std::string value = std::to_string(h.limit);
    if (v2) {
      add(out, "hugetlb", base + ".max", value, true);
      add(out, "hugetlb", base + ".rsvd.max", value, true, true);
    } else {
      add(out, "hugetlb", base + ".limit_in_bytes", value, false);
      add(out, "hugetlb", base + ".rsvd.limit_in_bytes", value, false, true);
    }
  }
  return {};
}

// ---- network -----------------------------------------------------------------

Result<> net_cls(const oci::Resources& r, bool v2, Out& out) {
  if (!r.network || !r.network->class_id) return {};
  if (v2) return invalid("resources.network.classID: net_cls is not available on cgroup v2");
  add(out, "net_cls", "net_cls.classid", std::to_string(*r.network->class_id), false);
  return {};
}

Result<> net_prio(const oci::Resources& r, bool v2, Out& out) {
  if (!r.network || r.network->priorities.empty()) return {};
  if (v2) return invalid("resources.network.priorities: net_prio is not available on cgroup v2");
  for (const auto& [ifname, prio] : r.network->priorities) {
    if (ifname.empty() || ifname.find_first_of(" \t\n/") != std::string::npos)
      return invalid("resources.network.priorities: invalid interface name \"" + ifname + "\"");
    add(out, "net_prio", "net_prio.ifpriomap", ifname + " " + std::to_string(prio), false);
  }
  return {};
}

// ---- devices (v1 only; v2 uses a BPF program) ----------------------------------

Result<> devices(const oci::Resources& r, bool v2, Out& out) {
  std::vector<Write> rules;
  for (const auto& d : r.devices) {
    std::string type = d.type.empty() ? "a" : d.type;
    if (type != "a" && type != "b" && type != "c")
      return invalid("resources.devices: invalid type \"" + d.type + "\"");
    std::string access = d.access.empty() ? "rwm" : d.access;
    if (access.find_first_not_of("rwm") != std::string::npos)
      return invalid("resources.devices: invalid access \"" + d.access + "\"");
    auto num = [](const std::optional<int64_t>& v) -> Result<std::string> {
      if (!v || *v == -1) return std::string("*");
      if (*v < 0 || *v > UINT32_MAX) return invalid("resources.devices: invalid major/minor " + std::to_string(*v));
      return std::to_string(*v);
    };
    std::string major = BERTH_TRY(num(d.major));
    std::string minor = BERTH_TRY(num(d.minor));
    add(rules, "devices", d.allow ? "devices.allow" : "devices.deny",
        type == "a" ? std::string("a") : type + " " + major + ":" + minor + " " + access, false);
  }
  if (rules.empty() || v2) return {};
  // Start from "nothing allowed" and replay the rules in order; the kernel applies
  // them one after the other, so later rules override earlier ones.
  add(out, "devices", "devices.deny", "a", false);
  out.insert(out.end(), rules.begin(), rules.end());
  return {};
}

// ---- unified map (v2 only) ---------------------------------------------------------

Result<std::string> unified_controller(const std::string& key) {
  size_t dot = key.find('.');
  if (key.find('/') != std::string::npos || key.find("..") != std::string::npos || dot == 0 ||
      dot == std::string::npos || dot + 1 == key.size())
    return invalid("resources.unified: invalid key \"" + key + "\"");
  return key.substr(0, dot);
}

Result<> unified(const oci::Resources& r, bool v2, Out& out) {
  for (const auto& [key, value] : r.unified) {
    std::string controller = BERTH_TRY(unified_controller(key));
    if (!v2) return invalid("resources.unified: needs a cgroup v2 hierarchy (key \"" + key + "\")");
    add(out, controller, key, value, true);
  }
  return {};
}

struct Group {
  const char* v1_name;
  const char* v2_name;
  Result<> (*fn)(const oci::Resources&, bool, Out&);
};

// Order: cpuset first (v1 needs it before tasks join), memory, cpu, then the rest;
// the unified map last so its keys override the structured fields, as in runc.
const Group kGroups[] = {
    {"cpuset", "cpuset", cpuset}, {"memory", "memory", memory},    {"cpu", "cpu", cpu},
    {"pids", "pids", pids},       {"blkio", "io", blkio},          {"hugetlb", "hugetlb", hugetlb},
    {"net_cls", "net_cls", net_cls}, {"net_prio", "net_prio", net_prio}, {"devices", "devices", devices},
};

}  // namespace

uint64_t cpu_weight_from_shares(uint64_t shares) {
  if (shares == 0) return 0;
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t io_weight_from_blkio(uint64_t weight) {
  if (weight == 0) return 0;
  weight = std::clamp<uint64_t>(weight, 10, 1000);
  return 1 + (weight - 10) * 9999 / 990;
}

Result<std::vector<Write>> writes_v1(const oci::Resources& r) {
  Out out;
  for (const auto& g : kGroups) BERTH_TRY_VOID(g.fn(r, false, out));
  BERTH_TRY_VOID(unified(r, false, out));
  return out;
}

Result<std::vector<Write>> writes_v2(const oci::Resources& r) {
  Out out;
  for (const auto& g : kGroups) BERTH_TRY_VOID(g.fn(r, true, out));
  BERTH_TRY_VOID(unified(r, true, out));
  return out;
}

Result<std::vector<Write>> writes_for(const Layout& layout, const oci::Resources& r) {
  Out out;
  for (const auto& g : kGroups) {
    if (layout.has_v1(g.v1_name)) {
      BERTH_TRY_VOID(g.fn(r, false, out));
    } else if (layout.has_unified(g.v2_name) && std::string_view(g.v1_name) != "devices") {
      BERTH_TRY_VOID(g.fn(r, true, out));
    } else if (std::string_view(g.v1_name) != "devices") {
      // Devices without a v1 controller are handled by the BPF program in apply().
      Out probe;
      BERTH_TRY_VOID(g.fn(r, false, probe));
      if (!probe.empty()) return fail(ENOTSUP, std::string("controller ") + g.v1_name + " not available");
    }
  }
  for (const auto& [key, value] : r.unified) {
    std::string controller = BERTH_TRY(unified_controller(key));
    if (!layout.has_unified(controller))
      return fail(ENOTSUP, "resources.unified: controller " + controller +
                               " not available in the unified hierarchy (key \"" + key + "\")");
    add(out, controller, key, value, true);
  }
  return out;
}

}  // namespace berth::cgroups

// cgroup v2 has no devices controller: device access is decided by an eBPF program
// of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. The generator is pure
// (unit-tested); load/attach are thin bpf(2) wrappers.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/oci/spec.h"

namespace berth::cgroups {

// Program semantics match runc: the last matching rule wins, nothing matching means
// deny. Rules are checked from last to first; a rule matching every device and
// every access ends the program, so earlier rules are not emitted.
// Layout: 6 prologue instructions (r2 = type, r3 = access, r4 = major, r5 = minor),
// then per rule up to 1 (type) + 3 (access) + 1 (major) + 1 (minor) checks jumping to
// the next rule on mismatch and `r0 = allow; exit`, then the default `r0 = 0; exit`.
Result<std::vector<bpf_insn>> device_filter_program(const std::vector<oci::DeviceRule>& rules);

// Loads the program and attaches it to the cgroup2 dir with BPF_F_ALLOW_MULTI, then
// detaches every device program that was attached there before (so a live update
// replaces the rules instead of stacking them).
Result<> attach_device_filter(const std::string& cgroup2_dir, const std::vector<oci::DeviceRule>& rules);

}  // namespace berth::cgroups

// Linux capability sets of a container process: names from the spec resolved in the
// runtime (so typos fail `create`), bits applied in the container right before exec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "runtime/oci/spec.h"

namespace berth::process {

struct CapabilitySets {
  uint64_t bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};

// "CAP_SYS_ADMIN" -> 21. Unknown names are an error.
Result<int> capability_from_name(std::string_view name);
std::string capability_name(int cap);
// Every capability this kernel knows (0..cap_last_cap), as CAP_* names.
std::vector<std::string> known_capabilities();
int last_capability();

// Resolves names; capabilities the running kernel lacks are dropped with a warning
// (as runc does) so configs written for newer kernels still run.
Result<CapabilitySets> resolve_capabilities(const oci::Capabilities& caps);

// Child side, in order: drop_bounding before changing uid (needs CAP_SETPCAP), then
// apply after setresuid (with PR_SET_KEEPCAPS held across it).
Result<> drop_bounding(const CapabilitySets& sets);
Result<> apply_capabilities(const CapabilitySets& sets);

}  // namespace berth::process

// process.rlimits: names resolved in the runtime, limits set in the container.
#pragma once

#include <string_view>
#include <vector>

#include "common/error.h"
#include "runtime/oci/spec.h"

namespace berth::process {

struct ResolvedRlimit {
  int resource = 0;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

Result<int> rlimit_from_name(std::string_view name);
Result<std::vector<ResolvedRlimit>> resolve_rlimits(const std::vector<oci::Rlimit>& rlimits);

// Sets each limit. Raising a hard limit needs CAP_SYS_RESOURCE, which root lacks on
// some hosts: then the hard limit stays where it is, the soft one is capped at it,
// and a warning says so (containerd degrades the same way) instead of failing.
Result<> apply_rlimits(const std::vector<ResolvedRlimit>& rlimits);

}  // namespace berth::process

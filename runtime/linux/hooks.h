// OCI hooks: each runs with the container state JSON on stdin, its own args and env,
// and an optional timeout after which it is killed and counts as failed.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/oci/spec.h"

namespace berth {

Result<> run_hook(const oci::Hook& hook, const std::string& state_json);
// Runs the hooks in order and stops at the first failure ("<stage> hook <path>: ...").
Result<> run_hooks(const std::vector<oci::Hook>& hooks, const std::string& stage, const std::string& state_json);

}  // namespace berth

// ExecSync: runs one command in a running container through the runtime CLI's
// `exec` (the same launcher path as the container itself), collects its output and
// enforces the deadline by killing the exec'd process and everything it started.
#pragma once

#include <chrono>
#include <string>

#include "common/error.h"
#include "runtime/containerizer/containerizer.h"

namespace berth::pod {

struct ExecInvocation {
  std::string runtime_binary;
  std::string runtime_root;
  std::string container_id;
  std::string process_json;  // OCI process object: args, env, cwd, user, caps, ...
  std::string work_dir;      // where the process file and pid file go (removed after)
  std::chrono::milliseconds timeout{0};  // 0: no deadline
  size_t max_output_bytes = 8 << 20;     // per stream; more is dropped
};

Result<ExecResult> run_exec(const ExecInvocation& inv);

}  // namespace berth::pod

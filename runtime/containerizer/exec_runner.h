// ExecSync: runs one command to completion in a running container, collects its
// output and enforces the deadline by killing the command and everything it started.
#pragma once

#include <chrono>
#include <string>

#include "common/error.h"
#include "runtime/containerizer/containerizer.h"
#include "runtime/containerizer/exec_process.h"

namespace berth::pod {

struct ExecSyncLimits {
  std::chrono::milliseconds timeout{0};  // 0: no deadline
  size_t max_output_bytes = 8 << 20;     // per stream; more is dropped
};

Result<ExecResult> run_exec(const ExecInvocation& inv, const ExecSyncLimits& limits);

}  // namespace berth::pod

// Runs one CNI plugin binary the way a multithreaded daemon must: posix_spawn (no
// code of ours runs between fork and exec), only stdio inherited, its own process
// group so a timeout kills whatever it started, stdin fed and stdout/stderr read
// together so a plugin never blocks on a full pipe.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/error.h"

namespace berth::network {

struct PluginRun {
  std::string path;              // absolute path of the plugin binary
  std::vector<std::string> env;  // the whole environment, "KEY=value"
  std::string input;             // config JSON for stdin
  std::chrono::milliseconds timeout{60000};
};

struct PluginOutput {
  int exit_code = 0;  // exit status; 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Errors: the spawn failed (ENOENT, EACCES, ...), or ETIMEDOUT after the plugin's
// process group was killed. A plugin that ran and failed is not an error here: the
// caller reads exit_code and the error JSON on stdout. `spawned` (optional) says
// whether the plugin started at all, which decides whether it may need cleaning up.
Result<PluginOutput> run_cni_plugin(const PluginRun& run, bool* spawned = nullptr);

}  // namespace berth::network

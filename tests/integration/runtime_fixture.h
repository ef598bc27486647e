// Shared fixture for integration tests that drive the real `berth` binary: a busybox
// rootfs built once from the host's busybox-static, bundles made from `berth spec`,
// and a runner that captures exit code, stdout and stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace berth::testing {

struct RunResult {
  int code = -1;  // exit status, 128+N for a signal
  std::string out;
  std::string err;
};

// Runs argv with stdin from /dev/null (or `input`), extra fds as given (target fd ->
// source fd), waits, and captures output.
RunResult run_command(const std::vector<std::string>& argv, const std::vector<std::pair<int, int>>& extra_fds = {});

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  void SetUp() override;
  void TearDown() override;

  // A new bundle dir whose config.json is `berth spec` with terminal off and `args`,
  // then passed through `edit`.
  std::string make_bundle(const std::vector<std::string>& args,
                          const std::function<void(nlohmann::json&)>& edit = {});
  RunResult berth(std::vector<std::string> args, const std::vector<std::pair<int, int>>& extra_fds = {});
  std::string unique_id(const std::string& prefix);
  // Container-side shell script as a process args vector.
  static std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }
  bool state_dir_exists(const std::string& id) const;
  bool cgroup_exists(const std::string& id) const;
  nlohmann::json state(const std::string& id);
  // True while `pid` runs (a zombie waiting for the host's init to reap it counts
  // as gone); waits up to `wait_ms` for it to go.
  static bool alive(int pid, int wait_ms = 1000);

  static std::string rootfs_template_;  // pristine busybox rootfs, copied per bundle
  std::string tmp_;                     // per-test scratch dir
  std::string root_;                    // per-test --root
  std::vector<std::string> ids_;        // containers to force-delete in TearDown
};

}  // namespace berth::testing

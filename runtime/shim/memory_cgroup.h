// The memory cgroup a container runs in, found while it runs and read after it exited
// for the kernel's OOM-kill counter. The container's cgroup is fresh, so any kill
// counted there happened to this container; the kernel counts a kill in the victim's
// memcg even when an ancestor's limit triggered it.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

#include "common/error.h"

namespace berth::shim {

class MemoryCgroup {
 public:
  // From the text of /proc/<pid>/cgroup and /proc/self/mountinfo: the v1 `memory`
  // hierarchy when one is mounted, else the unified (v2) one.
  static Result<MemoryCgroup> resolve(std::string_view proc_cgroup, std::string_view mountinfo);
  static Result<MemoryCgroup> of_process(pid_t pid);

  const std::string& dir() const { return dir_; }
  bool unified() const { return unified_; }
  // The `oom_kill` counter of memory.oom_control (v1) or memory.events (v2).
  Result<unsigned long long> oom_kills() const;

  // The value of `key` in a "key value" per line file such as memory.events.
  static Result<unsigned long long> flat_keyed_value(std::string_view text, std::string_view key);

 private:
  MemoryCgroup(std::string dir, bool unified) : dir_(std::move(dir)), unified_(unified) {}

  std::string dir_;
  bool unified_ = false;
};

}  // namespace berth::shim

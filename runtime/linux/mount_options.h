// OCI mount options -> mount(2) flags, propagation, mount_setattr attributes and
// the filesystem data string. Pure, so the mapping is unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace berth {

struct MountOptions {
  unsigned long flags = 0;        // MS_* to set
  unsigned long cleared = 0;      // MS_* the options turn off explicitly ("rw", "suid")
  unsigned long propagation = 0;  // MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE [| MS_REC]
  uint64_t attr_set = 0;          // MOUNT_ATTR_* applied recursively ("rro", "rnosuid")
  uint64_t attr_clr = 0;
  bool bind = false;
  bool recursive = false;         // rbind
  std::string data;               // unknown options, comma-joined, for the filesystem
};

Result<MountOptions> parse_mount_options(const std::vector<std::string>& options);
// Every option name berth understands, for `berth features`.
std::vector<std::string> known_mount_options();
// "rslave" -> MS_SLAVE | MS_REC; "" -> 0; unknown -> error.
Result<unsigned long> parse_propagation(const std::string& value);

}  // namespace berth

#include "isolators/process/capabilities.h"

#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "common/file_util.h"
#include "common/log.h"

namespace berth::process {

int last_capability() {
  static int cached = [] {
    auto text = read_file("/proc/sys/kernel/cap_last_cap");
    if (!text) return static_cast<int>(CAP_LAST_CAP);
    return std::stoi(std::string(trim(*text)));
  }();
  return cached;
}

Result<int> capability_from_name(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  cap_value_t value = 0;
  if (!lower.starts_with("cap_") || cap_from_name(lower.c_str(), &value) != 0)
    return invalid("unknown capability \"" + std::string(name) + "\"");
  return static_cast<int>(value);
}

std::string capability_name(int cap) {
  char* raw = cap_to_name(static_cast<cap_value_t>(cap));
  std::string name = raw ? raw : "cap_" + std::to_string(cap);
  cap_free(raw);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  return name;
}

std::vector<std::string> known_capabilities() {
  std::vector<std::string> out;
  for (int cap = 0; cap <= last_capability(); ++cap) out.push_back(capability_name(cap));
  return out;
}

Result<CapabilitySets> resolve_capabilities(const oci::Capabilities& caps) {
  CapabilitySets sets;
  auto resolve = [](const std::vector<std::string>& names, uint64_t& bits) -> Result<> {
    for (auto& name : names) {
      int cap = BERTH_TRY(capability_from_name(name));
      if (cap > last_capability()) {
        log::warn("capability " + name + " is not known to this kernel; ignoring it");
        continue;
      }
      bits |= uint64_t{1} << cap;
    }
    return {};
  };
  BERTH_TRY_VOID(resolve(caps.bounding, sets.bounding));
  BERTH_TRY_VOID(resolve(caps.effective, sets.effective));
  BERTH_TRY_VOID(resolve(caps.inheritable, sets.inheritable));
  BERTH_TRY_VOID(resolve(caps.permitted, sets.permitted));
  BERTH_TRY_VOID(resolve(caps.ambient, sets.ambient));
  return sets;
}

Result<> drop_bounding(const CapabilitySets& sets) {
  for (int cap = 0; cap <= last_capability(); ++cap) {
    if (sets.bounding & (uint64_t{1} << cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      return sys_fail("drop " + capability_name(cap) + " from the bounding set");
  }
  return {};
}

Result<> apply_capabilities(const CapabilitySets& sets) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(sets.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(sets.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(sets.inheritable >> (32 * i));
  }
  if (::syscall(SYS_capset, &header, data) != 0) return sys_fail("set capabilities");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return sys_fail("clear ambient capabilities");
  for (int cap = 0; cap <= last_capability(); ++cap) {
    if (!(sets.ambient & (uint64_t{1} << cap))) continue;
    // The kernel refuses ambient bits missing from permitted or inheritable; runc
    // skips those silently, and so do we: the config still runs, minus that bit.
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0 && errno != EPERM)
      return sys_fail("raise ambient " + capability_name(cap));
  }
  return {};
}

}  // namespace berth::process

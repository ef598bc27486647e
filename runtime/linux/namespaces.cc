#include "runtime/linux/namespaces.h"

#include <sched.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace berth::linux_ns {

namespace {
constexpr NamespaceKind kKinds[] = {
    {"user", "user", CLONE_NEWUSER}, {"ipc", "ipc", CLONE_NEWIPC},   {"uts", "uts", CLONE_NEWUTS},
    {"network", "net", CLONE_NEWNET}, {"pid", "pid", CLONE_NEWPID},  {"cgroup", "cgroup", CLONE_NEWCGROUP},
    {"mount", "mnt", CLONE_NEWNS},   {"time", "time", CLONE_NEWTIME},
};
}

const NamespaceKind* all_kinds(size_t* count) {
  *count = std::size(kKinds);
  return kKinds;
}

Result<const NamespaceKind*> kind_of(const std::string& oci_type) {
  for (auto& k : kKinds)
    if (oci_type == k.oci_type) return &k;
  return invalid("unknown namespace type \"" + oci_type + "\"");
}

bool kernel_has(const NamespaceKind& kind) {
  return ::access(("/proc/self/ns/" + std::string(kind.proc_name)).c_str(), F_OK) == 0;
}

}  // namespace berth::linux_ns

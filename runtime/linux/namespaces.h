// OCI namespace types <-> clone flags and /proc/<pid>/ns names.
#pragma once

#include <string>

#include "common/error.h"

namespace berth::linux_ns {

struct NamespaceKind {
  const char* oci_type;  // "network"
  const char* proc_name; // "net"
  int clone_flag;        // CLONE_NEWNET
};

// All kinds, in the order they are joined: user first (it decides what the others
// may do), mount last but one, time last.
const NamespaceKind* all_kinds(size_t* count);
Result<const NamespaceKind*> kind_of(const std::string& oci_type);
bool kernel_has(const NamespaceKind& kind);  // /proc/self/ns/<name> exists

}  // namespace berth::linux_ns

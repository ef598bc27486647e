// berth's RuntimeDefault seccomp profile: what a container gets when the control
// plane asks for "runtime/default" (or nothing). A default-deny allowlist in the
// spirit of Docker's and containerd's defaults, so workloads that run there run here.
#pragma once

#include <string>
#include <vector>

#include "runtime/oci/spec.h"

namespace berth::seccomp {

// `capabilities` is the container's final bounding set ("CAP_SYS_ADMIN", ...).
// Syscalls that only a holder of a capability could use anyway (mount, reboot,
// ptrace, ...) are allowed when that capability is in the set; without
// CAP_SYS_ADMIN, clone may not create namespaces and clone3 reports ENOSYS (its
// flags live in memory a filter cannot read, so libc falls back to clone).
//
// Some listed names are newer than the host's libseccomp: compile the result with
// CompileOptions::skip_unknown_syscalls, or prune what it reports as skipped.
oci::Seccomp default_profile(const std::vector<std::string>& capabilities);

}  // namespace berth::seccomp

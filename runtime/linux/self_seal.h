// CVE-2019-5736: a container must never reach the host's berth binary through
// /proc/<pid>/exe. Before any command forks into a container, berth re-executes
// itself from a sealed memfd copy, so /proc/self/exe of everything that enters a
// container is an immutable anonymous file.
#pragma once

#include "common/error.h"

namespace berth {

bool running_from_sealed_copy();

// If not yet sealed: copy /proc/self/exe into a memfd, seal it against writes and
// growth, and fexecve it with the same argv and environment. Returns only on error.
Result<> reexec_from_sealed_copy(char** argv);

}  // namespace berth

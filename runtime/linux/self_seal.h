// CVE-2019-5736: a container must never be able to rewrite the host's berth binary
// through /proc/<pid>/exe. Before any command forks into a container, berth makes sure
// the file it runs from cannot be written: if it does not already run from such a
// file, it re-executes itself from a read-only view of its binary.
#pragma once

#include "common/error.h"

namespace berth {

// True when /proc/self/exe is a sealed memfd or lives on a read-only mount.
bool running_from_sealed_copy();

// Re-executes with the same argv and environment from, in order of preference:
// a detached read-only bind mount of the binary (no copy; what runc 1.2 does), or a
// sealed memfd copy (needs no mount privileges). Returns only on error.
Result<> reexec_from_sealed_copy(char** argv);

}  // namespace berth

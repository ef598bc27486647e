// State files the shim leaves for berthd: a reader sees the old content or the new,
// never a mix (temp + rename), and the new one survives a crash of the whole node
// (file and directory fsynced), so an exit code is never lost once reported.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace berth::shim {

// Writes `name` inside the directory `dir_fd`. Returns 0 or an errno value.
int write_file_durably(int dir_fd, const char* name, const char* data, size_t size, mode_t mode = 0600);

}  // namespace berth::shim

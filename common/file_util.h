// Small file helpers shared by every module.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace berth {

Result<std::string> read_file(const std::string& path);
Result<std::string> read_file_at(int dirfd, const std::string& path);

// Writes the whole buffer to an existing file (cgroup and proc files): no create,
// no truncate, one write() so the kernel sees one value.
Result<> write_existing(const std::string& path, std::string_view data);

// Readers see the old content or the new, never a mix: write a temp file in the same
// directory, then rename. `durable` adds an fsync before the rename, for data that
// must survive power loss; runtime state under /run does not (it is void after a
// reboot anyway), and an fsync there costs milliseconds on a disk-backed /run.
enum class Durability { volatile_state, durable };
Result<> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0600,
                           Durability durability = Durability::volatile_state);

// mkdir -p; existing directories are fine.
Result<> make_dirs(const std::string& path, mode_t mode = 0755);

// rm -rf that never crosses into another mount (state dirs only).
Result<> remove_tree(const std::string& path);

std::vector<std::string> split(std::string_view s, char sep, bool skip_empty = true);
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);

}  // namespace berth

// Path resolution that cannot leave a root directory: every lookup of a path taken
// from a config (mount destinations, devices, masked paths) goes through openat2
// with RESOLVE_IN_ROOT, so symlinks and ".." are resolved as if the root were "/".
#pragma once

#include <sys/types.h>

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace berth {

// Lexically cleans an absolute or relative path: collapses "//", "." and "..".
// ".." at the top of an absolute path stays at "/".
std::string clean_path(std::string_view path);

// True when the lexically cleaned path would climb above its starting point
// ("../x", "a/../../b"): used to reject config paths that try to escape.
bool path_escapes(std::string_view path);

// Opens `path` (relative to root_fd, leading "/" allowed) with RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS. flags are open(2) flags (O_PATH, O_DIRECTORY, ...).
Result<UniqueFd> open_in_root(int root_fd, const std::string& path, int flags, mode_t mode = 0);

// Creates the directory chain for `path` inside root (mkdir -p, each step resolved
// in root) and returns an O_PATH fd to the final directory.
Result<UniqueFd> make_dirs_in_root(int root_fd, const std::string& path, mode_t mode = 0755);

// Ensures `path` exists inside root as a directory (is_dir) or as an empty regular
// file, creating parents as needed; returns an O_PATH fd on it. An existing
// non-directory where a directory is wanted (and vice versa) is left alone:
// mounting over it decides whether that is allowed.
Result<UniqueFd> make_target_in_root(int root_fd, const std::string& path, bool is_dir);

// "/proc/self/fd/N": lets path-based syscalls act on exactly the inode behind an fd.
std::string fd_path(int fd);

}  // namespace berth

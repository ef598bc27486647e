#include "common/safe_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "common/file_util.h"

namespace berth {

std::string clean_path(std::string_view path) {
  bool absolute = !path.empty() && path[0] == '/';
  std::vector<std::string> parts;
  for (auto& part : split(path, '/')) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!absolute) {
        parts.push_back(part);
      }
      continue;
    }
    parts.push_back(part);
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += "/";
    out += parts[i];
  }
  if (out.empty()) out = ".";
  return out;
}

bool path_escapes(std::string_view path) {
  int depth = 0;
  for (auto& part : split(path, '/')) {
    if (part == ".") continue;
    depth += part == ".." ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

Result<UniqueFd> open_in_root(int root_fd, const std::string& path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (rel.empty()) rel = ".";
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || errno == EAGAIN) continue;
    return sys_fail("open " + path + " in root");
  }
}

Result<UniqueFd> make_dirs_in_root(int root_fd, const std::string& path, mode_t mode) {
  UniqueFd cur(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur) return sys_fail("dup root fd");
  std::string walked;
  for (auto& part : split(clean_path("/" + path), '/')) {
    walked += "/" + part;
    // Each step is resolved in root, so a symlinked component lands inside root.
    auto next = open_in_root(root_fd, walked, O_PATH | O_DIRECTORY);
    if (!next) {
      if (next.error().code != ENOENT) return std::unexpected(next.error());
      if (::mkdirat(cur.get(), part.c_str(), mode) != 0 && errno != EEXIST)
        return sys_fail("mkdir " + walked + " in root");
      next = open_in_root(root_fd, walked, O_PATH | O_DIRECTORY);
      if (!next) return std::unexpected(next.error());
    }
    cur = std::move(*next);
  }
  return cur;
}

Result<UniqueFd> make_target_in_root(int root_fd, const std::string& path, bool is_dir) {
  std::string clean = clean_path("/" + path);
  auto existing = open_in_root(root_fd, clean, O_PATH);
  if (existing) return existing;
  if (existing.error().code != ENOENT) return existing;
  if (is_dir) return make_dirs_in_root(root_fd, clean);
  auto slash = clean.rfind('/');
  std::string parent = clean.substr(0, slash);
  std::string name = clean.substr(slash + 1);
  auto dir = BERTH_TRY(make_dirs_in_root(root_fd, parent.empty() ? "/" : parent));
  UniqueFd created(::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!created && errno != EEXIST) return sys_fail("create " + clean + " in root");
  return open_in_root(root_fd, clean, O_PATH);
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace berth

#include "common/safe_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
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

namespace {

// Walks `path` inside root creating what is missing. A dangling symlink on the way
// (an image's "/data -> /srv/data" with no /srv/data yet) is followed: its target,
// itself taken inside root, is created instead, as the kernel would resolve it.
Result<UniqueFd> make_dirs_walk(int root_fd, const std::string& path, mode_t mode, int links_left) {
  UniqueFd cur(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur) return sys_fail("dup root fd");
  auto parts = split(clean_path("/" + path), '/');
  std::string walked;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    std::string parent = walked;
    walked += "/" + part;
    auto next = open_in_root(root_fd, walked, O_PATH | O_DIRECTORY);
    if (!next && next.error().code == ENOENT) {
      if (::mkdirat(cur.get(), part.c_str(), mode) != 0 && errno != EEXIST)
        return sys_fail("mkdir " + walked + " in root");
      next = open_in_root(root_fd, walked, O_PATH | O_DIRECTORY);
      if (!next && next.error().code == ENOENT) {
        char target[PATH_MAX];
        ssize_t n = ::readlinkat(cur.get(), part.c_str(), target, sizeof target - 1);
        if (n <= 0) return std::unexpected(next.error());
        if (links_left <= 0) return fail(ELOOP, "too many symlinks resolving " + path + " in root");
        target[n] = '\0';
        std::string rest;
        for (size_t j = i + 1; j < parts.size(); ++j) rest += "/" + parts[j];
        std::string redirected = target[0] == '/' ? std::string(target) : parent + "/" + target;
        return make_dirs_walk(root_fd, redirected + rest, mode, links_left - 1);
      }
    }
    if (!next) return std::unexpected(next.error());
    cur = std::move(*next);
  }
  return cur;
}

}  // namespace

Result<UniqueFd> make_dirs_in_root(int root_fd, const std::string& path, mode_t mode) {
  return make_dirs_walk(root_fd, path, mode, 40);
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

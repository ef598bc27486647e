#include "common/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace berth {

namespace {

Result<std::string> read_all(int fd, const std::string& what) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_fail("read " + what);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

Result<std::string> read_file(const std::string& path) { return read_file_at(AT_FDCWD, path); }

Result<std::string> read_file_at(int dirfd, const std::string& path) {
  UniqueFd fd(::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_fail("open " + path);
  return read_all(fd.get(), path);
}

Result<> write_existing(const std::string& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return sys_fail("open " + path);
  ssize_t n = ::write(fd.get(), data.data(), data.size());
  if (n < 0) return sys_fail("write '" + std::string(data) + "' to " + path);
  if (static_cast<size_t>(n) != data.size()) return fail(EIO, "short write to " + path);
  return {};
}

Result<> write_file_atomic(const std::string& path, std::string_view data, mode_t mode, Durability durability) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return sys_fail("create " + tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return sys_fail("write " + tmp, err);
    }
    off += static_cast<size_t>(n);
  }
  if (durability == Durability::durable && ::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return sys_fail("fsync " + tmp, err);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return sys_fail("rename " + tmp, err);
  }
  return {};
}

Result<> make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return {};
  std::string cur = path[0] == '/' ? "" : ".";
  for (auto& part : split(path, '/')) {
    cur += "/" + part;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return sys_fail("mkdir " + cur);
  }
  return {};
}

namespace {

Result<> remove_children(int dirfd, const std::string& shown, dev_t dev) {
  int dup = ::dup(dirfd);
  if (dup < 0) return sys_fail("dup");
  DIR* dir = ::fdopendir(dup);
  if (!dir) {
    ::close(dup);
    return sys_fail("opendir " + shown);
  }
  Result<> result;
  while (dirent* ent = ::readdir(dir)) {
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    struct stat st{};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev) {
        result = fail(EBUSY, shown + "/" + name + " is a mount point; not removing");
        continue;
      }
      UniqueFd child(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child) continue;
      auto r = remove_children(child.get(), shown + "/" + name, dev);
      if (!r) result = r;
      if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        result = sys_fail("rmdir " + shown + "/" + name);
    } else if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
      result = sys_fail("unlink " + shown + "/" + name);
    }
  }
  ::closedir(dir);
  return result;
}

}  // namespace

Result<> remove_tree(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return {};
    if (errno == ENOTDIR && ::unlink(path.c_str()) == 0) return {};
    return sys_fail("open " + path);
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return sys_fail("stat " + path);
  BERTH_TRY_VOID(remove_children(fd.get(), path, st.st_dev));
  fd.reset();
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return sys_fail("rmdir " + path);
  return {};
}

std::vector<std::string> split(std::string_view s, char sep, bool skip_empty) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start || !skip_empty) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.starts_with(prefix); }

}  // namespace berth

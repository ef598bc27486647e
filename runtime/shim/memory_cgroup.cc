#include "runtime/shim/memory_cgroup.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <optional>

namespace berth::shim {

namespace {

// Small reader that needs no iostreams (the shim is static and tiny).
Result<std::string> slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_fail("open " + path);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return sys_fail("read " + path, err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

std::string_view next_line(std::string_view& text) {
  size_t end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
  return line;
}

std::string_view next_field(std::string_view& line, char sep) {
  size_t end = line.find(sep);
  std::string_view field = line.substr(0, end);
  line = end == std::string_view::npos ? std::string_view{} : line.substr(end + 1);
  return field;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty())
    if (next_field(list, ',') == token) return true;
  return false;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        if (s[i + j] < '0' || s[i + j] > '7') octal = false;
        v = v * 8 + (s[i + j] - '0');
      }
      if (octal) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct CgroupMount {
  std::string root;
  std::string mountpoint;
};

// The first mount of the v1 hierarchy carrying `memory`, or of cgroup2.
std::optional<CgroupMount> find_mount(std::string_view mountinfo, bool unified) {
  while (!mountinfo.empty()) {
    std::string_view line = next_line(mountinfo);
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::string_view head = line.substr(0, dash);
    std::string_view tail = line.substr(dash + 3);
    std::string_view fstype = next_field(tail, ' ');
    next_field(tail, ' ');  // source
    std::string_view super_options = next_field(tail, ' ');
    if (unified ? fstype != "cgroup2" : (fstype != "cgroup" || !has_token(super_options, "memory"))) continue;
    next_field(head, ' ');  // mount id
    next_field(head, ' ');  // parent id
    next_field(head, ' ');  // major:minor
    std::string_view root = next_field(head, ' ');
    std::string_view mountpoint = next_field(head, ' ');
    return CgroupMount{unescape(root), unescape(mountpoint)};
  }
  return std::nullopt;
}

// `path` as seen from /proc/<pid>/cgroup, under a mount of (part of) its hierarchy.
std::optional<std::string> path_under(const CgroupMount& mount, std::string_view path) {
  std::string_view root = mount.root;
  if (root != "/") {
    if (!path.starts_with(root) || (path.size() > root.size() && path[root.size()] != '/')) return std::nullopt;
    path.remove_prefix(root.size());
  }
  std::string dir = mount.mountpoint;
  if (!path.empty() && path != "/") dir += path;
  return dir;
}

}  // namespace

Result<MemoryCgroup> MemoryCgroup::resolve(std::string_view proc_cgroup, std::string_view mountinfo) {
  std::optional<std::string_view> v1_path, v2_path;
  while (!proc_cgroup.empty()) {
    std::string_view line = next_line(proc_cgroup);
    std::string_view id = next_field(line, ':');
    std::string_view controllers = next_field(line, ':');
    if (id == "0" && controllers.empty()) v2_path = line;
    else if (has_token(controllers, "memory")) v1_path = line;
  }
  if (v1_path) {
    auto mount = find_mount(mountinfo, false);
    if (!mount) return fail(ENOENT, "the v1 memory hierarchy is not mounted");
    auto dir = path_under(*mount, *v1_path);
    if (!dir) return fail(ENOENT, "memory cgroup " + std::string(*v1_path) + " is outside the mounted hierarchy");
    return MemoryCgroup(std::move(*dir), false);
  }
  if (v2_path) {
    auto mount = find_mount(mountinfo, true);
    if (!mount) return fail(ENOENT, "cgroup2 is not mounted");
    auto dir = path_under(*mount, *v2_path);
    if (!dir) return fail(ENOENT, "cgroup " + std::string(*v2_path) + " is outside the mounted hierarchy");
    return MemoryCgroup(std::move(*dir), true);
  }
  return fail(ENOENT, "no memory cgroup in /proc/<pid>/cgroup");
}

Result<MemoryCgroup> MemoryCgroup::of_process(pid_t pid) {
  auto cgroup = BERTH_TRY(slurp("/proc/" + std::to_string(pid) + "/cgroup"));
  auto mountinfo = BERTH_TRY(slurp("/proc/self/mountinfo"));
  return resolve(cgroup, mountinfo);
}

Result<unsigned long long> MemoryCgroup::oom_kills() const {
  std::string path = dir_ + (unified_ ? "/memory.events" : "/memory.oom_control");
  auto text = BERTH_TRY(slurp(path));
  auto value = flat_keyed_value(text, "oom_kill");
  if (!value) return std::unexpected(value.error().wrap(path));
  return value;
}

Result<unsigned long long> MemoryCgroup::flat_keyed_value(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    std::string_view line = next_line(text);
    if (next_field(line, ' ') != key) continue;
    unsigned long long value = 0;
    auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), value);
    if (ec != std::errc{} || ptr != line.data() + line.size()) return invalid("bad " + std::string(key) + " value");
    return value;
  }
  return fail(ENOENT, "no " + std::string(key) + " entry");
}

}  // namespace berth::shim

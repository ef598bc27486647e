#include "runtime/containerizer/image_user.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "common/file_util.h"
#include "common/safe_path.h"
#include "common/unique_fd.h"

namespace berth::pod {

namespace {

// An image is untrusted input: a multi-gigabyte /etc/passwd is an attack, not a user
// database.
constexpr off_t kMaxDatabaseSize = 16 << 20;
// (uid_t)-1 means "no change" to setresuid and is never a real id.
constexpr uint64_t kMaxId = 0xfffffffeULL;

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

std::optional<uint32_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  uint64_t v = std::stoull(std::string(s));
  if (v > kMaxId) return std::nullopt;
  return static_cast<uint32_t>(v);
}

bool all_digits(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; }

// The file's text, or nullopt when the image has no such file. Opened in the rootfs
// with RESOLVE_IN_ROOT and O_NONBLOCK (a FIFO planted as /etc/passwd must not hang
// the daemon), and only read if it is a regular file.
Result<std::optional<std::string>> read_image_file(const std::string& rootfs, const std::string& path) {
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_fail("open rootfs " + rootfs);
  auto fd = open_in_root(root.get(), path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (!fd) {
    int code = fd.error().code;
    if (code == ENOENT || code == ENOTDIR) return std::optional<std::string>{};
    return std::unexpected(fd.error().wrap("read the image's " + path));
  }
  struct stat st{};
  if (::fstat(fd->get(), &st) != 0) return sys_fail("stat the image's " + path);
  if (!S_ISREG(st.st_mode)) return invalid("the image's " + path + " is not a regular file");
  if (st.st_size > kMaxDatabaseSize) return invalid("the image's " + path + " is larger than 16 MiB");
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail("read the image's " + path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > static_cast<size_t>(kMaxDatabaseSize))
      return invalid("the image's " + path + " is larger than 16 MiB");
  }
  return std::optional<std::string>{std::move(text)};
}

// Splits one line on ':' keeping empty fields ("x::0" has three).
std::vector<std::string> fields_of(std::string_view line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t colon = line.find(':', start);
    out.emplace_back(line.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) return out;
    start = colon + 1;
  }
}

// Lines that are blank, comments or malformed are skipped, as libc does.
std::vector<PasswdEntry> parse_passwd(const std::string& text) {
  std::vector<PasswdEntry> out;
  for (auto& raw : split(text, '\n')) {
    std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto f = fields_of(line);
    if (f.size() < 4 || f[0].empty()) continue;
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (!uid || !gid) continue;
    out.push_back({f[0], *uid, *gid, f.size() > 5 ? f[5] : ""});
  }
  return out;
}

std::vector<GroupEntry> parse_group(const std::string& text) {
  std::vector<GroupEntry> out;
  for (auto& raw : split(text, '\n')) {
    std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto f = fields_of(line);
    if (f.size() < 3 || f[0].empty()) continue;
    auto gid = parse_id(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() > 3)
      for (auto& m : split(f[3], ','))
        if (auto member = trim(m); !member.empty()) g.members.emplace_back(member);
    out.push_back(std::move(g));
  }
  return out;
}

// Loads each database at most once per resolution.
class ImageDatabases {
 public:
  explicit ImageDatabases(const std::string& rootfs) : rootfs_(rootfs) {}

  Result<const std::vector<PasswdEntry>*> passwd() {
    if (!passwd_) {
      auto text = BERTH_TRY(read_image_file(rootfs_, "/etc/passwd"));
      passwd_ = text ? parse_passwd(*text) : std::vector<PasswdEntry>{};
      has_passwd_ = text.has_value();
    }
    return &*passwd_;
  }
  Result<const std::vector<GroupEntry>*> group() {
    if (!group_) {
      auto text = BERTH_TRY(read_image_file(rootfs_, "/etc/group"));
      group_ = text ? parse_group(*text) : std::vector<GroupEntry>{};
      has_group_ = text.has_value();
    }
    return &*group_;
  }
  bool has_passwd() const { return has_passwd_; }
  bool has_group() const { return has_group_; }

 private:
  std::string rootfs_;
  std::optional<std::vector<PasswdEntry>> passwd_;
  std::optional<std::vector<GroupEntry>> group_;
  bool has_passwd_ = false, has_group_ = false;
};

}  // namespace

Result<ImageUser> resolve_image_user(const std::string& rootfs, const std::string& user) {
  size_t colon = user.find(':');
  if (colon != std::string::npos && user.find(':', colon + 1) != std::string::npos)
    return invalid("user \"" + user + "\": expected user, user:group, uid or uid:gid");
  std::string user_part = user.substr(0, colon);
  std::optional<std::string> group_part;
  if (colon != std::string::npos) group_part = user.substr(colon + 1);
  if (user_part.empty() && group_part) return invalid("user \"" + user + "\": a group needs a user");
  if (group_part && group_part->empty()) return invalid("user \"" + user + "\": empty group");

  ImageDatabases db(rootfs);
  ImageUser out;
  const PasswdEntry* entry = nullptr;
  if (user_part.empty() || all_digits(user_part)) {
    auto uid = user_part.empty() ? std::optional<uint32_t>(0) : parse_id(user_part);
    if (!uid) return invalid("user \"" + user + "\": uid " + user_part + " is out of range");
    out.uid = *uid;
    for (auto& e : *BERTH_TRY(db.passwd()))
      if (e.uid == *uid) {
        entry = &e;
        break;
      }
  } else {
    for (auto& e : *BERTH_TRY(db.passwd()))
      if (e.name == user_part) {
        entry = &e;
        break;
      }
    if (!entry) {
      if (!db.has_passwd())
        return fail(ENOENT, "user \"" + user_part + "\" not found: the image has no /etc/passwd");
      return fail(ENOENT, "user \"" + user_part + "\" not found in the image's /etc/passwd");
    }
    out.uid = entry->uid;
  }
  if (entry) {
    out.gid = entry->gid;
    out.name = entry->name;
    out.home = entry->home;
  }

  if (group_part) {
    if (all_digits(*group_part)) {
      auto gid = parse_id(*group_part);
      if (!gid) return invalid("user \"" + user + "\": gid " + *group_part + " is out of range");
      out.gid = *gid;
    } else {
      const GroupEntry* group = nullptr;
      for (auto& g : *BERTH_TRY(db.group()))
        if (g.name == *group_part) {
          group = &g;
          break;
        }
      if (!group) {
        if (!db.has_group())
          return fail(ENOENT, "group \"" + *group_part + "\" not found: the image has no /etc/group");
        return fail(ENOENT, "group \"" + *group_part + "\" not found in the image's /etc/group");
      }
      out.gid = group->gid;
    }
  }
  return out;
}

Result<std::vector<uint32_t>> image_member_groups(const std::string& rootfs, const std::string& user_name) {
  std::vector<uint32_t> gids;
  if (user_name.empty()) return gids;
  ImageDatabases db(rootfs);
  for (auto& g : *BERTH_TRY(db.group()))
    if (std::find(g.members.begin(), g.members.end(), user_name) != g.members.end()) gids.push_back(g.gid);
  std::sort(gids.begin(), gids.end());
  gids.erase(std::unique(gids.begin(), gids.end()), gids.end());
  return gids;
}

}  // namespace berth::pod

#include "storage/overlay_snapshotter.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <random>
#include <set>
#include <utility>

#include "common/file_util.h"

namespace berth::storage {

namespace {

constexpr int kSchemaVersion = 1;
constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  parent TEXT REFERENCES snapshots(key),
  kind TEXT NOT NULL CHECK (kind IN ('committed', 'active', 'view')),
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
)sql";
// The kernel takes mount options in one page.
constexpr size_t kMaxMountData = 4095;
constexpr int kMaxChainDepth = 500;

SnapshotKind kind_from(const std::string& text) {
  if (text == "active") return SnapshotKind::active;
  if (text == "view") return SnapshotKind::view;
  return SnapshotKind::committed;
}

SnapshotInfo info_from(const Statement& q) {
  SnapshotInfo info;
  info.id = q.integer(0);
  info.key = q.text(1);
  info.parent = q.text(2);
  info.kind = kind_from(q.text(3));
  info.created_at = q.integer(4);
  return info;
}

std::string random_name(std::string_view prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(prefix) + buf;
}

bool is_number(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Usage walk state; nftw has no user pointer.
thread_local SnapshotUsage* walk_usage = nullptr;
thread_local std::set<std::pair<dev_t, ino_t>>* walk_seen = nullptr;

int count_entry(const char*, const struct stat* st, int, FTW*) {
  if (st->st_nlink > 1 && !S_ISDIR(st->st_mode)) {
    if (!walk_seen->insert({st->st_dev, st->st_ino}).second) return 0;
  }
  walk_usage->inodes += 1;
  walk_usage->bytes += static_cast<int64_t>(st->st_blocks) * 512;
  return 0;
}

Result<SnapshotUsage> walk(const std::string& dir) {
  SnapshotUsage usage;
  std::set<std::pair<dev_t, ino_t>> seen;
  walk_usage = &usage;
  walk_seen = &seen;
  int rc = ::nftw(dir.c_str(), count_entry, 64, FTW_PHYS | FTW_MOUNT);
  walk_usage = nullptr;
  walk_seen = nullptr;
  if (rc != 0) return sys_fail("walk " + dir);
  return usage;
}

std::string join_options(const std::vector<std::string>& options) {
  std::string out;
  for (auto& o : options) {
    if (!out.empty()) out += ',';
    out += o;
  }
  return out;
}

}  // namespace

std::string_view to_string(SnapshotKind kind) {
  switch (kind) {
    case SnapshotKind::committed:
      return "committed";
    case SnapshotKind::active:
      return "active";
    case SnapshotKind::view:
      return "view";
  }
  return "committed";
}

Result<> mount_all(const std::vector<Mount>& mounts, const std::string& target) {
  for (auto& m : mounts) {
    if (m.type == "bind") {
      bool ro = std::find(m.options.begin(), m.options.end(), "ro") != m.options.end();
      if (::mount(m.source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return sys_fail("bind " + m.source + " on " + target);
      }
      if (ro && ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
        int err = errno;
        ::umount2(target.c_str(), MNT_DETACH);
        return sys_fail("remount " + target + " read-only", err);
      }
      continue;
    }
    std::string data = join_options(m.options);
    if (::mount(m.source.c_str(), target.c_str(), m.type.c_str(), 0, data.c_str()) != 0) {
      return sys_fail("mount " + m.type + " on " + target);
    }
  }
  return {};
}

OverlaySnapshotter::Staging::~Staging() {
  if (!dir_.empty()) (void)remove_tree(dir_);
}

Result<std::unique_ptr<OverlaySnapshotter>> OverlaySnapshotter::open(std::string root, std::shared_ptr<Database> db) {
  BERTH_TRY_VOID(make_dirs(root, 0700));
  BERTH_TRY_VOID(make_dirs(root + "/empty", 0755));
  BERTH_TRY_VOID(db->ensure_schema("snapshots", kSchemaVersion, kSchema));
  std::unique_ptr<OverlaySnapshotter> s(new OverlaySnapshotter(std::move(root), std::move(db)));
  BERTH_TRY_VOID(s->sweep());
  return s;
}

Result<> OverlaySnapshotter::sweep() {
  // Inside a write transaction no other process is between "rename into place" and
  // "commit the row", so a numbered dir without a row is truly an orphan.
  return db_->transaction([&]() -> Result<> {
    std::set<std::string> known;
    auto q = BERTH_TRY(db_->prepare("SELECT id FROM snapshots"));
    while (BERTH_TRY(q.step())) known.insert(std::to_string(q.integer(0)));
    DIR* dir = ::opendir(root_.c_str());
    if (!dir) return sys_fail("open " + root_);
    std::vector<std::string> doomed;
    while (dirent* ent = ::readdir(dir)) {
      std::string name = ent->d_name;
      if (is_number(name) && !known.contains(name)) {
        doomed.push_back(name);
      } else if (name.starts_with("staging-")) {
        UniqueFd fd(::openat(::dirfd(dir), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (fd && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) doomed.push_back(name);
      }
    }
    ::closedir(dir);
    for (auto& name : doomed) BERTH_TRY_VOID(remove_tree(root_ + "/" + name));
    return {};
  });
}

Result<OverlaySnapshotter::Staging> OverlaySnapshotter::stage() {
  std::string dir = root_ + "/" + random_name("staging-");
  if (::mkdir(dir.c_str(), 0700) != 0) return sys_fail("mkdir " + dir);
  UniqueFd lock(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0) {
    int err = errno;
    ::rmdir(dir.c_str());
    return sys_fail("lock " + dir, err);
  }
  Staging staging(dir, std::move(lock));
  if (::mkdir(staging.path().c_str(), 0755) != 0) return sys_fail("mkdir " + staging.path());
  return staging;
}

Result<> OverlaySnapshotter::commit(Staging& staging, const std::string& key, const std::string& parent) {
  if (staging.dir_.empty()) return invalid("snapshot " + key + ": staging dir already used");
  // Layer data must be on disk before the row that says it is there.
  if (::syncfs(staging.lock_.get()) != 0) return sys_fail("syncfs " + staging.dir_);
  std::string placed;
  auto r = db_->transaction([&]() -> Result<> {
    auto exists_q = BERTH_TRY(db_->prepare("SELECT kind FROM snapshots WHERE key = ?"));
    exists_q.bind(1, key);
    if (BERTH_TRY(exists_q.step())) {
      if (exists_q.text(0) != "committed") return fail(EEXIST, "snapshot " + key + " exists and is not committed");
      return {};  // committed by a concurrent pull: ours is dropped with the staging dir
    }
    if (!parent.empty()) {
      auto p = BERTH_TRY(stat(parent));
      if (p.kind != SnapshotKind::committed) return invalid("snapshot parent " + parent + " is not committed");
    }
    auto ins = BERTH_TRY(db_->prepare(
        "INSERT INTO snapshots (key, parent, kind, created_at) VALUES (?, ?, 'committed', ?) RETURNING id"));
    ins.bind(1, key);
    if (parent.empty()) {
      ins.bind_null(2);
    } else {
      ins.bind(2, parent);
    }
    ins.bind(3, static_cast<int64_t>(::time(nullptr)));
    if (!BERTH_TRY(ins.step())) return fail(EIO, "insert snapshot " + key + ": no id returned");
    std::string target = root_ + "/" + std::to_string(ins.integer(0));
    BERTH_TRY_VOID(ins.run());
    BERTH_TRY_VOID(remove_tree(target));  // an orphan from a crash may hold the reused id
    if (::rename(staging.dir_.c_str(), target.c_str()) != 0) return sys_fail("rename " + staging.dir_ + " to " + target);
    placed = target;
    return {};
  });
  if (!r) {
    if (!placed.empty()) (void)remove_tree(placed);
    return std::unexpected(r.error().wrap("commit snapshot " + key));
  }
  if (!placed.empty()) staging.dir_.clear();
  return {};
}

bool OverlaySnapshotter::exists(const std::string& key) { return stat(key).has_value(); }

Result<SnapshotInfo> OverlaySnapshotter::stat(const std::string& key) {
  auto q = BERTH_TRY(db_->prepare("SELECT id, key, parent, kind, created_at FROM snapshots WHERE key = ?"));
  q.bind(1, key);
  if (!BERTH_TRY(q.step())) return fail(ENOENT, "snapshot " + key + " not found");
  return info_from(q);
}

Result<std::vector<SnapshotInfo>> OverlaySnapshotter::list() {
  std::vector<SnapshotInfo> out;
  auto q = BERTH_TRY(db_->prepare("SELECT id, key, parent, kind, created_at FROM snapshots ORDER BY id"));
  while (BERTH_TRY(q.step())) out.push_back(info_from(q));
  return out;
}

Result<std::vector<int64_t>> OverlaySnapshotter::chain_ids_of(const std::string& key) {
  std::vector<int64_t> ids;
  std::string cur = key;
  while (!cur.empty()) {
    if (ids.size() > kMaxChainDepth) return fail(ELOOP, "snapshot chain of " + key + " is too deep");
    auto info = BERTH_TRY(stat(cur));
    ids.push_back(info.id);
    cur = info.parent;
  }
  return ids;
}

Result<std::vector<Mount>> OverlaySnapshotter::create_child(const std::string& key, const std::string& parent,
                                                            SnapshotKind kind) {
  if (key.empty()) return invalid("snapshot key must not be empty");
  if (kind == SnapshotKind::view && parent.empty()) return invalid("view " + key + ": needs a parent");
  SnapshotInfo info;
  std::string dir;
  auto r = db_->transaction([&]() -> Result<> {
    if (exists(key)) return fail(EEXIST, "snapshot " + key + " already exists");
    if (!parent.empty()) {
      auto p = stat(parent);
      if (!p) return fail(ENOENT, "snapshot parent " + parent + " not found");
      if (p->kind != SnapshotKind::committed) return invalid("snapshot parent " + parent + " is not committed");
    }
    auto ins = BERTH_TRY(db_->prepare(
        "INSERT INTO snapshots (key, parent, kind, created_at) VALUES (?, ?, ?, ?) RETURNING id"));
    ins.bind(1, key);
    if (parent.empty()) {
      ins.bind_null(2);
    } else {
      ins.bind(2, parent);
    }
    ins.bind(3, to_string(kind)).bind(4, static_cast<int64_t>(::time(nullptr)));
    if (!BERTH_TRY(ins.step())) return fail(EIO, "insert snapshot " + key + ": no id returned");
    info = SnapshotInfo{ins.integer(0), key, parent, kind, ::time(nullptr)};
    BERTH_TRY_VOID(ins.run());
    dir = root_ + "/" + std::to_string(info.id);
    BERTH_TRY_VOID(remove_tree(dir));
    if (::mkdir(dir.c_str(), 0700) != 0) return sys_fail("mkdir " + dir);
    if (kind == SnapshotKind::active) {
      if (::mkdir((dir + "/fs").c_str(), 0755) != 0) return sys_fail("mkdir " + dir + "/fs");
      if (::mkdir((dir + "/work").c_str(), 0700) != 0) return sys_fail("mkdir " + dir + "/work");
    }
    // The mount options must fit before anything is promised.
    auto mounts = mounts_for(info);
    if (!mounts) return std::unexpected(mounts.error());
    return {};
  });
  if (!r) {
    if (!dir.empty()) (void)remove_tree(dir);
    return std::unexpected(r.error().wrap("create snapshot " + key));
  }
  return mounts_for(info);
}

Result<std::vector<Mount>> OverlaySnapshotter::prepare(const std::string& key, const std::string& parent) {
  return create_child(key, parent, SnapshotKind::active);
}

Result<std::vector<Mount>> OverlaySnapshotter::view(const std::string& key, const std::string& parent) {
  return create_child(key, parent, SnapshotKind::view);
}

Result<std::vector<Mount>> OverlaySnapshotter::mounts(const std::string& key) { return mounts_for(BERTH_TRY(stat(key))); }

Result<std::vector<Mount>> OverlaySnapshotter::mounts_for(const SnapshotInfo& info) {
  std::vector<int64_t> lowers;
  if (info.kind == SnapshotKind::committed) {
    lowers = BERTH_TRY(chain_ids_of(info.key));
  } else if (!info.parent.empty()) {
    lowers = BERTH_TRY(chain_ids_of(info.parent));
  }
  std::string lowerdir = "lowerdir=";
  for (size_t i = 0; i < lowers.size(); ++i) {
    if (i) lowerdir += ':';
    lowerdir += fs_dir(lowers[i]);
  }
  Mount m{"overlay", "overlay", {}};
  if (info.kind == SnapshotKind::active) {
    // Always an overlay, even with no parent (an empty lower), so a mounted active
    // snapshot is always recognisable by its upperdir.
    if (lowers.empty()) lowerdir += root_ + "/empty";
    m.options = {lowerdir, "upperdir=" + root_ + "/" + std::to_string(info.id) + "/fs",
                 "workdir=" + root_ + "/" + std::to_string(info.id) + "/work"};
  } else {
    // Read-only overlays need two lowers; the empty dir makes up a single layer.
    if (lowers.size() == 1) lowerdir += ":" + root_ + "/empty";
    m.options = {lowerdir};
  }
  if (join_options(m.options).size() > kMaxMountData) {
    return fail(E2BIG, "snapshot " + info.key + ": " + std::to_string(lowers.size()) +
                           " layers do not fit in the kernel's mount options");
  }
  return std::vector<Mount>{std::move(m)};
}

Result<bool> OverlaySnapshotter::mounted(const SnapshotInfo& info) {
  auto mountinfo = BERTH_TRY(read_file("/proc/self/mountinfo"));
  std::string fs = fs_dir(info.id);
  for (auto& line : split(mountinfo, '\n')) {
    auto dash = line.find(" - overlay ");
    if (dash == std::string::npos) continue;
    // Super options are the last field: compare whole option values, not prefixes.
    auto options = split(line.substr(line.rfind(' ') + 1), ',');
    for (auto& opt : options) {
      if (opt == "upperdir=" + fs) return true;
      if (opt.starts_with("lowerdir=")) {
        for (auto& dir : split(opt.substr(9), ':')) {
          if (dir == fs) return true;
        }
      }
    }
  }
  return false;
}

Result<> OverlaySnapshotter::remove(const std::string& key) {
  int64_t id = 0;
  auto r = db_->transaction([&]() -> Result<> {
    auto info = stat(key);
    if (!info) return info.error().code == ENOENT ? Result<>{} : std::unexpected(info.error());
    auto children = BERTH_TRY(db_->prepare("SELECT key FROM snapshots WHERE parent = ? LIMIT 3"));
    children.bind(1, key);
    std::string names;
    while (BERTH_TRY(children.step())) names += (names.empty() ? "" : ", ") + children.text(0);
    if (!names.empty()) return fail(EBUSY, "snapshot " + key + " is in use by snapshots " + names);
    if (BERTH_TRY(mounted(*info))) return fail(EBUSY, "snapshot " + key + " is in use: mounted by a container");
    auto del = BERTH_TRY(db_->prepare("DELETE FROM snapshots WHERE key = ?"));
    del.bind(1, key);
    BERTH_TRY_VOID(del.run());
    id = info->id;
    return {};
  });
  if (!r) return std::unexpected(r.error().wrap("remove snapshot"));
  // A crash before this point leaves a dir without a row, which open() sweeps.
  if (id) BERTH_TRY_VOID(remove_tree(root_ + "/" + std::to_string(id)));
  return {};
}

Result<SnapshotUsage> OverlaySnapshotter::usage(const std::string& key) {
  auto info = BERTH_TRY(stat(key));
  return walk(root_ + "/" + std::to_string(info.id) + "/fs");
}

Result<SnapshotUsage> OverlaySnapshotter::total_usage() { return walk(root_); }

}  // namespace berth::storage

// Filesystem snapshots on overlayfs. A committed snapshot is one unpacked layer,
// keyed by the ChainID of the layer stack it completes, and shared by every image
// with that stack. An active snapshot is a container's writable upper over a
// committed chain; a view is a read-only look at one. Directories are named by
// numeric id (<root>/<id>/fs) so long chains still fit in one page of mount options.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "storage/database.h"

namespace berth::storage {

struct Mount {
  std::string type;    // "overlay" or "bind"
  std::string source;
  std::vector<std::string> options;  // "lowerdir=…", "ro", "rbind"
};

// Mounts `mounts` on target (the first one; berth always returns one).
Result<> mount_all(const std::vector<Mount>& mounts, const std::string& target);

enum class SnapshotKind { committed, active, view };
std::string_view to_string(SnapshotKind kind);

struct SnapshotInfo {
  int64_t id = 0;
  std::string key;
  std::string parent;  // empty for a base layer
  SnapshotKind kind = SnapshotKind::committed;
  int64_t created_at = 0;  // unix seconds
};

struct SnapshotUsage {
  int64_t bytes = 0;   // allocated blocks, each inode counted once
  int64_t inodes = 0;
};

class OverlaySnapshotter {
 public:
  // A directory a new layer is unpacked into before it is committed. It holds a
  // lock, so a sweep by another process never takes a staging dir still in use;
  // dropping it uncommitted removes the directory.
  class Staging {
   public:
    Staging(Staging&&) noexcept = default;
    Staging& operator=(Staging&&) noexcept = default;
    ~Staging();
    const std::string& path() const { return fs_path_; }  // unpack here

   private:
    friend class OverlaySnapshotter;
    Staging(std::string dir, UniqueFd lock) : dir_(std::move(dir)), fs_path_(dir_ + "/fs"), lock_(std::move(lock)) {}
    std::string dir_;
    std::string fs_path_;
    UniqueFd lock_;
  };

  // Creates <root> as needed and removes what a crash left: staging dirs nobody
  // holds and snapshot dirs with no database row.
  static Result<std::unique_ptr<OverlaySnapshotter>> open(std::string root, std::shared_ptr<Database> db);

  Result<Staging> stage();
  // Commits staging under `key` on top of committed `parent` (empty for a base
  // layer). When another pull committed the same key first, the staging copy is
  // dropped and that is success.
  Result<> commit(Staging& staging, const std::string& key, const std::string& parent);

  bool exists(const std::string& key);
  Result<SnapshotInfo> stat(const std::string& key);
  Result<std::vector<SnapshotInfo>> list();

  // A writable snapshot for a container over committed `parent`.
  Result<std::vector<Mount>> prepare(const std::string& key, const std::string& parent);
  // A read-only view of committed `parent`.
  Result<std::vector<Mount>> view(const std::string& key, const std::string& parent);
  Result<std::vector<Mount>> mounts(const std::string& key);

  // Refuses (EBUSY) while other snapshots sit on this one or while an overlay using
  // it is mounted; idempotent for a missing key.
  Result<> remove(const std::string& key);
  Result<SnapshotUsage> usage(const std::string& key);
  // Whole-store usage (what ImageFsInfo reports).
  Result<SnapshotUsage> total_usage();

  const std::string& root() const { return root_; }
  std::string fs_dir(int64_t id) const { return root_ + "/" + std::to_string(id) + "/fs"; }

 private:
  OverlaySnapshotter(std::string root, std::shared_ptr<Database> db) : root_(std::move(root)), db_(std::move(db)) {}
  Result<> sweep();
  Result<std::vector<int64_t>> chain_ids_of(const std::string& key);  // key first, base last
  Result<std::vector<Mount>> create_child(const std::string& key, const std::string& parent, SnapshotKind kind);
  Result<std::vector<Mount>> mounts_for(const SnapshotInfo& info);
  Result<bool> mounted(const SnapshotInfo& info);

  std::string root_;
  std::shared_ptr<Database> db_;
};

}  // namespace berth::storage

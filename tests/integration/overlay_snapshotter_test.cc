// The overlay snapshotter on the real kernel: committed layers stacked by overlayfs,
// container uppers, read-only views, removal refusing while in use, crash sweep.
#include "storage/overlay_snapshotter.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"

using namespace berth;
using namespace berth::storage;

namespace {

class OverlaySnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: overlay mounts";
    char tmpl[] = "/tmp/berth-snap-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = Database::open(dir_ + "/berth.db");
    ASSERT_TRUE(db) << db.error().message;
    db_ = *db;
    reopen();
  }
  void TearDown() override {
    for (auto& m : mounted_) ::umount2(m.c_str(), MNT_DETACH);
    snap_.reset();
    if (!dir_.empty()) (void)remove_tree(dir_);
  }
  void reopen() {
    auto s = OverlaySnapshotter::open(dir_ + "/snapshots", db_);
    ASSERT_TRUE(s) << s.error().message;
    snap_ = std::move(*s);
  }
  // Commits a layer holding `files` (path -> content).
  void commit_layer(const std::string& key, const std::string& parent, std::map<std::string, std::string> files) {
    auto staging = snap_->stage();
    ASSERT_TRUE(staging) << staging.error().message;
    for (auto& [path, content] : files) {
      ASSERT_TRUE(write_file_atomic(staging->path() + "/" + path, content, 0644));
    }
    auto r = snap_->commit(*staging, key, parent);
    ASSERT_TRUE(r) << r.error().message;
  }
  std::string mount_at(const std::vector<Mount>& mounts, const std::string& name) {
    std::string target = dir_ + "/" + name;
    EXPECT_TRUE(make_dirs(target));
    auto r = mount_all(mounts, target);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    if (r) mounted_.push_back(target);
    return target;
  }

  std::string dir_;
  std::shared_ptr<Database> db_;
  std::unique_ptr<OverlaySnapshotter> snap_;
  std::vector<std::string> mounted_;
};

std::string read_or_empty(const std::string& path) { return read_file(path).value_or(""); }

}  // namespace

TEST_F(OverlaySnapshotterTest, ContainerSeesLayersStackedAndWritesOnlyItsUpper) {
  commit_layer("L1", "", {{"a", "base"}, {"b", "base-b"}});
  commit_layer("L2", "L1", {{"a", "top"}});
  auto mounts = snap_->prepare("container-1", "L2");
  ASSERT_TRUE(mounts) << mounts.error().message;
  std::string root = mount_at(*mounts, "rootfs");
  EXPECT_EQ(read_or_empty(root + "/a"), "top");
  EXPECT_EQ(read_or_empty(root + "/b"), "base-b");
  ASSERT_TRUE(write_file_atomic(root + "/new", "written"));
  auto l1 = snap_->stat("L1");
  ASSERT_TRUE(l1);
  struct stat st{};
  EXPECT_NE(::stat((snap_->fs_dir(l1->id) + "/new").c_str(), &st), 0) << "write reached a committed layer";
  auto usage = snap_->usage("container-1");
  ASSERT_TRUE(usage);
  EXPECT_GE(usage->inodes, 2);  // fs dir and the new file
}

TEST_F(OverlaySnapshotterTest, ViewsAreReadOnlyEvenForOneLayer) {
  commit_layer("L1", "", {{"a", "base"}});
  auto view = snap_->view("view-1", "L1");
  ASSERT_TRUE(view) << view.error().message;
  std::string root = mount_at(*view, "view");
  EXPECT_EQ(read_or_empty(root + "/a"), "base");
  auto w = write_file_atomic(root + "/x", "nope");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, EROFS) << w.error().message;
}

TEST_F(OverlaySnapshotterTest, RemovalRefusesWhileInUse) {
  commit_layer("L1", "", {{"a", "base"}});
  auto mounts = snap_->prepare("c1", "L1");
  ASSERT_TRUE(mounts);
  std::string root = mount_at(*mounts, "rootfs");

  auto parent = snap_->remove("L1");
  ASSERT_FALSE(parent);
  EXPECT_EQ(parent.error().code, EBUSY);
  EXPECT_NE(parent.error().message.find("c1"), std::string::npos) << parent.error().message;

  auto active = snap_->remove("c1");
  ASSERT_FALSE(active);
  EXPECT_EQ(active.error().code, EBUSY) << active.error().message;

  ASSERT_EQ(::umount2(root.c_str(), 0), 0);
  mounted_.clear();
  ASSERT_TRUE(snap_->remove("c1"));
  ASSERT_TRUE(snap_->remove("L1"));
  ASSERT_TRUE(snap_->remove("L1"));  // idempotent
  EXPECT_TRUE(snap_->list()->empty());
}

TEST_F(OverlaySnapshotterTest, BadRequestsChangeNothing) {
  commit_layer("L1", "", {{"a", "base"}});
  EXPECT_FALSE(snap_->prepare("c1", "missing"));
  ASSERT_TRUE(snap_->prepare("c1", "L1"));
  EXPECT_FALSE(snap_->prepare("c1", "L1"));   // duplicate key
  EXPECT_FALSE(snap_->prepare("c2", "c1"));   // parent not committed
  EXPECT_FALSE(snap_->view("v", ""));
  auto staging = snap_->stage();
  ASSERT_TRUE(staging);
  EXPECT_FALSE(snap_->commit(*staging, "L9", "missing"));
  auto list = snap_->list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 2u);
}

TEST_F(OverlaySnapshotterTest, ConcurrentCommitOfTheSameLayerKeepsOne) {
  commit_layer("L1", "", {{"a", "first"}});
  commit_layer("L1", "", {{"a", "second"}});
  auto info = snap_->stat("L1");
  ASSERT_TRUE(info);
  EXPECT_EQ(read_or_empty(snap_->fs_dir(info->id) + "/a"), "first");
  EXPECT_EQ(snap_->list()->size(), 1u);
}

TEST_F(OverlaySnapshotterTest, ReopenSweepsWhatACrashLeft) {
  commit_layer("L1", "", {{"a", "base"}});
  // A staging dir whose process died (nobody holds its lock), and a numbered dir
  // renamed into place whose row never committed.
  ASSERT_TRUE(make_dirs(dir_ + "/snapshots/staging-dead/fs"));
  ASSERT_TRUE(make_dirs(dir_ + "/snapshots/999/fs"));
  // A staging dir still in use by a live pull must survive.
  auto live = snap_->stage();
  ASSERT_TRUE(live);
  reopen();
  struct stat st{};
  EXPECT_NE(::stat((dir_ + "/snapshots/staging-dead").c_str(), &st), 0);
  EXPECT_NE(::stat((dir_ + "/snapshots/999").c_str(), &st), 0);
  EXPECT_EQ(::stat(live->path().c_str(), &st), 0);
  auto info = snap_->stat("L1");
  ASSERT_TRUE(info);
  EXPECT_EQ(read_or_empty(snap_->fs_dir(info->id) + "/a"), "base");
}

TEST_F(OverlaySnapshotterTest, TooManyLayersFailBeforeAnythingIsCreated) {
  std::string parent;
  for (int i = 0; i < 120; ++i) {
    std::string key = "layer-with-a-long-key-" + std::to_string(i);
    commit_layer(key, parent, {{"f", std::to_string(i)}});
    parent = key;
  }
  size_t before = snap_->list()->size();
  auto r = snap_->prepare("c", parent);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, E2BIG) << r.error().message;
  EXPECT_EQ(snap_->list()->size(), before);
}

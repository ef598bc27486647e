// Unit tests for runtime/containerizer/image_user: image user strings resolved in a
// fake rootfs, and the rootfs's view of /etc/passwd even when it is a symlink that
// points out of the rootfs.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/containerizer/image_user.h"

namespace berth::pod {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

class ImageUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-image-user-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    rootfs_ = dir_ + "/rootfs";
    fs::create_directories(rootfs_ + "/etc");
    write(rootfs_ + "/etc/passwd",
          "# the image's users\n"
          "root:x:0:0:root:/root:/bin/sh\n"
          "\n"
          "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
          "broken line without fields\n"
          "bad:x:notanumber:1:::\n"
          "bob:x:1001:1002::/home/bob:/bin/sh\n"
          "alias:x:1000:1000::/elsewhere:/bin/sh\n");
    write(rootfs_ + "/etc/group",
          "root:x:0:\n"
          "wheel:x:10:alice,bob\n"
          "audio:x:29: alice \n"
          "alice:x:1000:\n"
          "staff:x:50:bob\n"
          "dup:x:10:alice\n"
          "bad:x:nope:alice\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, rootfs_;
};

TEST_F(ImageUserTest, EmptyMeansRootWithItsHome) {
  auto u = resolve_image_user(rootfs_, "");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_EQ(u->name, "root");
  EXPECT_EQ(u->home, "/root");
}

TEST_F(ImageUserTest, NameTakesUidGidAndHomeFromPasswd) {
  auto u = resolve_image_user(rootfs_, "bob");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->uid, 1001u);
  EXPECT_EQ(u->gid, 1002u);
  EXPECT_EQ(u->name, "bob");
  EXPECT_EQ(u->home, "/home/bob");
}

TEST_F(ImageUserTest, NumericUidUsesTheFirstEntryWithIt) {
  auto u = resolve_image_user(rootfs_, "1000");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1000u);
  EXPECT_EQ(u->name, "alice");
  EXPECT_EQ(u->home, "/home/alice");
}

TEST_F(ImageUserTest, NumericUidWithoutEntryGetsGidZero) {
  auto u = resolve_image_user(rootfs_, "4242");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->uid, 4242u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_EQ(u->name, "");
  EXPECT_EQ(u->home, "");
}

TEST_F(ImageUserTest, GroupPartOverridesThePrimaryGroup) {
  auto numeric = resolve_image_user(rootfs_, "4242:77");
  ASSERT_TRUE(numeric) << numeric.error().message;
  EXPECT_EQ(numeric->uid, 4242u);
  EXPECT_EQ(numeric->gid, 77u);

  auto named = resolve_image_user(rootfs_, "alice:staff");
  ASSERT_TRUE(named) << named.error().message;
  EXPECT_EQ(named->uid, 1000u);
  EXPECT_EQ(named->gid, 50u);

  auto mixed = resolve_image_user(rootfs_, "1001:wheel");
  ASSERT_TRUE(mixed) << mixed.error().message;
  EXPECT_EQ(mixed->uid, 1001u);
  EXPECT_EQ(mixed->gid, 10u);
  EXPECT_EQ(mixed->name, "bob");

  auto name_gid = resolve_image_user(rootfs_, "alice:55");
  ASSERT_TRUE(name_gid) << name_gid.error().message;
  EXPECT_EQ(name_gid->gid, 55u);
}

TEST_F(ImageUserTest, UnknownNamesAreENOENTWithTheName) {
  auto u = resolve_image_user(rootfs_, "mallory");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, ENOENT);
  EXPECT_THAT(u.error().message, HasSubstr("user \"mallory\" not found in the image's /etc/passwd"));

  auto g = resolve_image_user(rootfs_, "alice:nogroup");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ENOENT);
  EXPECT_THAT(g.error().message, HasSubstr("group \"nogroup\" not found in the image's /etc/group"));
}

TEST_F(ImageUserTest, MalformedStringsAreEINVAL) {
  for (const char* bad : {"a:b:c", ":10", "alice:", "99999999999", "4294967295", "1000:4294967295"}) {
    auto u = resolve_image_user(rootfs_, bad);
    ASSERT_FALSE(u) << bad;
    EXPECT_EQ(u.error().code, EINVAL) << bad << ": " << u.error().message;
  }
}

TEST_F(ImageUserTest, MissingDatabases) {
  fs::remove(rootfs_ + "/etc/passwd");
  fs::remove(rootfs_ + "/etc/group");
  auto numeric = resolve_image_user(rootfs_, "1000:1000");
  ASSERT_TRUE(numeric) << numeric.error().message;
  EXPECT_EQ(numeric->uid, 1000u);
  EXPECT_EQ(numeric->gid, 1000u);

  auto named = resolve_image_user(rootfs_, "alice");
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().code, ENOENT);
  EXPECT_THAT(named.error().message, HasSubstr("the image has no /etc/passwd"));

  auto group = resolve_image_user(rootfs_, "0:wheel");
  ASSERT_FALSE(group);
  EXPECT_EQ(group.error().code, ENOENT);
  EXPECT_THAT(group.error().message, HasSubstr("the image has no /etc/group"));

  auto groups = image_member_groups(rootfs_, "alice");
  ASSERT_TRUE(groups) << groups.error().message;
  EXPECT_THAT(*groups, IsEmpty());
}

TEST_F(ImageUserTest, SymlinkOutOfTheRootfsResolvesInsideIt) {
  // The host-side target holds a user the rootfs does not have; the in-root
  // target (where the link lands when ".." stops at the rootfs) holds another.
  write(dir_ + "/outside/passwd", "evil:x:6666:6666::/:/bin/sh\n");
  write(dir_ + "/outside/group", "evilgroup:x:6666:good\n");
  write(rootfs_ + "/outside/passwd", "good:x:4321:4321::/home/good:/bin/sh\n");
  write(rootfs_ + "/outside/group", "goodgroup:x:77:good\n");
  fs::remove(rootfs_ + "/etc/passwd");
  fs::remove(rootfs_ + "/etc/group");
  fs::create_symlink("../../outside/passwd", rootfs_ + "/etc/passwd");
  fs::create_symlink("/outside/group", rootfs_ + "/etc/group");

  auto good = resolve_image_user(rootfs_, "good");
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(good->uid, 4321u);
  EXPECT_EQ(good->home, "/home/good");
  auto evil = resolve_image_user(rootfs_, "evil");
  ASSERT_FALSE(evil);
  EXPECT_EQ(evil.error().code, ENOENT);

  auto groups = image_member_groups(rootfs_, "good");
  ASSERT_TRUE(groups) << groups.error().message;
  EXPECT_THAT(*groups, ElementsAre(77u));
}

TEST_F(ImageUserTest, NonRegularPasswdIsRefusedWithoutBlocking) {
  fs::remove(rootfs_ + "/etc/passwd");
  ASSERT_EQ(::mkfifo((rootfs_ + "/etc/passwd").c_str(), 0644), 0);
  auto u = resolve_image_user(rootfs_, "alice");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, EINVAL);
  EXPECT_THAT(u.error().message, HasSubstr("not a regular file"));
}

TEST_F(ImageUserTest, MemberGroupsAreSortedAndUnique) {
  auto alice = image_member_groups(rootfs_, "alice");
  ASSERT_TRUE(alice) << alice.error().message;
  EXPECT_THAT(*alice, ElementsAre(10u, 29u));
  auto bob = image_member_groups(rootfs_, "bob");
  ASSERT_TRUE(bob) << bob.error().message;
  EXPECT_THAT(*bob, ElementsAre(10u, 50u));
  auto nobody = image_member_groups(rootfs_, "");
  ASSERT_TRUE(nobody);
  EXPECT_THAT(*nobody, IsEmpty());
}

}  // namespace
}  // namespace berth::pod

// Unit tests for common/safe_path and common/file_util: lexical path cleaning,
// lookups and creation that stay inside a root whatever its symlinks say, atomic
// writes, rm -rf and the string helpers.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/safe_path.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

class SafePathTempDir {
 public:
  SafePathTempDir() {
    char tmpl[] = "/tmp/berth-safe-path-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~SafePathTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A unique name that exists nowhere yet, used to detect escapes to the host.
std::string unique_name(const char* prefix) {
  return std::string(prefix) + std::to_string(::getpid()) + "-" + std::to_string(::time(nullptr));
}

bool same_inode(int fd, const std::string& path) {
  struct stat a{}, b{};
  if (::fstat(fd, &a) != 0 || ::stat(path.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

bool exists_nofollow(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

// root/
//   etc/                 (a directory of the container, as in any image)
//   abs_etc -> /etc      (absolute: must mean root/etc)
//   up -> ../../..       (climbs: must stop at root)
//   a/b/
//   a/inner -> /a/b      (absolute, inside the root)
//   a/deep_up -> ../../../../..
class SafePathTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/root";
    fs::create_directories(root_ + "/etc");
    fs::create_directories(root_ + "/a/b");
    fs::create_symlink("/etc", root_ + "/abs_etc");
    fs::create_symlink("../../..", root_ + "/up");
    fs::create_symlink("/a/b", root_ + "/a/inner");
    fs::create_symlink("../../../../..", root_ + "/a/deep_up");
    root_fd_ = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    if (root_fd_ >= 0) ::close(root_fd_);
  }

  SafePathTempDir tmp_;
  std::string root_;
  int root_fd_ = -1;
};

// ---- clean_path / path_escapes ------------------------------------------------------

TEST(SafePathClean, Table) {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"", "."},
      {".", "."},
      {"./", "."},
      {"/", "/"},
      {"//", "/"},
      {"//a//b/", "/a/b"},
      {"/a/./b/../c", "/a/c"},
      {"/..", "/"},
      {"/../x", "/x"},
      {"/a/../../..", "/"},
      {"a/b/..", "a"},
      {"a/..", "."},
      {"../x", "../x"},
      {"../../a", "../../a"},
      {"a/../../b", "../b"},
      {"a/b/../../../c/./d/", "../c/d"},
      {"/proc/self/../1/ns", "/proc/1/ns"},
  };
  for (auto& c : cases) EXPECT_EQ(clean_path(c.in), c.out) << "clean_path(\"" << c.in << "\")";
}

TEST(SafePathClean, EscapesTable) {
  struct Case {
    const char* in;
    bool escapes;
  };
  const Case cases[] = {
      {"", false},           {".", false},           {"/", false},         {"a", false},
      {"/a/../b", false},    {"a/b/../../c", false}, {"a/..", false},      {"x/./../y", false},
      {"/etc/../etc", false}, {"..", true},          {"../x", true},       {"/../etc", true},
      {"a/../../x", true},   {"a/../..", true},      {"./..", true},       {"/a/b/../../../c", true},
      {"a/b/c/../../../..", true},
  };
  for (auto& c : cases) EXPECT_EQ(path_escapes(c.in), c.escapes) << "path_escapes(\"" << c.in << "\")";
}

// ---- open_in_root ----------------------------------------------------------------------

TEST_F(SafePathTree, AbsoluteSymlinkResolvesInsideRoot) {
  auto fd = open_in_root(root_fd_, "/abs_etc", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  EXPECT_TRUE(same_inode(fd->get(), root_ + "/etc"));
  EXPECT_FALSE(same_inode(fd->get(), "/etc"));
}

TEST_F(SafePathTree, ClimbingSymlinkStopsAtRoot) {
  for (const char* p : {"up", "/up", "a/deep_up", "../../..", "/a/../../..", ""}) {
    auto fd = open_in_root(root_fd_, p, O_PATH | O_DIRECTORY);
    ASSERT_TRUE(fd.has_value()) << p << ": " << fd.error().message;
    EXPECT_TRUE(same_inode(fd->get(), root_)) << p;
  }
  auto etc = open_in_root(root_fd_, "up/etc", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(etc.has_value());
  EXPECT_TRUE(same_inode(etc->get(), root_ + "/etc"));
  auto inner = open_in_root(root_fd_, "a/inner", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(inner.has_value());
  EXPECT_TRUE(same_inode(inner->get(), root_ + "/a/b"));
}

TEST_F(SafePathTree, HostFileBehindSymlinkIsNotFound) {
  // /etc/passwd exists on the host; root/etc/passwd does not.
  ASSERT_EQ(::access("/etc/passwd", F_OK), 0);
  auto fd = open_in_root(root_fd_, "abs_etc/passwd", O_RDONLY);
  ASSERT_FALSE(fd.has_value());
  EXPECT_EQ(fd.error().code, ENOENT);
  auto up = open_in_root(root_fd_, "up/etc/passwd", O_RDONLY);
  ASSERT_FALSE(up.has_value());
  EXPECT_EQ(up.error().code, ENOENT);
}

TEST_F(SafePathTree, CreatesFileThroughSymlinkInsideRoot) {
  std::string name = unique_name("berth-open-in-root-");
  auto fd = open_in_root(root_fd_, "abs_etc/" + name, O_WRONLY | O_CREAT, 0600);
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  EXPECT_TRUE(exists_nofollow(root_ + "/etc/" + name));
  EXPECT_FALSE(exists_nofollow("/etc/" + name));
  ::unlink(("/etc/" + name).c_str());  // never there, unless the test failed
}

// ---- make_dirs_in_root / make_target_in_root ------------------------------------------

TEST_F(SafePathTree, MakeDirsThroughAbsoluteSymlink) {
  std::string name = unique_name("berth-mkdir-in-root-");
  auto fd = make_dirs_in_root(root_fd_, "/abs_etc/" + name + "/sub");
  bool host_touched = exists_nofollow("/etc/" + name);
  if (host_touched) fs::remove_all("/etc/" + name);
  ASSERT_FALSE(host_touched) << "created /etc/" << name << " on the host";
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  EXPECT_TRUE(fs::is_directory(root_ + "/etc/" + name + "/sub"));
  EXPECT_TRUE(same_inode(fd->get(), root_ + "/etc/" + name + "/sub"));
}

TEST_F(SafePathTree, MakeDirsThroughClimbingSymlink) {
  auto fd = make_dirs_in_root(root_fd_, "up/newdir/sub");
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  EXPECT_TRUE(fs::is_directory(root_ + "/newdir/sub"));
  EXPECT_TRUE(same_inode(fd->get(), root_ + "/newdir/sub"));
  EXPECT_FALSE(exists_nofollow(tmp_.path() + "/newdir"));

  auto deep = make_dirs_in_root(root_fd_, "a/deep_up/../../deep2");
  ASSERT_TRUE(deep.has_value()) << deep.error().message;
  EXPECT_TRUE(fs::is_directory(root_ + "/deep2"));

  auto inner = make_dirs_in_root(root_fd_, "a/inner/c/d");
  ASSERT_TRUE(inner.has_value()) << inner.error().message;
  EXPECT_TRUE(fs::is_directory(root_ + "/a/b/c/d"));
}

TEST_F(SafePathTree, MakeDirsIsIdempotentAndRefusesFiles) {
  ASSERT_TRUE(make_dirs_in_root(root_fd_, "x/y").has_value());
  auto again = make_dirs_in_root(root_fd_, "/x/y/");
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(same_inode(again->get(), root_ + "/x/y"));
  std::ofstream(root_ + "/file") << "data";
  auto bad = make_dirs_in_root(root_fd_, "file/sub");
  EXPECT_FALSE(bad.has_value());
  EXPECT_TRUE(fs::is_regular_file(root_ + "/file"));
}

TEST_F(SafePathTree, DanglingSymlinkNeverCreatesOnHost) {
  // abs_tmp -> /<unique>, which exists neither in root nor on the host.
  std::string name = unique_name("berth-dangling-");
  fs::create_symlink("/" + name, root_ + "/dangling");
  auto fd = make_dirs_in_root(root_fd_, "dangling/sub");
  bool host_touched = exists_nofollow("/" + name);
  if (host_touched) fs::remove_all("/" + name);
  EXPECT_FALSE(host_touched) << "created /" << name << " on the host";
  if (fd) {
    EXPECT_TRUE(fs::is_directory(root_ + "/" + name + "/sub"));
  }
}

TEST_F(SafePathTree, MakeTargetFileThroughSymlinks) {
  std::string name = unique_name("berth-target-");
  auto fd = make_target_in_root(root_fd_, "/abs_etc/" + name + ".conf", false);
  bool host_touched = exists_nofollow("/etc/" + name + ".conf");
  if (host_touched) ::unlink(("/etc/" + name + ".conf").c_str());
  ASSERT_FALSE(host_touched);
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  EXPECT_TRUE(fs::is_regular_file(root_ + "/etc/" + name + ".conf"));
  EXPECT_EQ(fs::file_size(root_ + "/etc/" + name + ".conf"), 0u);
  EXPECT_TRUE(same_inode(fd->get(), root_ + "/etc/" + name + ".conf"));

  auto nested = make_target_in_root(root_fd_, "up/../../p/q/file", false);
  ASSERT_TRUE(nested.has_value()) << nested.error().message;
  EXPECT_TRUE(fs::is_regular_file(root_ + "/p/q/file"));

  auto dir = make_target_in_root(root_fd_, "up/mnt/point", true);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  EXPECT_TRUE(fs::is_directory(root_ + "/mnt/point"));
}

TEST_F(SafePathTree, MakeTargetKeepsExistingAndDoesNotFollowFinalSymlinkOut) {
  std::ofstream(root_ + "/etc/hosts") << "keep me";
  auto fd = make_target_in_root(root_fd_, "abs_etc/hosts", false);
  ASSERT_TRUE(fd.has_value());
  EXPECT_TRUE(same_inode(fd->get(), root_ + "/etc/hosts"));
  auto content = read_file(root_ + "/etc/hosts");
  ASSERT_TRUE(content.has_value());
  EXPECT_EQ(*content, "keep me");

  // A final component that is a symlink to a host path must not create that path.
  std::string target = "/tmp/" + unique_name("berth-target-escape-");
  fs::create_symlink(target, root_ + "/escape");
  auto esc = make_target_in_root(root_fd_, "escape", false);
  bool host_touched = exists_nofollow(target);
  if (host_touched) ::unlink(target.c_str());
  EXPECT_FALSE(host_touched) << "created " << target << " on the host";
  if (esc) {
    // If it succeeded, what it returns is inside root.
    EXPECT_TRUE(exists_nofollow(root_ + target));
  }
}

TEST(SafePathFdPath, Format) { EXPECT_EQ(fd_path(7), "/proc/self/fd/7"); }

// ---- file_util -------------------------------------------------------------------------

TEST(FileUtilAtomic, ReplacesContentAndLeavesNoTemp) {
  SafePathTempDir tmp;
  std::string path = tmp.path() + "/state.json";
  ASSERT_TRUE(write_file_atomic(path, "first version, longer").has_value());
  EXPECT_EQ(read_file(path).value_or("<err>"), "first version, longer");
  ASSERT_TRUE(write_file_atomic(path, "second").has_value());
  EXPECT_EQ(read_file(path).value_or("<err>"), "second");  // truncated, not overlaid
  EXPECT_FALSE(exists_nofollow(path + ".tmp"));
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(tmp.path())) names.push_back(e.path().filename());
  EXPECT_THAT(names, ElementsAre("state.json"));

  ASSERT_TRUE(write_file_atomic(path, "").has_value());
  EXPECT_EQ(read_file(path).value_or("<err>"), "");
}

TEST(FileUtilAtomic, ModeAndErrors) {
  SafePathTempDir tmp;
  std::string path = tmp.path() + "/f";
  ASSERT_TRUE(write_file_atomic(path, "x").has_value());
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);  // default 0600: private to the owner

  auto missing_dir = write_file_atomic(tmp.path() + "/no/such/dir/f", "x");
  ASSERT_FALSE(missing_dir.has_value());
  EXPECT_EQ(missing_dir.error().code, ENOENT);
}

TEST(FileUtilRead, ReadFileAndAt) {
  SafePathTempDir tmp;
  std::string big(100000, 'z');
  big[50000] = '\n';
  std::ofstream(tmp.path() + "/big", std::ios::binary) << big;
  EXPECT_EQ(read_file(tmp.path() + "/big").value_or(""), big);
  int dfd = ::open(tmp.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dfd, 0);
  EXPECT_EQ(read_file_at(dfd, "big").value_or(""), big);
  ::close(dfd);
  auto missing = read_file(tmp.path() + "/nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_THAT(missing.error().message, ::testing::HasSubstr("/nope"));
}

TEST(FileUtilDirs, MakeDirsAndRemoveTree) {
  SafePathTempDir tmp;
  std::string top = tmp.path() + "/t";
  ASSERT_TRUE(make_dirs(top + "/a/b/c").has_value());
  ASSERT_TRUE(make_dirs(top + "/a/b/c").has_value());  // existing is fine
  ASSERT_TRUE(make_dirs(top + "/x/y").has_value());
  std::ofstream(top + "/a/b/c/file") << "1";
  std::ofstream(top + "/a/file2") << "2";
  std::ofstream(top + "/x/y/.hidden") << "3";

  // A symlink to a directory outside the tree: removed as a link, its target kept.
  std::string outside = tmp.path() + "/outside";
  ASSERT_TRUE(make_dirs(outside).has_value());
  std::ofstream(outside + "/precious") << "keep";
  fs::create_symlink(outside, top + "/a/link");

  ASSERT_TRUE(remove_tree(top).has_value());
  EXPECT_FALSE(exists_nofollow(top));
  EXPECT_TRUE(fs::is_regular_file(outside + "/precious"));

  EXPECT_TRUE(remove_tree(top).has_value());  // already gone: fine
  std::ofstream(tmp.path() + "/plain") << "p";
  EXPECT_TRUE(remove_tree(tmp.path() + "/plain").has_value());
  EXPECT_FALSE(exists_nofollow(tmp.path() + "/plain"));
}

TEST(FileUtilDirs, RemoveTreeDoesNotFollowTopLevelSymlink) {
  SafePathTempDir tmp;
  std::string real = tmp.path() + "/real";
  ASSERT_TRUE(make_dirs(real + "/sub").has_value());
  fs::create_symlink(real, tmp.path() + "/alias");
  remove_tree(tmp.path() + "/alias");
  EXPECT_TRUE(fs::is_directory(real + "/sub"));
}

TEST(FileUtilStrings, Split) {
  EXPECT_THAT(split("a,b,c", ','), ElementsAre("a", "b", "c"));
  EXPECT_THAT(split("a,,b,", ','), ElementsAre("a", "b"));
  EXPECT_THAT(split("a,,b,", ',', false), ElementsAre("a", "", "b", ""));
  EXPECT_THAT(split(",a", ',', false), ElementsAre("", "a"));
  EXPECT_TRUE(split("", ',').empty());
  EXPECT_THAT(split("", ',', false), ElementsAre(""));
  EXPECT_THAT(split("/a//b/", '/'), ElementsAre("a", "b"));
  EXPECT_THAT(split("abc", ','), ElementsAre("abc"));
}

TEST(FileUtilStrings, TrimAndStartsWith) {
  EXPECT_EQ(trim("  x y \t\r\n"), "x y");
  EXPECT_EQ(trim("x"), "x");
  EXPECT_EQ(trim(" \t\n "), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim("\nmax 100000\n"), "max 100000");
  EXPECT_TRUE(starts_with("rslave", "r"));
  EXPECT_TRUE(starts_with("abc", ""));
  EXPECT_FALSE(starts_with("ab", "abc"));
  EXPECT_FALSE(starts_with("xabc", "abc"));
}

}  // namespace
}  // namespace berth

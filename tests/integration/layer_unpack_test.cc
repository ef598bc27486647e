// LayerUnpacker against real tar layers written by libarchive: file metadata, overlay
// whiteouts (checked through a real overlay mount), diffIDs over every compression,
// hostile names that try to write outside the target, broken streams, and flat
// memory on a large layer. Needs root (chown, mknod, trusted.* xattrs, mount).
#include "storage/layer_unpacker.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "storage/digest.h"
#include "tests/support/test_files.h"

namespace berth::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::slurp;

struct TarEntry {
  std::string name;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;
  std::string symlink;   // target text of a symlink
  std::string hardlink;  // earlier entry this one links to
  int64_t uid = 0;
  int64_t gid = 0;
  time_t mtime = 1600000000;
  long mtime_nsec = 0;
  unsigned rdev_major = 0;
  unsigned rdev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

TarEntry file(std::string name, std::string data, mode_t perm = 0644) {
  return TarEntry{.name = std::move(name), .perm = perm, .data = std::move(data)};
}
TarEntry dir(std::string name, mode_t perm = 0755) {
  return TarEntry{.name = std::move(name), .type = AE_IFDIR, .perm = perm};
}
TarEntry symlink(std::string name, std::string target) {
  return TarEntry{.name = std::move(name), .type = AE_IFLNK, .perm = 0777, .symlink = std::move(target)};
}
TarEntry hardlink(std::string name, std::string target) {
  return TarEntry{.name = std::move(name), .hardlink = std::move(target)};
}

la_ssize_t append_cb(struct archive*, void* ctx, const void* buf, size_t n) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

void write_entry(struct archive* a, const TarEntry& t) {
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, t.name.c_str());
  archive_entry_set_filetype(e, t.type);
  archive_entry_set_perm(e, t.perm);
  archive_entry_set_uid(e, t.uid);
  archive_entry_set_gid(e, t.gid);
  archive_entry_set_mtime(e, t.mtime, t.mtime_nsec);
  archive_entry_set_size(e, t.type == AE_IFREG && t.hardlink.empty() ? static_cast<la_int64_t>(t.data.size()) : 0);
  if (!t.symlink.empty()) archive_entry_set_symlink(e, t.symlink.c_str());
  if (!t.hardlink.empty()) archive_entry_set_hardlink(e, t.hardlink.c_str());
  if (t.type == AE_IFCHR || t.type == AE_IFBLK) {
    archive_entry_set_rdevmajor(e, t.rdev_major);
    archive_entry_set_rdevminor(e, t.rdev_minor);
  }
  for (auto& [k, v] : t.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
  ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << t.name << ": " << archive_error_string(a);
  if (!t.data.empty() && t.hardlink.empty()) {
    ASSERT_EQ(archive_write_data(a, t.data.data(), t.data.size()), static_cast<la_ssize_t>(t.data.size()));
  }
  archive_entry_free(e);
}

// An uncompressed pax tar, padded to libarchive's 10 KiB blocks as tar(1) pads: the
// padding after the end blocks is part of the diffID.
std::string make_tar(const std::vector<TarEntry>& entries, int block_size = 10240) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  archive_write_add_filter_none(a);
  archive_write_set_bytes_per_block(a, block_size);
  archive_write_open(a, &out, nullptr, append_cb, nullptr);
  for (auto& t : entries) write_entry(a, t);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

enum class Filter { none, gzip, zstd };

// Compresses exactly `data` with libarchive's filters ("raw" format: the bytes as is),
// so the diffID to expect is sha256(data).
std::string compress(const std::string& data, Filter filter) {
  if (filter == Filter::none) return data;
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  if (filter == Filter::gzip) archive_write_add_filter_gzip(a);
  if (filter == Filter::zstd) archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);  // no zero padding after the stream
  archive_write_open(a, &out, nullptr, append_cb, nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "layer.tar");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_write_close(a);
  archive_write_free(a);
  archive_entry_free(e);
  return out;
}

// Text that compresses, but not to nothing: truncating or corrupting the middle of the
// compressed stream hits real deflate/zstd blocks.
std::string noise_text(size_t size, uint64_t seed) {
  std::string out;
  out.reserve(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  while (out.size() < size) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    out += "word" + std::to_string(x % 5000) + ((x >> 20) % 8 == 0 ? "\n" : " ");
  }
  out.resize(size);
  return out;
}

UniqueFd memfd_with(const std::string& data) {
  UniqueFd fd(::memfd_create("layer", MFD_CLOEXEC));
  EXPECT_TRUE(fd);
  EXPECT_EQ(::write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

std::string xattr_of(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<") + std::strerror(errno) + ">" : std::string(buf, static_cast<size_t>(n));
}

int64_t vm_hwm_kib() {
  for (auto& line : testing::lines_of(slurp("/proc/self/status").value_or("")))
    if (line.starts_with("VmHWM:")) return std::stoll(testing::words(line).at(1));
  return -1;
}

class LayerUnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "*** LayerUnpack tests need root (chown, mknod, trusted.* xattrs, overlay mount): SKIPPED ***";
    char tmpl[] = "/tmp/berth-unpack-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    outside_ = base_ + "/outside";
    fs::create_directories(outside_);
    ASSERT_TRUE(testing::write_str(outside_ + "/file", "sentinel"));
    fs::create_directories(base_ + "/t");
    before_ = snapshot_outside();
  }

  void TearDown() override {
    if (!mounted_.empty()) ::umount2(mounted_.c_str(), MNT_DETACH);
    if (!base_.empty()) {
      // The sentinel must be untouched by every test, not only the hostile ones.
      EXPECT_EQ(snapshot_outside(), before_);
      std::error_code ec;
      fs::remove_all(base_, ec);
    }
  }

  // A fresh empty target directory.
  std::string new_target() {
    std::string t = base_ + "/t/layer" + std::to_string(targets_++);
    fs::create_directory(t);
    return t;
  }

  Result<LayerUnpackResult> unpack(const std::string& blob, const std::string& target,
                                   const LayerUnpackOptions& options = {}) {
    auto fd = memfd_with(blob);
    return LayerUnpacker::unpack(fd.get(), target, options);
  }

  // Everything under base_ except the targets: path, type and content.
  std::map<std::string, std::string> snapshot_outside() {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(base_); it != fs::recursive_directory_iterator(); ++it) {
      if (it->path() == base_ + "/t") {
        it.disable_recursion_pending();
        continue;
      }
      auto st = fs::symlink_status(it->path());
      std::string desc = std::to_string(static_cast<int>(st.type()));
      if (st.type() == fs::file_type::regular) desc += ":" + slurp(it->path()).value_or("?");
      out[it->path()] = desc;
    }
    struct stat hs;
    if (::stat("/etc/hostname", &hs) == 0) out["/etc/hostname nlink"] = std::to_string(hs.st_nlink);
    return out;
  }

  // Unpacking must fail with `message`, and nothing outside the target may change.
  void expect_rejected(const std::vector<TarEntry>& entries, const std::string& message) {
    std::string target = new_target();
    auto r = unpack(make_tar(entries), target);
    ASSERT_FALSE(r) << "unpacked a hostile layer into " << target;
    EXPECT_THAT(r.error().message, HasSubstr(message));
    EXPECT_EQ(snapshot_outside(), before_);
    EXPECT_FALSE(fs::exists(base_ + "/escape"));
    EXPECT_FALSE(fs::exists(base_ + "/t/escape"));
    EXPECT_FALSE(fs::exists(outside_ + "/pwned"));
  }

  std::string base_;
  std::string outside_;
  std::string mounted_;
  std::map<std::string, std::string> before_;
  int targets_ = 0;
};

TEST_F(LayerUnpackTest, FilesKeepContentOwnerModeTimesAndXattrs) {
  // VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_RAW (13).
  const std::string caps("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  TarEntry root = dir("./", 0711);
  TarEntry etc = dir("etc/");
  etc.mtime = 1500000000;
  etc.mtime_nsec = 250000000;
  TarEntry hello = file("./etc/hello", "hello\n", 0640);
  hello.uid = 1234;
  hello.gid = 5678;
  hello.mtime_nsec = 123456789;
  hello.xattrs = {{"user.note", "kept"}};
  TarEntry su = file("bin/su", "#!/bin/true\n", 04755);
  su.uid = 1000;
  su.gid = 1000;
  TarEntry ping = file("bin/ping", "ping", 0755);
  ping.xattrs = {{"security.capability", caps}};
  TarEntry dangling = symlink("etc/dangling", "../no/such/target");
  dangling.uid = 42;
  dangling.xattrs = {{"user.on_symlink", "dropped"}};  // the kernel refuses user.* on symlinks
  TarEntry fifo{.name = "run/fifo", .type = AE_IFIFO, .perm = 0620};
  TarEntry null{.name = "dev/null", .type = AE_IFCHR, .perm = 0666, .rdev_major = 1, .rdev_minor = 3};
  TarEntry loop{.name = "dev/loop0", .type = AE_IFBLK, .perm = 0660, .rdev_major = 7, .rdev_minor = 0};

  std::string target = new_target();
  auto r = unpack(make_tar({root, etc, hello, hardlink("etc/hello2", "etc/hello"), su, ping, dangling,
                            symlink("abs", "/etc/passwd"), hardlink("abs2", "abs"), fifo, null, loop}),
                  target);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->entries, 12);

  struct stat st;
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);

  EXPECT_EQ(slurp(target + "/etc/hello"), "hello\n");
  ASSERT_EQ(::lstat((target + "/etc/hello").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(xattr_of(target + "/etc/hello", "user.note"), "kept");

  struct stat st2;
  ASSERT_EQ(::lstat((target + "/etc/hello2").c_str(), &st2), 0);
  EXPECT_EQ(st2.st_ino, st.st_ino);

  ASSERT_EQ(::lstat((target + "/bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u) << "chown after chmod would have cleared setuid";
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(xattr_of(target + "/bin/ping", "security.capability"), caps);

  ASSERT_EQ(::lstat((target + "/etc/dangling").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_uid, 42u);
  EXPECT_EQ(fs::read_symlink(target + "/etc/dangling"), "../no/such/target");
  EXPECT_EQ(fs::read_symlink(target + "/abs"), "/etc/passwd");
  ASSERT_EQ(::lstat((target + "/abs").c_str(), &st), 0);
  ASSERT_EQ(::lstat((target + "/abs2").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino) << "a hard link to a symlink links the symlink itself";

  // Directory times survive the children created after them.
  ASSERT_EQ(::stat((target + "/etc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 250000000);

  ASSERT_EQ(::lstat((target + "/run/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
  ASSERT_EQ(::lstat((target + "/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_EQ(::lstat((target + "/dev/loop0").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 0));
  // Implied parents (bin/, run/, dev/) are 0755 whatever the umask.
  ASSERT_EQ(::stat((target + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(LayerUnpackTest, RepeatedNamesLaterWins) {
  std::string target = new_target();
  auto r = unpack(make_tar({
                      file("x", "first"),
                      dir("x"),  // file replaced by a directory
                      file("x/child", "c"),
                      file("x", "last"),  // non-empty directory replaced by a file
                      dir("d"),
                      file("d/keep", "k"),
                      dir("d", 0700),  // directory over directory keeps its children
                      symlink("l", "d"),
                      file("l", "not a link"),  // the old symlink is replaced, never followed
                      dir("b"),
                      dir("a"),
                      file("a/old", "o"),
                      symlink("a", "b"),  // a directory already used as a parent becomes a link
                      file("a/new", "n"),
                  }),
                  target);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(slurp(target + "/x"), "last");
  EXPECT_EQ(slurp(target + "/d/keep"), "k");
  struct stat st;
  ASSERT_EQ(::stat((target + "/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::lstat((target + "/l").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(slurp(target + "/l"), "not a link");
  EXPECT_TRUE(fs::is_symlink(target + "/a"));
  EXPECT_EQ(slurp(target + "/b/new"), "n");
  EXPECT_FALSE(fs::exists(target + "/b/old"));
}

TEST_F(LayerUnpackTest, SymlinksInsideTheLayerAreFollowedForParents) {
  std::string target = new_target();
  auto r = unpack(make_tar({dir("usr"), dir("usr/lib"), symlink("lib", "usr/lib"), file("lib/libc.so", "elf"),
                            dir("sub"), symlink("sub/up", "../usr"), file("sub/up/lib/deep", "d"),
                            symlink("usr/self", "/usr")}),  // absolute: stored, never followed
                  target);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(slurp(target + "/usr/lib/libc.so"), "elf");
  EXPECT_EQ(slurp(target + "/usr/lib/deep"), "d");
  EXPECT_TRUE(fs::is_symlink(target + "/lib"));
}

TEST_F(LayerUnpackTest, SparseFileKeepsItsHoles) {
  // A pax sparse entry: 4 KiB of data at 4 MiB inside an 8 MiB file.
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  archive_write_add_filter_none(a);
  archive_write_open(a, &out, nullptr, append_cb, nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "sparse");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, 8 << 20);
  archive_entry_sparse_add_entry(e, 4 << 20, 4096);
  ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
  // The writer takes the whole logical content and drops what falls in holes.
  std::string chunk(4096, 'S');
  std::string logical(8 << 20, '\0');
  logical.replace(4 << 20, chunk.size(), chunk);
  archive_write_data(a, logical.data(), logical.size());
  archive_write_close(a);
  archive_write_free(a);
  archive_entry_free(e);
  ASSERT_LT(out.size(), 1u << 20) << "libarchive wrote the holes out";

  std::string target = new_target();
  auto r = unpack(out, target);
  ASSERT_TRUE(r) << r.error().message;
  struct stat st;
  ASSERT_EQ(::stat((target + "/sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 8 << 20);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "holes were written as zeros";
  EXPECT_TRUE(slurp(target + "/sparse") == logical) << "content differs";
}

TEST_F(LayerUnpackTest, DiffIdIsSha256OfTheUncompressedTar) {
  const std::string tar = make_tar({dir("etc"), file("etc/data", noise_text(200 << 10, 1)), file("etc/b", "b")});
  ASSERT_EQ(tar.size() % 10240, 0u);
  const Digest want = sha256_of(tar);
  for (Filter f : {Filter::none, Filter::gzip, Filter::zstd}) {
    SCOPED_TRACE(static_cast<int>(f));
    std::string target = new_target();
    auto r = unpack(compress(tar, f), target, {.expected_diff_id = want});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->diff_id.str(), want.str());
    EXPECT_EQ(r->tar_size, static_cast<int64_t>(tar.size()));
    EXPECT_EQ(r->entries, 3);
    EXPECT_EQ(slurp(target + "/etc/data"), noise_text(200 << 10, 1));
  }
  // Megabytes of padding after the end blocks: libarchive stops reading at the end
  // blocks, the unpacker must still hash the rest.
  const std::string padded = make_tar({file("a", "a")}, 8 << 20);
  ASSERT_EQ(padded.size(), 8u << 20);
  for (Filter f : {Filter::none, Filter::gzip, Filter::zstd}) {
    SCOPED_TRACE(static_cast<int>(f));
    auto r = unpack(compress(padded, f), new_target());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->diff_id.str(), sha256_of(padded).str());
    EXPECT_EQ(r->tar_size, 8 << 20);
  }
  // The compression named explicitly, and gzip members concatenated (pigz).
  std::string half = tar.substr(0, tar.size() / 2);
  std::string two_members = compress(half, Filter::gzip) + compress(tar.substr(half.size()), Filter::gzip);
  auto r = unpack(two_members, new_target(), {.compression = LayerCompression::gzip});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->diff_id.str(), want.str());
  // Zero padding after the last member (tape blocking) is tolerated, like gzip(1).
  r = unpack(compress(tar, Filter::gzip) + std::string(5000, '\0'), new_target());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->diff_id.str(), want.str());
  // An empty blob is an empty layer.
  r = unpack("", new_target());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->diff_id.str(), sha256_of("").str());
  EXPECT_EQ(r->entries, 0);
}

TEST_F(LayerUnpackTest, DiffIdMismatchIsAnError) {
  const std::string tar = make_tar({file("a", "a")});
  const Digest wrong = sha256_of("something else");
  auto r = unpack(compress(tar, Filter::gzip), new_target(), {.expected_diff_id = wrong});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr(wrong.str()));
  EXPECT_THAT(r.error().message, HasSubstr(sha256_of(tar).str()));
}

TEST_F(LayerUnpackTest, BrokenStreamsAreErrors) {
  const std::string tar = make_tar({file("data", noise_text(256 << 10, 2)), file("after", "x")});
  std::string gz = compress(tar, Filter::gzip);
  std::string zst = compress(tar, Filter::zstd);

  auto r = unpack(gz.substr(0, gz.size() / 2), new_target());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("gzip stream truncated"));

  std::string corrupt = gz;
  for (size_t i = corrupt.size() / 2; i < corrupt.size() / 2 + 16; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  r = unpack(corrupt, new_target());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("gzip stream corrupt"));

  r = unpack(gz + "garbage", new_target());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("gzip stream corrupt"));

  r = unpack(zst.substr(0, zst.size() / 2), new_target());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("zstd stream truncated"));

  // A tar cut inside a file's data.
  r = unpack(tar.substr(0, 100 << 10), new_target());
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("runcated"));

  r = unpack(std::string(4096, 'x'), new_target());
  ASSERT_FALSE(r) << "not a tar";
}

TEST_F(LayerUnpackTest, WhiteoutsTakeOverlayForm) {
  TarEntry forged = dir("forged");
  forged.xattrs = {{"trusted.overlay.opaque", "y"}, {"trusted.overlay.redirect", "/etc"}, {"user.fine", "1"}};
  std::string target = new_target();
  auto r = unpack(make_tar({file("gone", "present until the whiteout"), file(".wh.gone", ""), dir("d"),
                            file("d/.wh..wh..opq", ""), file("sub/.wh.lower_only", ""), file(".wh..wh.plnk", ""),
                            forged}),
                  target);
  ASSERT_TRUE(r) << r.error().message;
  struct stat st;
  ASSERT_EQ(::lstat((target + "/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  ASSERT_EQ(::lstat((target + "/sub/lower_only").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(xattr_of(target + "/d", "trusted.overlay.opaque"), "y");
  EXPECT_FALSE(fs::exists(fs::symlink_status(target + "/d/.wh..wh..opq")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(target + "/.wh..wh.plnk")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(target + "/.wh.gone")));
  EXPECT_EQ(xattr_of(target + "/forged", "trusted.overlay.opaque"), "<No data available>");
  EXPECT_EQ(xattr_of(target + "/forged", "trusted.overlay.redirect"), "<No data available>");
  EXPECT_EQ(xattr_of(target + "/forged", "user.fine"), "1");
}

TEST_F(LayerUnpackTest, OverlayMountOfTwoLayersHonoursWhiteouts) {
  std::string lower = new_target();
  std::string upper = new_target();
  auto r = unpack(compress(make_tar({file("a", "A"), dir("d"), file("d/x", "X"), file("keep", "K")}), Filter::gzip),
                  lower);
  ASSERT_TRUE(r) << r.error().message;
  r = unpack(compress(make_tar({file(".wh.a", ""), dir("d"), file("d/.wh..wh..opq", ""), file("d/y", "Y")}),
                      Filter::zstd),
             upper);
  ASSERT_TRUE(r) << r.error().message;

  std::string merged = base_ + "/t/merged";
  fs::create_directory(merged);
  std::string opts = "lowerdir=" + upper + ":" + lower;
  ASSERT_EQ(::mount("overlay", merged.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0)
      << "mount overlay " << opts << ": " << std::strerror(errno);
  mounted_ = merged;
  EXPECT_FALSE(fs::exists(fs::symlink_status(merged + "/a"))) << "whiteout did not hide a";
  EXPECT_FALSE(fs::exists(fs::symlink_status(merged + "/d/x"))) << "opaque d did not hide d/x";
  EXPECT_EQ(slurp(merged + "/d/y"), "Y");
  EXPECT_EQ(slurp(merged + "/keep"), "K");
  EXPECT_EQ(::umount2(merged.c_str(), 0), 0);
  mounted_.clear();
}

TEST_F(LayerUnpackTest, NamesLeavingTheTargetAreRejected) {
  expect_rejected({file("ok", "1"), file("../escape", "x")}, "entry ../escape: path has a '..' component");
  expect_rejected({file("a/../../escape", "x")}, "entry a/../../escape: path has a '..' component");
  expect_rejected({file("/abs/path", "x")}, "entry /abs/path: absolute path");
  expect_rejected({symlink("evil", outside_), file("evil/pwned", "x")},
                  "entry evil/pwned: path escapes the layer through a symlink");
  expect_rejected({symlink("evil", "../../.."), file("evil/pwned", "x")},
                  "entry evil/pwned: path escapes the layer through a symlink");
  expect_rejected({dir("a"), symlink("a/evil", "../../.."), file("a/evil/t/escape", "x")},
                  "path escapes the layer through a symlink");
  expect_rejected({hardlink("x", "../../outside/file")}, "hard link x -> ../../outside/file: path has a '..'");
  expect_rejected({hardlink("x", "/etc/hostname")}, "hard link x -> /etc/hostname: absolute path");
  expect_rejected({hardlink("x", "missing")}, "hard link x -> missing: target not in this layer");
  expect_rejected({hardlink("x", "no/such/dir/file")}, "hard link x -> no/such/dir/file: target not in this layer");
  expect_rejected({symlink("evil", outside_), hardlink("x", "evil/file")},
                  "hard link x -> evil/file: path escapes the layer through a symlink");
  expect_rejected({dir("d"), hardlink("x", "d")}, "hard link x -> d: target is a directory");
}

// 256 MiB through a pipe, produced while it is consumed: the unpacker must stream it.
TEST_F(LayerUnpackTest, LargeLayerStreamsInConstantMemory) {
  constexpr size_t kChunk = 1 << 20;
  constexpr size_t kChunks = 256;
  auto chunk_data = [](size_t i, std::string& buf) {
    buf.resize(kChunk);
    uint64_t x = i * 0x9e3779b97f4a7c15ULL + 7;
    for (size_t off = 0; off < kChunk; off += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      std::memcpy(buf.data() + off, &x, 8);
    }
  };
  ::signal(SIGPIPE, SIG_IGN);  // the writer sees EPIPE, not death, if the reader gives up
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  ::fcntl(wr.get(), F_SETPIPE_SZ, 1 << 20);

  struct Sink {
    int fd;
    Sha256 hash;
  } sink{wr.get(), {}};
  Digest written;
  std::thread writer([&] {
    struct archive* a = archive_write_new();
    archive_write_set_format_pax(a);
    archive_write_add_filter_none(a);
    archive_write_set_bytes_per_block(a, 64 << 10);
    auto cb = [](struct archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
      auto* s = static_cast<Sink*>(ctx);
      s->hash.update(buf, n);
      for (size_t done = 0; done < n;) {
        ssize_t w = ::write(s->fd, static_cast<const char*>(buf) + done, n - done);
        if (w < 0) return -1;
        done += static_cast<size_t>(w);
      }
      return static_cast<la_ssize_t>(n);
    };
    archive_write_open(a, &sink, nullptr, cb, nullptr);
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "big");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(kChunk * kChunks));
    archive_write_header(a, e);
    std::string buf;
    for (size_t i = 0; i < kChunks; ++i) {
      chunk_data(i, buf);
      archive_write_data(a, buf.data(), buf.size());
    }
    archive_write_close(a);
    archive_write_free(a);
    archive_entry_free(e);
    written = sink.hash.finish();
    wr.reset();
  });

  EXPECT_TRUE(testing::write_str("/proc/self/clear_refs", "5")) << "reset VmHWM";
  int64_t hwm_before = vm_hwm_kib();
  std::string target = new_target();
  auto r = LayerUnpacker::unpack(rd.get(), target);
  int64_t hwm_after = vm_hwm_kib();
  rd.reset();  // a failed unpack must not leave the writer blocked
  writer.join();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->diff_id.str(), written.str());
  EXPECT_GT(r->tar_size, static_cast<int64_t>(kChunk * kChunks));
  EXPECT_LT(hwm_after - hwm_before, 64 << 10) << "peak RSS grew by " << (hwm_after - hwm_before) << " KiB";

  struct stat st;
  ASSERT_EQ(::stat((target + "/big").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(kChunk * kChunks));
  UniqueFd big(::open((target + "/big").c_str(), O_RDONLY | O_CLOEXEC));
  std::string want, got(kChunk, '\0');
  for (size_t i : {size_t{0}, kChunks / 2, kChunks - 1}) {
    chunk_data(i, want);
    ASSERT_EQ(::pread(big.get(), got.data(), kChunk, static_cast<off_t>(i * kChunk)), static_cast<ssize_t>(kChunk));
    EXPECT_TRUE(got == want) << "chunk " << i << " differs";
  }
}

}  // namespace
}  // namespace berth::storage

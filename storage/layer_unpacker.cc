#include "storage/layer_unpacker.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/file_util.h"
#include "common/log.h"
#include "common/safe_path.h"
#include "common/unique_fd.h"

namespace berth::storage {
namespace {

// Big enough that syscalls, hashing and inflate run on large runs; small enough that
// memory stays flat whatever the layer size.
constexpr size_t kChunk = 1 << 20;

// ---------------------------------------------------------------------------------
// The uncompressed tar stream of a layer blob. Every byte is hashed as it is produced,
// so the diffID covers the whole stream whether libarchive looks at it or not.
class TarStream {
 public:
  explicit TarStream(int fd) : fd_(fd), in_(new char[kChunk]) {}
  ~TarStream() {
    if (inflating_) ::inflateEnd(&z_);
    if (zstd_) ::ZSTD_freeDStream(zstd_);
  }
  TarStream(const TarStream&) = delete;
  TarStream& operator=(const TarStream&) = delete;

  Result<> start(LayerCompression compression);
  // The next run of uncompressed bytes, valid until the next call; empty at the end.
  Result<std::span<const char>> next();
  // Reads (and hashes) whatever follows the tar end blocks.
  Result<> drain();

  const std::optional<Error>& error() const { return error_; }
  int64_t size() const { return size_; }
  Digest finish() { return hash_.finish(); }

 private:
  Result<std::span<const char>> next_plain();
  Result<std::span<const char>> next_gzip();
  Result<std::span<const char>> next_zstd();
  Result<bool> fill();

  int fd_;
  std::unique_ptr<char[]> in_;
  std::unique_ptr<char[]> out_;
  size_t in_pos_ = 0;
  size_t in_len_ = 0;
  bool eof_ = false;
  LayerCompression kind_ = LayerCompression::none;
  z_stream z_{};
  bool inflating_ = false;
  ZSTD_DStream* zstd_ = nullptr;
  bool out_full_ = false;  // the decoder may hold output even with no input left
  bool unit_done_ = false;  // a gzip member or zstd frame ended with the input so far
  bool padding_ = false;    // only zeros may follow
  std::optional<Error> error_;
  Sha256 hash_;
  int64_t size_ = 0;
};

Result<> TarStream::start(LayerCompression compression) {
  // The magic needs 4 bytes; a pipe may deliver fewer per read.
  while (in_len_ < 4 && !eof_) {
    ssize_t n = ::read(fd_, in_.get() + in_len_, kChunk - in_len_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail("layer: read blob");
    if (n == 0) eof_ = true;
    in_len_ += static_cast<size_t>(n);
  }
  auto* b = reinterpret_cast<const unsigned char*>(in_.get());
  kind_ = compression;
  if (compression == LayerCompression::detect) {
    if (in_len_ >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
      kind_ = LayerCompression::gzip;
    } else if (in_len_ >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) {
      kind_ = LayerCompression::zstd;
    } else {
      kind_ = LayerCompression::none;
    }
  }
  if (kind_ == LayerCompression::gzip) {
    // 16 + MAX_WBITS: gzip framing only, header and CRC checked by zlib.
    if (::inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) return fail(ENOMEM, "layer: cannot start gzip decoder");
    inflating_ = true;
  } else if (kind_ == LayerCompression::zstd) {
    zstd_ = ::ZSTD_createDStream();
    if (!zstd_) return fail(ENOMEM, "layer: cannot start zstd decoder");
    ::ZSTD_initDStream(zstd_);
  }
  if (kind_ != LayerCompression::none) out_.reset(new char[kChunk]);
  return {};
}

Result<bool> TarStream::fill() {
  if (eof_) return false;
  for (;;) {
    ssize_t n = ::read(fd_, in_.get(), kChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail("layer: read blob");
    in_pos_ = 0;
    in_len_ = static_cast<size_t>(n);
    if (n == 0) eof_ = true;
    return n > 0;
  }
}

Result<std::span<const char>> TarStream::next() {
  if (error_) return std::unexpected(*error_);
  Result<std::span<const char>> chunk;
  switch (kind_) {
    case LayerCompression::gzip: chunk = next_gzip(); break;
    case LayerCompression::zstd: chunk = next_zstd(); break;
    default: chunk = next_plain(); break;
  }
  if (!chunk) {
    error_ = chunk.error();
    return chunk;
  }
  hash_.update(chunk->data(), chunk->size());
  size_ += static_cast<int64_t>(chunk->size());
  return chunk;
}

Result<> TarStream::drain() {
  for (;;) {
    auto chunk = BERTH_TRY(next());
    if (chunk.empty()) return {};
  }
}

Result<std::span<const char>> TarStream::next_plain() {
  if (in_pos_ == in_len_ && !BERTH_TRY(fill())) return std::span<const char>{};
  std::span<const char> run(in_.get() + in_pos_, in_len_ - in_pos_);
  in_pos_ = in_len_;
  return run;
}

Result<std::span<const char>> TarStream::next_gzip() {
  for (;;) {
    if (in_pos_ == in_len_ && !out_full_ && !BERTH_TRY(fill())) {
      if (unit_done_) return std::span<const char>{};
      return fail(EIO, "layer: gzip stream truncated");
    }
    if (unit_done_) {
      // Zero padding after the last member is tape blocking (libarchive writes it too);
      // gzip(1) ignores it, and it adds nothing to the tar.
      if (padding_ || in_[in_pos_] == 0) {
        padding_ = true;
        for (; in_pos_ < in_len_; ++in_pos_)
          if (in_[in_pos_] != 0) return fail(EIO, "layer: gzip stream corrupt: data after the zero padding");
        continue;
      }
      // Concatenated members (pigz, appended layers) form one stream.
      ::inflateReset(&z_);
      unit_done_ = false;
    }
    z_.next_in = reinterpret_cast<Bytef*>(in_.get() + in_pos_);
    z_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
    z_.next_out = reinterpret_cast<Bytef*>(out_.get());
    z_.avail_out = static_cast<uInt>(kChunk);
    int rc = ::inflate(&z_, Z_NO_FLUSH);
    in_pos_ = in_len_ - z_.avail_in;
    size_t produced = kChunk - z_.avail_out;
    if (rc == Z_STREAM_END) {
      unit_done_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {  // Z_BUF_ERROR: needs more input
      return fail(EIO, std::string("layer: gzip stream corrupt: ") + (z_.msg ? z_.msg : "error " + std::to_string(rc)));
    }
    out_full_ = z_.avail_out == 0 && rc != Z_STREAM_END;
    if (produced) return std::span<const char>(out_.get(), produced);
  }
}

Result<std::span<const char>> TarStream::next_zstd() {
  for (;;) {
    if (in_pos_ == in_len_ && !out_full_ && !BERTH_TRY(fill())) {
      if (unit_done_) return std::span<const char>{};
      return fail(EIO, "layer: zstd stream truncated");
    }
    ZSTD_inBuffer in{in_.get() + in_pos_, in_len_ - in_pos_, 0};
    ZSTD_outBuffer out{out_.get(), kChunk, 0};
    size_t rc = ::ZSTD_decompressStream(zstd_, &out, &in);
    in_pos_ += in.pos;
    if (::ZSTD_isError(rc)) return fail(EIO, std::string("layer: zstd stream corrupt: ") + ::ZSTD_getErrorName(rc));
    unit_done_ = rc == 0;  // 0: a frame is complete and flushed
    out_full_ = out.pos == out.size && rc != 0;
    if (out.pos) return std::span<const char>(out_.get(), out.pos);
  }
}

la_ssize_t read_tar(struct archive* a, void* ctx, const void** buffer) {
  auto chunk = static_cast<TarStream*>(ctx)->next();
  if (!chunk) {
    archive_set_error(a, chunk.error().code, "%s", chunk.error().message.c_str());
    return -1;
  }
  *buffer = chunk->data();
  return static_cast<la_ssize_t>(chunk->size());
}

// ---------------------------------------------------------------------------------
// Applies tar entries to the target directory. Parents are resolved from the root with
// RESOLVE_BENEATH, so in-layer symlinks work and escaping ones fail; final components
// are never followed.
class TreeWriter {
 public:
  static Result<TreeWriter> open(const std::string& target_dir);
  Result<> apply(struct archive* a, struct archive_entry* e);
  // Directory times go last: creating children changes them.
  void finish();
  bool archive_failed() const { return archive_failed_; }

 private:
  using SharedFd = std::shared_ptr<UniqueFd>;
  struct DirTimes {
    timespec times[2];
    dev_t dev;
    ino_t ino;
  };

  explicit TreeWriter(UniqueFd root) : root_(std::make_shared<UniqueFd>(std::move(root))) {}
  Result<SharedFd> dir_fd(const std::string& dir, const std::string& what, bool create);
  void remember_dir(const std::string& dir, SharedFd fd);
  Result<> clear_name(int parent, const std::string& base, const std::string& what);
  Result<> write_data(struct archive* a, struct archive_entry* e, int fd, const std::string& what);
  Result<> whiteout(const std::string& parent, const std::string& base, struct archive_entry* e,
                    const std::string& what);
  Result<> hard_link(int parent, const std::string& base, const std::string& name, const std::string& target);
  void defer_dir_times(const std::string& path, int fd, struct archive_entry* e);

  SharedFd root_;
  // Recently used parent directories: tar lists siblings together, so a few entries
  // spare almost every re-resolution. Cleared when a directory or symlink is removed.
  std::vector<std::pair<std::string, SharedFd>> dirs_;
  std::unordered_map<std::string, DirTimes> dir_times_;
  bool archive_failed_ = false;
};

constexpr size_t kDirCacheSize = 16;

Result<long> open_beneath(int root, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how);
    if (fd >= 0) return fd;
    if (errno == EINTR || errno == EAGAIN) continue;
    return std::unexpected(Error{errno, ""});
  }
}

// Entry names are relative to the layer root: "./" and "." parts drop out, absolute
// names and ".." are refused rather than cleaned, as they only appear in hostile tars.
Result<std::string> clean_name(std::string_view raw, const std::string& what) {
  if (!raw.empty() && raw[0] == '/') return invalid(what + ": absolute path");
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t end = raw.find('/', pos);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view part = raw.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return invalid(what + ": path has a '..' component");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

std::pair<std::string, std::string> split_last(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

const char* entry_pathname(struct archive_entry* e) {
  // In the C locale libarchive hands back the raw header bytes (with a warning);
  // the UTF-8 form is only a fallback when no locale form exists.
  const char* p = archive_entry_pathname(e);
  return p ? p : archive_entry_pathname_utf8(e);
}

const char* entry_hardlink(struct archive_entry* e) {
  const char* p = archive_entry_hardlink(e);
  return p ? p : archive_entry_hardlink_utf8(e);
}

const char* entry_symlink(struct archive_entry* e) {
  const char* p = archive_entry_symlink(e);
  return p ? p : archive_entry_symlink_utf8(e);
}

bool entry_times(struct archive_entry* e, timespec times[2]) {
  if (!archive_entry_mtime_is_set(e)) return false;
  times[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  times[0] = archive_entry_atime_is_set(e) ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)} : times[1];
  return true;
}

Result<> set_owner(int fd, const char* name, struct archive_entry* e, const std::string& what) {
  auto uid = static_cast<uid_t>(archive_entry_uid(e));
  auto gid = static_cast<gid_t>(archive_entry_gid(e));
  int rc = name ? ::fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) : ::fchown(fd, uid, gid);
  if (rc != 0) return sys_fail(what + ": chown");
  return {};
}

// fd is an open file or directory; otherwise the node is reached by path through its
// parent fd, without following it.
Result<> set_xattrs(int fd, int parent, const std::string& base, bool regular_or_dir, struct archive_entry* e,
                    const std::string& what) {
  if (archive_entry_xattr_reset(e) == 0) return {};
  std::string path;
  const char* name;
  const void* value;
  size_t size;
  std::vector<std::string_view> done;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n(name);
    // pax carries each xattr twice (SCHILY.xattr and LIBARCHIVE.xattr records).
    if (std::find(done.begin(), done.end(), n) != done.end()) continue;
    done.push_back(n);
    // Overlay metadata (whiteouts, redirects, metacopy) is ours to write: an image
    // that carries it could reach into other layers.
    if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) continue;
    int rc;
    if (fd >= 0) {
      rc = ::fsetxattr(fd, name, value, size, 0);
    } else {
      if (path.empty()) path = fd_path(parent) + "/" + base;
      rc = ::lsetxattr(path.c_str(), name, value, size, 0);
    }
    if (rc == 0) continue;
    // As containerd: a filesystem without xattrs, or user.* on a symlink or device
    // (the kernel allows them only on files and directories), loses the xattr only.
    if (errno == ENOTSUP || (errno == EPERM && !regular_or_dir && n.starts_with("user."))) {
      log::warn(what + ": xattr " + std::string(n) + " not supported here, skipped");
      continue;
    }
    return sys_fail(what + ": set xattr " + std::string(n));
  }
  return {};
}

Result<> pwrite_all(int fd, const char* data, size_t size, off_t offset, const std::string& what) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail(what + ": write");
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return {};
}

// rm -rf below a directory fd, never following symlinks.
Result<> remove_tree_at(int parent, const std::string& name, const std::string& what) {
  {
    UniqueFd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return sys_fail(what + ": open " + name + " to remove it");
    int list_fd = ::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
    if (list_fd < 0) return sys_fail(what + ": dup");
    DIR* d = ::fdopendir(list_fd);
    if (!d) {
      ::close(list_fd);
      return sys_fail(what + ": list " + name);
    }
    std::vector<std::pair<std::string, bool>> children;
    while (dirent* de = ::readdir(d)) {
      std::string_view child(de->d_name);
      if (child == "." || child == "..") continue;
      bool is_dir = de->d_type == DT_DIR;
      if (de->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::fstatat(dir.get(), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
      }
      children.emplace_back(child, is_dir);
    }
    ::closedir(d);
    for (auto& [child, is_dir] : children) {
      if (is_dir) {
        BERTH_TRY_VOID(remove_tree_at(dir.get(), child, what));
      } else if (::unlinkat(dir.get(), child.c_str(), 0) != 0 && errno != ENOENT) {
        return sys_fail(what + ": remove " + child);
      }
    }
  }
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return sys_fail(what + ": remove " + name);
  return {};
}

Result<TreeWriter> TreeWriter::open(const std::string& target_dir) {
  UniqueFd root(::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_fail("layer: open target " + target_dir);
  return TreeWriter(std::move(root));
}

void TreeWriter::remember_dir(const std::string& dir, SharedFd fd) {
  if (dirs_.size() >= kDirCacheSize) dirs_.pop_back();
  dirs_.emplace(dirs_.begin(), dir, std::move(fd));
}

Result<TreeWriter::SharedFd> TreeWriter::dir_fd(const std::string& dir, const std::string& what, bool create) {
  if (dir.empty()) return root_;
  for (size_t i = 0; i < dirs_.size(); ++i) {
    if (dirs_[i].first != dir) continue;
    if (i) std::rotate(dirs_.begin(), dirs_.begin() + static_cast<long>(i), dirs_.begin() + static_cast<long>(i) + 1);
    return dirs_.front().second;
  }
  auto explain = [&](int err, const std::string& step) -> std::unexpected<Error> {
    if (err == EXDEV) return fail(EINVAL, what + ": path escapes the layer through a symlink");
    if (err == ENOTDIR) return fail(ENOTDIR, what + ": " + step + " is not a directory");
    if (err == ELOOP) return fail(ELOOP, what + ": too many symlinks resolving " + step);
    return sys_fail(what + ": open " + step, err);
  };
  auto opened = open_beneath(root_->get(), dir, O_PATH | O_DIRECTORY);
  if (!opened && opened.error().code == ENOENT && create) {
    // mkdir -p, each step resolved afresh from the root so a symlink met on the way is
    // judged like any other.
    SharedFd cur = root_;
    std::string walked;
    for (const auto& part : split(dir, '/')) {
      walked += walked.empty() ? part : "/" + part;
      auto step = open_beneath(root_->get(), walked, O_PATH | O_DIRECTORY);
      if (!step && step.error().code == ENOENT) {
        if (::mkdirat(cur->get(), part.c_str(), 0755) == 0) {
          // The umask must not narrow a directory the image never described.
          ::fchmodat(cur->get(), part.c_str(), 0755, 0);
        } else if (errno != EEXIST) {
          return sys_fail(what + ": create " + walked);
        }
        step = open_beneath(root_->get(), walked, O_PATH | O_DIRECTORY);
      }
      if (!step) return explain(step.error().code, walked);
      cur = std::make_shared<UniqueFd>(static_cast<int>(*step));
    }
    opened = cur->release();
  }
  if (!opened) return explain(opened.error().code, dir);
  auto fd = std::make_shared<UniqueFd>(static_cast<int>(*opened));
  remember_dir(dir, fd);
  return fd;
}

Result<> TreeWriter::clear_name(int parent, const std::string& base, const std::string& what) {
  struct stat st;
  if (::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return sys_fail(what + ": stat existing");
  }
  if (S_ISDIR(st.st_mode)) {
    BERTH_TRY_VOID(remove_tree_at(parent, base, what));
  } else if (::unlinkat(parent, base.c_str(), 0) != 0) {
    return sys_fail(what + ": remove existing");
  }
  // Cached parents may have been reached through what just went away.
  if (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)) dirs_.clear();
  return {};
}

void TreeWriter::defer_dir_times(const std::string& path, int fd, struct archive_entry* e) {
  DirTimes t{};
  struct stat st;
  if (!entry_times(e, t.times) || ::fstat(fd, &st) != 0) {
    dir_times_.erase(path);
    return;
  }
  t.dev = st.st_dev;
  t.ino = st.st_ino;
  dir_times_[path] = t;
}

void TreeWriter::finish() {
  std::vector<std::pair<const std::string*, const DirTimes*>> order;
  order.reserve(dir_times_.size());
  for (auto& [path, times] : dir_times_) order.emplace_back(&path, &times);
  auto depth = [](const std::string& p) { return p.empty() ? -1 : static_cast<int>(std::count(p.begin(), p.end(), '/')); };
  std::sort(order.begin(), order.end(), [&](auto& a, auto& b) { return depth(*a.first) > depth(*b.first); });
  for (auto& [path, times] : order) {
    UniqueFd fd;
    if (path->empty()) {
      fd.reset(::fcntl(root_->get(), F_DUPFD_CLOEXEC, 0));
    } else if (auto opened = open_beneath(root_->get(), *path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)) {
      fd.reset(static_cast<int>(*opened));
    }
    struct stat st;
    // A directory replaced or removed by a later entry keeps its new times.
    if (!fd || ::fstat(fd.get(), &st) != 0 || st.st_dev != times->dev || st.st_ino != times->ino) continue;
    ::futimens(fd.get(), times->times);
  }
}

Result<> TreeWriter::write_data(struct archive* a, struct archive_entry* e, int fd, const std::string& what) {
  const void* block;
  size_t size;
  la_int64_t offset;
  int64_t end = 0;
  for (;;) {
    int r = archive_read_data_block(a, &block, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      archive_failed_ = true;
      return fail(EIO, what + ": " + (archive_error_string(a) ? archive_error_string(a) : "read failed"));
    }
    // Holes of sparse entries are skipped by offset, so they stay holes.
    BERTH_TRY_VOID(pwrite_all(fd, static_cast<const char*>(block), size, offset, what));
    end = std::max<int64_t>(end, offset + static_cast<int64_t>(size));
  }
  if (archive_entry_size_is_set(e) && archive_entry_size(e) > end && ::ftruncate(fd, archive_entry_size(e)) != 0)
    return sys_fail(what + ": truncate");
  return {};
}

Result<> TreeWriter::whiteout(const std::string& parent, const std::string& base, struct archive_entry* e,
                              const std::string& what) {
  if (base == ".wh..wh..opq") {
    auto dir = BERTH_TRY(dir_fd(parent, what, true));
    UniqueFd fd(::openat(dir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::fsetxattr(fd.get(), "trusted.overlay.opaque", "y", 1, 0) != 0)
      return sys_fail(what + ": mark directory opaque");
    return {};
  }
  if (base.starts_with(".wh..wh.")) return {};  // aufs bookkeeping (.wh..wh.plnk), no meaning here
  std::string name = base.substr(4);
  if (name.empty() || name == "." || name == "..") return invalid(what + ": bad whiteout name");
  auto dir = BERTH_TRY(dir_fd(parent, what, true));
  BERTH_TRY_VOID(clear_name(dir->get(), name, what));
  if (::mknodat(dir->get(), name.c_str(), S_IFCHR, makedev(0, 0)) != 0) return sys_fail(what + ": create whiteout");
  return set_owner(dir->get(), name.c_str(), e, what);
}

Result<> TreeWriter::hard_link(int parent, const std::string& base, const std::string& name,
                               const std::string& target) {
  const std::string lwhat = "hard link " + name + " -> " + target;
  std::string clean = BERTH_TRY(clean_name(target, lwhat));
  auto missing = [&] { return fail(ENOENT, lwhat + ": target not in this layer"); };
  if (clean.empty()) return fail(EISDIR, lwhat + ": target is a directory");
  auto [tdir, tbase] = split_last(clean);
  auto tparent = dir_fd(tdir, lwhat, false);
  if (!tparent) return tparent.error().code == ENOENT ? missing() : std::unexpected(tparent.error());
  struct stat tst;
  if (::fstatat((*tparent)->get(), tbase.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return missing();
    return sys_fail(lwhat + ": stat target");
  }
  if (S_ISDIR(tst.st_mode)) return fail(EISDIR, lwhat + ": target is a directory");
  // flags 0: a symlink target gets linked itself, never followed.
  if (::linkat((*tparent)->get(), tbase.c_str(), parent, base.c_str(), 0) != 0) {
    if (errno != EEXIST) return sys_fail(lwhat);
    struct stat st;
    if (::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
        st.st_ino == tst.st_ino)
      return {};  // already this inode (a repeated entry)
    BERTH_TRY_VOID(clear_name(parent, base, lwhat));
    if (::linkat((*tparent)->get(), tbase.c_str(), parent, base.c_str(), 0) != 0) return sys_fail(lwhat);
  }
  // As tar(1) and bsdtar: the inode keeps the metadata of the entry that made it.
  return {};
}

Result<> TreeWriter::apply(struct archive* a, struct archive_entry* e) {
  const char* raw = entry_pathname(e);
  if (!raw) return invalid("layer: tar entry without a name");
  const std::string what = std::string("entry ") + raw;
  const std::string path = BERTH_TRY(clean_name(raw, what));
  auto [parent, base] = split_last(path);
  const char* link = entry_hardlink(e);
  const mode_t type = archive_entry_filetype(e);
  const mode_t perm = archive_entry_perm(e) & 07777;
  timespec times[2];
  const bool has_times = entry_times(e, times);

  if (path.empty()) {  // "." or "./": the layer root itself
    if (link || type != AE_IFDIR) return invalid(what + ": the layer root must be a directory");
    BERTH_TRY_VOID(set_owner(root_->get(), nullptr, e, what));
    if (::fchmod(root_->get(), perm) != 0) return sys_fail(what + ": chmod");
    BERTH_TRY_VOID(set_xattrs(root_->get(), -1, "", true, e, what));
    defer_dir_times(path, root_->get(), e);
    return {};
  }
  if (base.starts_with(".wh.")) return whiteout(parent, base, e, what);
  if (!link && type == AE_IFSOCK) return {};  // a socket is only meaningful to its live process

  auto dir = BERTH_TRY(dir_fd(parent, what, true));
  const int pfd = dir->get();
  const char* name = base.c_str();
  if (link) return hard_link(pfd, base, raw, link);

  switch (type) {
    case AE_IFREG: {
      constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
      UniqueFd fd(::openat(pfd, name, kFlags, 0600));
      if (!fd && errno == EEXIST) {
        BERTH_TRY_VOID(clear_name(pfd, base, what));
        fd.reset(::openat(pfd, name, kFlags, 0600));
      }
      if (!fd) return sys_fail(what + ": create");
      BERTH_TRY_VOID(write_data(a, e, fd.get(), what));
      // chown first: it clears setuid/setgid and file capabilities.
      BERTH_TRY_VOID(set_owner(fd.get(), nullptr, e, what));
      if (::fchmod(fd.get(), perm) != 0) return sys_fail(what + ": chmod");
      BERTH_TRY_VOID(set_xattrs(fd.get(), -1, "", true, e, what));
      if (has_times && ::futimens(fd.get(), times) != 0) return sys_fail(what + ": set times");
      return {};
    }
    case AE_IFDIR: {
      if (::mkdirat(pfd, name, 0700) != 0) {
        if (errno != EEXIST) return sys_fail(what + ": mkdir");
        struct stat st;
        if (::fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return sys_fail(what + ": stat existing");
        if (!S_ISDIR(st.st_mode)) {  // a directory over a directory keeps the children
          BERTH_TRY_VOID(clear_name(pfd, base, what));
          if (::mkdirat(pfd, name, 0700) != 0) return sys_fail(what + ": mkdir");
        }
      }
      auto fd = std::make_shared<UniqueFd>(::openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!*fd) return sys_fail(what + ": open");
      BERTH_TRY_VOID(set_owner(fd->get(), nullptr, e, what));
      if (::fchmod(fd->get(), perm) != 0) return sys_fail(what + ": chmod");
      BERTH_TRY_VOID(set_xattrs(fd->get(), -1, "", true, e, what));
      defer_dir_times(path, fd->get(), e);
      // Its children usually follow: keep the fd as their parent.
      if (std::none_of(dirs_.begin(), dirs_.end(), [&](auto& d) { return d.first == path; })) remember_dir(path, fd);
      return {};
    }
    case AE_IFLNK: {
      const char* target = entry_symlink(e);
      if (!target) return invalid(what + ": symlink without a target");
      // The target text is stored as is: it is harmless until followed, and nothing
      // here follows it.
      if (::symlinkat(target, pfd, name) != 0) {
        if (errno != EEXIST) return sys_fail(what + ": symlink");
        BERTH_TRY_VOID(clear_name(pfd, base, what));
        if (::symlinkat(target, pfd, name) != 0) return sys_fail(what + ": symlink");
      }
      BERTH_TRY_VOID(set_owner(pfd, name, e, what));
      BERTH_TRY_VOID(set_xattrs(-1, pfd, base, false, e, what));
      if (has_times && ::utimensat(pfd, name, times, AT_SYMLINK_NOFOLLOW) != 0) return sys_fail(what + ": set times");
      return {};
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
      dev_t rdev = kind == S_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
      if (::mknodat(pfd, name, kind | 0600, rdev) != 0) {
        if (errno != EEXIST) return sys_fail(what + ": mknod");
        BERTH_TRY_VOID(clear_name(pfd, base, what));
        if (::mknodat(pfd, name, kind | 0600, rdev) != 0) return sys_fail(what + ": mknod");
      }
      BERTH_TRY_VOID(set_owner(pfd, name, e, what));
      // Just created here, so not a symlink: following is moot.
      if (::fchmodat(pfd, name, perm, 0) != 0) return sys_fail(what + ": chmod");
      BERTH_TRY_VOID(set_xattrs(-1, pfd, base, false, e, what));
      if (has_times && ::utimensat(pfd, name, times, AT_SYMLINK_NOFOLLOW) != 0) return sys_fail(what + ": set times");
      return {};
    }
    default:
      return invalid(what + ": unsupported entry type " + std::to_string(type));
  }
}

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// libarchive failed: the cause is usually further down (a corrupt or truncated
// compressed stream shows up as a damaged tar first), so report that when there is one.
Error archive_failure(struct archive* a, TarStream& stream) {
  if (!stream.error()) {
    if (auto drained = stream.drain(); !drained) return drained.error();
  }
  if (stream.error()) return *stream.error();
  const char* msg = archive_error_string(a);
  return Error{EIO, std::string("layer: ") + (msg ? msg : "unreadable tar")};
}

}  // namespace

Result<LayerUnpackResult> LayerUnpacker::unpack(int layer_fd, const std::string& target_dir,
                                                const LayerUnpackOptions& options) {
  TarStream stream(layer_fd);
  BERTH_TRY_VOID(stream.start(options.compression));
  auto tree = BERTH_TRY(TreeWriter::open(target_dir));

  std::unique_ptr<struct archive, ArchiveFree> a(archive_read_new());
  if (!a) return fail(ENOMEM, "layer: archive_read_new failed");
  // Only tar: decompression is done above, and no other format belongs in a layer.
  // "empty" accepts a zero-byte layer as no entries.
  archive_read_support_format_tar(a.get());
  archive_read_support_format_empty(a.get());
  if (archive_read_open(a.get(), &stream, nullptr, read_tar, nullptr) != ARCHIVE_OK)
    return std::unexpected(archive_failure(a.get(), stream));

  LayerUnpackResult result;
  for (;;) {
    struct archive_entry* entry;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_WARN covers names libarchive cannot convert to the locale: the raw
    // bytes are what we want anyway.
    if (r < ARCHIVE_WARN) return std::unexpected(archive_failure(a.get(), stream));
    ++result.entries;
    auto applied = tree.apply(a.get(), entry);
    if (!applied) {
      if (tree.archive_failed() || stream.error()) {
        Error cause = archive_failure(a.get(), stream);
        return std::unexpected(stream.error() ? cause : applied.error());
      }
      return std::unexpected(applied.error());
    }
  }
  // Padding after the end blocks is part of the diffID.
  BERTH_TRY_VOID(stream.drain());
  tree.finish();

  result.tar_size = stream.size();
  result.diff_id = stream.finish();
  if (options.expected_diff_id && *options.expected_diff_id != result.diff_id)
    return fail(EIO, "layer: diff_id mismatch: expected " + options.expected_diff_id->str() + ", got " +
                         result.diff_id.str());
  return result;
}

}  // namespace berth::storage

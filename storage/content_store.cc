#include "storage/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "common/file_util.h"

namespace berth::storage {

namespace {

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

Result<> fsync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_fail("open " + dir);
  if (::fsync(fd.get()) != 0) return sys_fail("fsync " + dir);
  return {};
}

Result<> write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_fail("write " + what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

Result<ContentStore> ContentStore::open(std::string root) {
  BERTH_TRY_VOID(make_dirs(root + "/blobs/sha256", 0700));
  BERTH_TRY_VOID(make_dirs(root + "/ingest", 0700));
  // An ingest file untouched for a minute belongs to a write whose process died;
  // younger ones may still be written by another process sharing the store.
  std::string ingest = root + "/ingest";
  if (DIR* dir = ::opendir(ingest.c_str())) {
    time_t now = ::time(nullptr);
    while (dirent* ent = ::readdir(dir)) {
      if (ent->d_name[0] == '.') continue;
      struct stat st{};
      if (::fstatat(::dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && now - st.st_mtime > 60) {
        ::unlinkat(::dirfd(dir), ent->d_name, 0);
      }
    }
    ::closedir(dir);
  }
  return ContentStore(std::move(root));
}

std::string ContentStore::blob_path(const Digest& digest) const {
  return root_ + "/blobs/" + digest.algorithm + "/" + digest.hex;
}

bool ContentStore::contains(const Digest& digest) const {
  struct stat st{};
  return ::stat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<int64_t> ContentStore::size_of(const Digest& digest) const {
  struct stat st{};
  if (::stat(blob_path(digest).c_str(), &st) != 0) return sys_fail("blob " + digest.str());
  return static_cast<int64_t>(st.st_size);
}

Result<UniqueFd> ContentStore::open_blob(const Digest& digest) const {
  UniqueFd fd(::open(blob_path(digest).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return sys_fail("open blob " + digest.str());
  return fd;
}

Result<std::string> ContentStore::read_blob(const Digest& digest, int64_t max_size) const {
  int64_t size = BERTH_TRY(size_of(digest));
  if (size > max_size) {
    return fail(EFBIG, "blob " + digest.str() + " is " + std::to_string(size) + " bytes, more than " +
                           std::to_string(max_size) + " allowed here");
  }
  return read_file(blob_path(digest));
}

Result<BlobWriter> ContentStore::writer(const Digest& expected, int64_t expected_size) const {
  if (expected.algorithm != "sha256") return fail(ENOTSUP, "unsupported digest " + expected.str());
  std::string temp = root_ + "/ingest/" + expected.hex + "." + random_suffix();
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return sys_fail("create " + temp);
  return BlobWriter(std::move(temp), blob_path(expected), std::move(fd), expected, expected_size);
}

Result<Digest> ContentStore::put(std::string_view data, const std::optional<Digest>& expected) const {
  Digest digest = expected ? *expected : sha256_of(data);
  // A stored blob was verified when it was committed; the caller's bytes still must
  // match the digest they claim.
  if (contains(digest) && (!expected || sha256_of(data) == digest)) return digest;
  BlobWriter w = BERTH_TRY(writer(digest, static_cast<int64_t>(data.size())));
  BERTH_TRY_VOID(w.write(data));
  BERTH_TRY_VOID(w.commit());
  return digest;
}

Result<> ContentStore::remove(const Digest& digest) const {
  if (::unlink(blob_path(digest).c_str()) != 0 && errno != ENOENT) return sys_fail("remove blob " + digest.str());
  return {};
}

Result<std::vector<BlobInfo>> ContentStore::list() const {
  std::vector<BlobInfo> out;
  std::string dir_path = root_ + "/blobs/sha256";
  DIR* dir = ::opendir(dir_path.c_str());
  if (!dir) return sys_fail("open " + dir_path);
  while (dirent* ent = ::readdir(dir)) {
    auto digest = Digest::parse(std::string("sha256:") + ent->d_name);
    if (!digest) continue;
    struct stat st{};
    if (::fstatat(::dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back({std::move(*digest), static_cast<int64_t>(st.st_size)});
  }
  ::closedir(dir);
  return out;
}

BlobWriter::BlobWriter(std::string temp_path, std::string final_path, UniqueFd fd, Digest expected,
                       int64_t expected_size)
    : temp_path_(std::move(temp_path)),
      final_path_(std::move(final_path)),
      fd_(std::move(fd)),
      expected_(std::move(expected)),
      expected_size_(expected_size),
      hasher_(std::in_place) {}

BlobWriter::BlobWriter(BlobWriter&& other) noexcept
    : temp_path_(std::exchange(other.temp_path_, {})),
      final_path_(std::move(other.final_path_)),
      fd_(std::move(other.fd_)),
      expected_(std::move(other.expected_)),
      expected_size_(other.expected_size_),
      written_(other.written_),
      hasher_(std::move(other.hasher_)) {}

BlobWriter& BlobWriter::operator=(BlobWriter&& other) noexcept {
  if (this != &other) {
    discard();
    temp_path_ = std::exchange(other.temp_path_, {});
    final_path_ = std::move(other.final_path_);
    fd_ = std::move(other.fd_);
    expected_ = std::move(other.expected_);
    expected_size_ = other.expected_size_;
    written_ = other.written_;
    hasher_ = std::move(other.hasher_);
  }
  return *this;
}

BlobWriter::~BlobWriter() { discard(); }

void BlobWriter::discard() {
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
  fd_.reset();
}

Result<> BlobWriter::write(std::string_view chunk) {
  if (!fd_) return fail(EBADF, "blob writer for " + expected_.str() + " is closed");
  if (expected_size_ >= 0 && written_ + static_cast<int64_t>(chunk.size()) > expected_size_) {
    return fail(EFBIG, "blob " + expected_.str() + " is larger than its declared " + std::to_string(expected_size_) +
                           " bytes");
  }
  BERTH_TRY_VOID(write_all(fd_.get(), chunk, temp_path_));
  hasher_->update(chunk);
  written_ += static_cast<int64_t>(chunk.size());
  return {};
}

Result<> BlobWriter::reset() {
  if (!fd_) return fail(EBADF, "blob writer for " + expected_.str() + " is closed");
  if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0) return sys_fail("truncate " + temp_path_);
  hasher_.emplace();
  written_ = 0;
  return {};
}

Result<> BlobWriter::commit() {
  if (!fd_) return fail(EBADF, "blob writer for " + expected_.str() + " is closed");
  if (expected_size_ >= 0 && written_ != expected_size_) {
    discard();
    return fail(EIO, "blob " + expected_.str() + ": got " + std::to_string(written_) + " bytes, expected " +
                         std::to_string(expected_size_));
  }
  Digest actual = hasher_->finish();
  if (actual != expected_) {
    discard();
    return fail(EIO, "blob digest mismatch: expected " + expected_.str() + ", got " + actual.str());
  }
  if (::fsync(fd_.get()) != 0) {
    int err = errno;
    discard();
    return sys_fail("fsync " + temp_path_, err);
  }
  fd_.reset();
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    int err = errno;
    discard();
    return sys_fail("rename into " + final_path_, err);
  }
  temp_path_.clear();
  return fsync_dir(final_path_.substr(0, final_path_.rfind('/')));
}

}  // namespace berth::storage

#include "storage/local_image_source.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/safe_path.h"

namespace berth::storage {

namespace {

constexpr int64_t kMaxManifestSize = 4 << 20;

}  // namespace

std::string LocalImageSource::path_of(const Digest& digest) const {
  if (auto it = files_.find(digest.str()); it != files_.end()) return it->second;
  return "blobs/" + digest.algorithm + "/" + digest.hex;
}

Result<SourceManifest> LocalImageSource::fetch_manifest(const std::string& reference) {
  auto digest = Digest::parse(reference);
  if (!digest) return invalid(description_ + ": manifests are looked up by digest here, not '" + reference + "'");
  if (content_.contains(*digest)) {
    return SourceManifest{"", BERTH_TRY(content_.read_blob(*digest, kMaxManifestSize)), *digest};
  }
  std::string path = path_of(*digest);
  auto fd = open_in_root(root_.get(), path, O_RDONLY | O_CLOEXEC);
  if (!fd) return fail(ENOENT, description_ + ": manifest " + digest->str() + " is missing (" + path + ")");
  std::string body;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0) return sys_fail("read " + path);
    if (n == 0) break;
    body.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(body.size()) > kMaxManifestSize) return fail(EFBIG, description_ + ": manifest " + path + " is too large");
  }
  if (sha256_of(body) != *digest) return fail(EIO, description_ + ": " + path + " does not match its digest");
  return SourceManifest{"", std::move(body), *digest};
}

Result<> LocalImageSource::fetch_blob(const Descriptor& blob, BlobWriter& writer, const PullProgressFn& progress) {
  std::string path = path_of(blob.digest);
  auto fd = open_in_root(root_.get(), path, O_RDONLY | O_CLOEXEC);
  if (!fd) return fail(ENOENT, description_ + ": blob " + blob.digest.str() + " is missing (" + path + ")");
  std::string buf(1 << 20, '\0');
  int64_t done = 0;
  for (;;) {
    ssize_t n = ::read(fd->get(), buf.data(), buf.size());
    if (n < 0) return sys_fail("read " + path);
    if (n == 0) break;
    BERTH_TRY_VOID(writer.write(std::string_view(buf.data(), static_cast<size_t>(n))));
    done += n;
    if (progress) progress(PullProgress{PullProgress::Phase::downloading, blob.digest.str(), done, blob.size});
  }
  return {};
}

}  // namespace berth::storage

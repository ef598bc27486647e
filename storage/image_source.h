// Where a pull reads manifests and blobs from: a registry, or blobs already in the
// content store (imports). The puller does not care which.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/error.h"
#include "storage/content_store.h"
#include "storage/image_manifest.h"

namespace berth::storage {

struct SourceManifest {
  std::string media_type;  // as the source declared it (may be empty)
  std::string body;
  Digest digest;  // sha256 of body
};

// Pull progress, reported from the pulling threads (the callback must be thread-safe).
struct PullProgress {
  enum class Phase { resolved, exists, downloading, downloaded, unpacking, unpacked, done };
  Phase phase = Phase::resolved;
  std::string digest;  // layer or manifest digest
  int64_t done = 0;    // bytes
  int64_t total = 0;
};
using PullProgressFn = std::function<void(const PullProgress&)>;

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual std::string describe() const = 0;
  // `reference` is a tag or a digest string; a body fetched by digest must match it.
  virtual Result<SourceManifest> fetch_manifest(const std::string& reference) = 0;
  // Writes the blob into writer (the caller commits, which verifies it).
  virtual Result<> fetch_blob(const Descriptor& blob, BlobWriter& writer, const PullProgressFn& progress) = 0;
};

}  // namespace berth::storage

// An ImageSource over files on this node: an unpacked OCI image layout or docker
// save archive. Blobs are found by digest (blobs/sha256/<hex>, or the file a
// docker archive names) and read with RESOLVE_IN_ROOT, so a symlink in an archive
// cannot make the import read a file outside it. Manifests berth synthesised
// itself are read from the content store.
#pragma once

#include <map>
#include <string>

#include "common/unique_fd.h"
#include "storage/image_source.h"

namespace berth::storage {

class LocalImageSource : public ImageSource {
 public:
  LocalImageSource(std::string description, UniqueFd root, const ContentStore& content)
      : description_(std::move(description)), root_(std::move(root)), content_(content) {}

  // Names the file holding a blob when it is not at blobs/<alg>/<hex>.
  void add_file(const Digest& digest, std::string path) { files_[digest.str()] = std::move(path); }
  int root_fd() const { return root_.get(); }

  std::string describe() const override { return description_; }
  Result<SourceManifest> fetch_manifest(const std::string& reference) override;
  Result<> fetch_blob(const Descriptor& blob, BlobWriter& writer, const PullProgressFn& progress) override;

 private:
  std::string path_of(const Digest& digest) const;

  std::string description_;
  UniqueFd root_;
  const ContentStore& content_;
  std::map<std::string, std::string> files_;
};

}  // namespace berth::storage

// Reads an OCI image layout (a directory, or a tar of one) or a `docker save`
// archive and says which images it holds, by the manifest digest to pull from it
// and the names to record. Tars are unpacked into a scratch dir under the store
// root first, with only files, directories and symlinks allowed and every name
// checked; a docker archive's manifest is synthesised as Docker schema 2 and put in
// the content store.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/content_store.h"
#include "storage/local_image_source.h"

namespace berth::storage {

struct ImportPlan {
  struct Entry {
    Digest digest;  // index or manifest to pull from source
    std::vector<std::string> names;
  };
  std::vector<Entry> entries;
  std::unique_ptr<LocalImageSource> source;
  std::string scratch_dir;  // removed with the plan

  ImportPlan() = default;
  ImportPlan(ImportPlan&&) = default;
  ImportPlan& operator=(ImportPlan&&) = default;
  ~ImportPlan();
};

class ImageImporter {
 public:
  // `name` names unnamed images, or is the repository for tag-only names
  // ("org.opencontainers.image.ref.name" = "latest").
  static Result<ImportPlan> plan(const std::string& path, const std::string& name, const ContentStore& content,
                                 const std::string& scratch_root);
};

}  // namespace berth::storage

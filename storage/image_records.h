// Image metadata rows in the node database: one row per image (keyed by its config
// digest, the image ID users see), the names that point at it (tags and digest
// references) and the blobs it needs, so garbage collection knows what is live.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/database.h"
#include "storage/digest.h"

namespace berth::storage {

struct ImageRecord {
  std::string id;  // config digest, "sha256:…"
  std::string manifest_digest;
  std::string manifest_media_type;
  std::string chain_id;  // top snapshot key; empty for an image without layers
  int64_t size = 0;      // config + compressed layers, as registries and kubelet count it
  int64_t created_at = 0;
  std::vector<std::string> names;  // "docker.io/library/busybox:latest", "…@sha256:…"
  std::vector<std::string> blobs;  // every blob the image needs (index, manifest, config, layers)
};

class ImageRecords {
 public:
  static Result<ImageRecords> open(std::shared_ptr<Database> db);

  // Inserts or refreshes the image and points every name at it, taking a name away
  // from any image that had it. One transaction.
  Result<> put(const ImageRecord& record);
  Result<std::optional<ImageRecord>> get(const std::string& id);
  Result<std::optional<ImageRecord>> by_name(const std::string& name);
  // IDs that start with `prefix` (the hex part, as "docker images" shows it).
  Result<std::vector<std::string>> ids_with_prefix(const std::string& prefix);
  Result<std::vector<ImageRecord>> list();

  // Drops one name; returns true when that left the image with no tag (digest
  // references alone do not keep an image, as with docker rmi).
  Result<bool> remove_name(const std::string& name);
  Result<> remove_image(const std::string& id);
  // Images no name points at any more.
  Result<std::vector<std::string>> unnamed();
  Result<std::vector<std::string>> live_blobs();
  Result<std::vector<std::string>> live_chains();

 private:
  explicit ImageRecords(std::shared_ptr<Database> db) : db_(std::move(db)) {}
  Result<ImageRecord> load(Statement& row);
  std::shared_ptr<Database> db_;
};

}  // namespace berth::storage

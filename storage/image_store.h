// The node's image store: the one place berthd's CRI ImageService, the Mesos
// containerizer and berthctl get images from. Layout under the root dir:
//   content/    verified blobs (ContentStore)
//   snapshots/  unpacked layers and container uppers (OverlaySnapshotter)
//   berth.db    the metadata database (images, names, snapshots)
// Pulls and imports hold a shared lock on gc.lock and garbage collection an
// exclusive one, so GC never removes what a running pull has stored but not yet
// recorded.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/content_store.h"
#include "storage/database.h"
#include "storage/image_config.h"
#include "storage/image_manifest.h"
#include "storage/image_puller.h"
#include "storage/image_records.h"
#include "storage/image_source.h"
#include "storage/overlay_snapshotter.h"
#include "storage/registry_client.h"

namespace berth::storage {

struct ImageStoreOptions {
  std::string root = "/var/lib/berth";
  std::string registry_config_path = "/etc/berth/certs.d";
  std::vector<std::string> insecure_registries;  // reached over plain http
  Platform platform = Platform::host();
  int parallel_layers = 3;
  RegistryClientOptions registry;
};

struct Image {
  std::string id;  // config digest
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  std::string manifest_digest;
  std::string manifest_media_type;
  std::string chain_id;  // snapshot a container's rootfs is prepared on
  int64_t size = 0;
  int64_t created_at = 0;  // when this node got it
  ImageConfig config;
  std::vector<Descriptor> layers;
};

struct StoreUsage {
  std::string mountpoint;  // the snapshot root, as ImageFsInfo names it
  SnapshotUsage snapshots;
  SnapshotUsage content;
  int64_t bytes() const { return snapshots.bytes + content.bytes; }
  int64_t inodes() const { return snapshots.inodes + content.inodes; }
};

struct GcResult {
  bool ran = false;  // false when a pull held the store and GC was deferred
  int images = 0;
  int blobs = 0;
  int snapshots = 0;
};

class ImageStore {
 public:
  static Result<std::unique_ptr<ImageStore>> open(ImageStoreOptions options);

  // Pulls, records RepoTags (name:tag) and RepoDigests (name@digest of what the
  // reference resolved to). A failed pull records nothing and leaves no snapshot.
  Result<Image> pull(const std::string& reference, const RegistryCredentials& credentials = {},
                     const PullProgressFn& progress = {});
  // Imports an OCI image layout (directory or tar) or a `docker save` archive.
  // `name` names images the archive leaves unnamed, or qualifies bare tags.
  Result<std::vector<Image>> import(const std::string& path, const std::string& name = {},
                                    const PullProgressFn& progress = {});

  // By name ("busybox", "busybox:1.0", "name@sha256:…"), full ID or unique ID prefix.
  Result<Image> get(const std::string& reference_or_id);
  Result<std::vector<Image>> list();
  // A name removes that name (the image goes with its last one); an ID removes the
  // image and all its names. Then collects garbage.
  Result<> remove(const std::string& reference_or_id);
  // Removes unnamed images, blobs no image needs and snapshots nothing sits on.
  Result<GcResult> garbage_collect();
  Result<StoreUsage> usage();

  const ImageStoreOptions& options() const { return options_; }
  const ContentStore& content() const { return content_; }
  OverlaySnapshotter& snapshotter() { return *snapshots_; }
  const std::shared_ptr<Database>& database() const { return db_; }

 private:
  ImageStore(ImageStoreOptions options, std::shared_ptr<Database> db, ContentStore content,
             std::unique_ptr<OverlaySnapshotter> snapshots, ImageRecords records, std::unique_ptr<RegistryClient> client)
      : options_(std::move(options)), db_(std::move(db)), content_(std::move(content)),
        snapshots_(std::move(snapshots)), records_(std::move(records)), client_(std::move(client)) {}
  Result<Image> load(const ImageRecord& record);
  Result<std::string> resolve_id(const std::string& reference_or_id);
  Result<Image> record(const PulledImage& pulled, std::vector<std::string> names);
  Result<GcResult> collect(bool wait);

  ImageStoreOptions options_;
  std::shared_ptr<Database> db_;
  ContentStore content_;
  std::unique_ptr<OverlaySnapshotter> snapshots_;
  ImageRecords records_;
  std::unique_ptr<RegistryClient> client_;
};

}  // namespace berth::storage

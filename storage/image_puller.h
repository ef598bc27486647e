// Resolves a reference through an ImageSource to one manifest for this platform,
// stores every blob verified, and unpacks the missing layers into committed
// snapshots. Layers download and unpack in parallel, each into its own staging dir
// (overlay layers do not depend on each other); snapshots are committed in order,
// and only once every layer is verified, so a failed pull commits no snapshot.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "storage/content_store.h"
#include "storage/image_config.h"
#include "storage/image_manifest.h"
#include "storage/image_source.h"
#include "storage/overlay_snapshotter.h"

namespace berth::storage {

struct PulledImage {
  Digest top_digest;  // what the reference resolved to: an index or a manifest
  Digest manifest_digest;
  std::string manifest_media_type;
  Digest config_digest;
  ImageConfig config;
  std::vector<Descriptor> layers;
  std::string chain_id;  // top snapshot key, empty without layers
  int64_t size = 0;      // config + layers
  std::vector<std::string> blobs;  // digests the image needs
};

struct PullerOptions {
  Platform platform = Platform::host();
  int parallel_layers = 3;
};

class ImagePuller {
 public:
  ImagePuller(const ContentStore& content, OverlaySnapshotter& snapshots, PullerOptions options)
      : content_(content), snapshots_(snapshots), options_(std::move(options)) {}

  Result<PulledImage> pull(ImageSource& source, const std::string& reference, const PullProgressFn& progress = {});

 private:
  Result<Digest> store_manifest(const SourceManifest& manifest, const std::string& what);
  Result<> ensure_blob(ImageSource& source, const Descriptor& blob, const PullProgressFn& progress);
  Result<> unpack_layers(ImageSource& source, const PulledImage& image, const std::vector<Digest>& chains,
                         const PullProgressFn& progress);

  const ContentStore& content_;
  OverlaySnapshotter& snapshots_;
  PullerOptions options_;
};

}  // namespace berth::storage

// Unpacks an image layer blob (tar, plain or gzip/zstd compressed) into a directory
// that overlayfs can stack as a lower layer: whiteouts become 0:0 character devices
// and opaque markers the trusted.overlay.opaque xattr. One streamed pass in constant
// memory also yields the layer's diffID (sha256 of the uncompressed tar), which the
// image config lists, so a layer is verified by the same read that unpacks it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/error.h"
#include "storage/digest.h"

namespace berth::storage {

enum class LayerCompression { detect, none, gzip, zstd };

struct LayerUnpackOptions {
  // detect = by magic bytes (gzip 1f 8b, zstd 28 b5 2f fd, else plain tar).
  LayerCompression compression = LayerCompression::detect;
  std::optional<Digest> expected_diff_id;  // a mismatch fails the unpack
};

struct LayerUnpackResult {
  Digest diff_id;        // sha256 of the whole uncompressed tar stream
  int64_t tar_size = 0;  // uncompressed bytes
  int64_t entries = 0;   // tar headers read (whiteouts and skipped entries included)
};

class LayerUnpacker {
 public:
  // Reads the layer blob from layer_fd (from its current offset, sequentially) and
  // unpacks it into target_dir, an existing empty directory, in overlayfs lower-layer
  // form. On error target_dir may hold partial content: the caller unpacks into a
  // temp dir and removes it. Nothing outside target_dir is ever created, changed or
  // followed: absolute names, ".." and symlinks leading out are rejected.
  static Result<LayerUnpackResult> unpack(int layer_fd, const std::string& target_dir,
                                          const LayerUnpackOptions& options = {});
};

}  // namespace berth::storage

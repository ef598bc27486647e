// The media types berth understands, OCI and Docker schema 2. Anything else in a
// manifest is an error naming the type: guessing at layer formats is how runtimes
// end up unpacking the wrong thing.
#pragma once

#include <string_view>

namespace berth::storage::media_type {

inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kOciLayerNondistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kOciLayerNondistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

inline bool is_index(std::string_view t) { return t == kOciIndex || t == kDockerManifestList; }
inline bool is_manifest(std::string_view t) { return t == kOciManifest || t == kDockerManifest; }
inline bool is_config(std::string_view t) { return t == kOciConfig || t == kDockerConfig; }

enum class LayerFormat { unknown, tar, gzip, zstd };

inline LayerFormat layer_format(std::string_view t) {
  if (t == kOciLayer || t == kDockerLayer || t == kOciLayerNondistributable) return LayerFormat::tar;
  if (t == kOciLayerGzip || t == kDockerLayerGzip || t == kDockerForeignLayerGzip ||
      t == kOciLayerNondistributableGzip) {
    return LayerFormat::gzip;
  }
  if (t == kOciLayerZstd || t == kOciLayerNondistributableZstd) return LayerFormat::zstd;
  return LayerFormat::unknown;
}

}  // namespace berth::storage::media_type

// OCI / Docker schema 2 manifests and indexes, parsed strictly, and the platform
// choice that picks one manifest out of an index for this node.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "storage/digest.h"

namespace berth::storage {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH names: "amd64", "arm64", "arm"
  std::string variant;       // "v7", "v8", "v2" ...
  std::string os_version;

  // The node berth runs on (uname mapped to GOARCH names).
  static Platform host();
  // "linux/amd64", "linux/arm/v7"; architecture aliases (x86_64, aarch64) are normalised.
  static Result<Platform> parse(std::string_view text);
  std::string str() const;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

struct ImageIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

// Content type of a manifest body: the HTTP Content-Type when it is one berth knows,
// else the body's own mediaType field, else its shape. Unknown types are an error.
Result<std::string> detect_manifest_type(std::string_view body, std::string_view content_type);
Result<ImageIndex> parse_index(std::string_view body, std::string_view media_type);
// Checks every layer's media type and the config type; a manifest with no layers is
// accepted (scratch images exist) but a layer of unknown type is not.
Result<ImageManifest> parse_manifest(std::string_view body, std::string_view media_type);

// Picks the best manifest for `want` from an index: same os and architecture, the
// exact variant if present, else a compatible one (arm64 v8 = no variant; amd64
// variants at or below the wanted level). Error names the platforms on offer.
Result<Descriptor> select_platform(const ImageIndex& index, const Platform& want);

}  // namespace berth::storage

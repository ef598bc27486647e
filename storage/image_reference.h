// Image references normalised the way docker and kubelet users expect:
// "busybox" is docker.io/library/busybox:latest, "localhost:5000/app@sha256:…" keeps
// its registry and digest, "name:tag@digest" keeps both (the digest decides what is
// pulled, the tag is what gets recorded).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "storage/digest.h"

namespace berth::storage {

struct ImageReference {
  std::string registry;    // "docker.io", "127.0.0.1:5000"
  std::string repository;  // "library/busybox"
  std::string tag;         // empty only when a digest is given without a tag
  std::optional<Digest> digest;

  // Parses and normalises. Upper case in the repository, bad tags, bad digests and
  // over-long names are errors naming the reference.
  static Result<ImageReference> parse(std::string_view text);

  std::string name() const { return registry + "/" + repository; }
  // "docker.io/library/busybox:latest" (or "...@sha256:..." when pinned by digest only).
  std::string str() const;
  std::string with_tag() const { return name() + ":" + tag; }
  std::string with_digest(const Digest& d) const { return name() + "@" + d.str(); }
  // What the registry is asked for: the digest when pinned, else the tag.
  std::string manifest_reference() const { return digest ? digest->str() : tag; }
};

}  // namespace berth::storage

#include "storage/image_reference.h"

#include <algorithm>

#include "common/file_util.h"

namespace berth::storage {

namespace {

constexpr std::string_view kDockerHub = "docker.io";

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: lower-case alphanumerics joined by ".", "_", "__" or runs of "-".
bool valid_component(std::string_view part) {
  if (part.empty() || !is_lower_alnum(part.front()) || !is_lower_alnum(part.back())) return false;
  for (size_t i = 0; i < part.size(); ++i) {
    char c = part[i];
    if (is_lower_alnum(c)) continue;
    if (c == '-') continue;
    if (c == '.' || c == '_') {
      // "." and "_" must sit between alphanumerics, except the "__" pair.
      bool pair = c == '_' && i + 1 < part.size() && part[i + 1] == '_';
      size_t after = pair ? i + 2 : i + 1;
      if (after >= part.size() || !is_lower_alnum(part[after]) || !is_lower_alnum(part[i - 1])) return false;
      i = after - 1;
      continue;
    }
    return false;
  }
  return true;
}

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; };
  if (!word(tag.front())) return false;
  for (char c : tag) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool valid_registry(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<ImageReference> ImageReference::parse(std::string_view text) {
  auto bad = [&](const std::string& why) { return invalid("image reference '" + std::string(text) + "': " + why); };
  if (text.empty()) return bad("empty");
  if (text.size() > 512) return bad("too long");

  ImageReference ref;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    auto digest = Digest::parse(rest.substr(at + 1));
    if (!digest) return bad(digest.error().message);
    ref.digest = std::move(*digest);
    rest = rest.substr(0, at);
  }
  // A tag is the text after the last ':' that comes after the last '/'; a ':'
  // before that is a registry port.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (!valid_tag(ref.tag)) return bad("invalid tag '" + ref.tag + "'");
    rest = rest.substr(0, colon);
  }

  // The first component is a registry when it looks like a host: it has a '.' or
  // ':' or is "localhost"; otherwise the name lives on Docker Hub.
  std::string_view path = rest;
  auto first_slash = rest.find('/');
  if (first_slash != std::string_view::npos) {
    std::string_view first = rest.substr(0, first_slash);
    if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos || first == "localhost") {
      if (!valid_registry(first)) return bad("invalid registry '" + std::string(first) + "'");
      ref.registry = std::string(first);
      path = rest.substr(first_slash + 1);
    }
  }
  if (ref.registry.empty() || ref.registry == "index.docker.io" || ref.registry == "registry-1.docker.io") {
    ref.registry = std::string(kDockerHub);
  }
  if (path.empty()) return bad("no repository name");
  auto parts = split(path, '/', false);
  for (auto& part : parts) {
    if (!valid_component(part)) {
      bool upper = std::any_of(part.begin(), part.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
      return bad(upper ? "repository name must be lowercase" : "invalid repository component '" + part + "'");
    }
  }
  ref.repository = std::string(path);
  if (ref.registry == kDockerHub && parts.size() == 1) ref.repository = "library/" + ref.repository;
  if (ref.name().size() > 255) return bad("repository name longer than 255 characters");
  if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

std::string ImageReference::str() const {
  std::string out = name();
  if (!tag.empty()) out += ":" + tag;
  if (digest) out += "@" + digest->str();
  return out;
}

}  // namespace berth::storage

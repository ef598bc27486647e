#include "storage/image_manifest.h"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "storage/media_types.h"

namespace berth::storage {

using nlohmann::json;

namespace {

std::string normalize_arch(std::string arch, std::string* variant) {
  if (arch == "x86_64" || arch == "x86-64") return "amd64";
  if (arch == "aarch64") {
    if (variant && variant->empty()) *variant = "v8";
    return "arm64";
  }
  if (arch == "armhf") {
    if (variant && variant->empty()) *variant = "v7";
    return "arm";
  }
  if (arch == "armel") {
    if (variant && variant->empty()) *variant = "v6";
    return "arm";
  }
  if (arch == "i386" || arch == "i686") return "386";
  return arch;
}

Result<std::string> string_field(const json& j, const char* key, const std::string& where, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return invalid(where + ": missing \"" + key + "\"");
    return std::string();
  }
  if (!it->is_string()) return invalid(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

Result<std::map<std::string, std::string>> annotations_of(const json& j, const std::string& where) {
  std::map<std::string, std::string> out;
  auto it = j.find("annotations");
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) return invalid(where + ": annotations must be an object");
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) return invalid(where + ": annotation " + k + " must be a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

Result<Descriptor> descriptor_of(const json& j, const std::string& where) {
  if (!j.is_object()) return invalid(where + ": descriptor must be an object");
  Descriptor d;
  d.media_type = BERTH_TRY(string_field(j, "mediaType", where, true));
  auto digest_text = BERTH_TRY(string_field(j, "digest", where, true));
  auto digest = Digest::parse(digest_text);
  if (!digest) return std::unexpected(digest.error().wrap(where));
  d.digest = std::move(*digest);
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return invalid(where + ": \"size\" must be a non-negative integer");
  }
  d.size = size->get<int64_t>();
  if (auto urls = j.find("urls"); urls != j.end() && urls->is_array()) {
    for (auto& u : *urls) {
      if (u.is_string()) d.urls.push_back(u.get<std::string>());
    }
  }
  d.annotations = BERTH_TRY(annotations_of(j, where));
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    Platform platform;
    platform.os = BERTH_TRY(string_field(*p, "os", where + " platform", true));
    platform.variant = BERTH_TRY(string_field(*p, "variant", where + " platform", false));
    platform.architecture =
        normalize_arch(BERTH_TRY(string_field(*p, "architecture", where + " platform", true)), &platform.variant);
    platform.os_version = BERTH_TRY(string_field(*p, "os.version", where + " platform", false));
    d.platform = std::move(platform);
  }
  return d;
}

Result<json> parse_json(std::string_view body, const std::string& what) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid(what + ": not a JSON object");
  auto version = j.find("schemaVersion");
  if (version == j.end() || !version->is_number_integer() || version->get<int>() != 2) {
    return invalid(what + ": schemaVersion must be 2");
  }
  return j;
}

int amd64_level(const std::string& variant) {
  if (variant.empty() || variant == "v1") return 1;
  if (variant.size() == 2 && variant[0] == 'v' && variant[1] >= '2' && variant[1] <= '4') return variant[1] - '0';
  return 99;
}

// 0 = no match; higher is better.
int platform_score(const Platform& have, const Platform& want) {
  if (have.os != want.os || have.architecture != want.architecture) return 0;
  if (have.variant == want.variant) return 100;
  if (want.architecture == "arm64") {
    bool have_v8 = have.variant.empty() || have.variant == "v8";
    bool want_v8 = want.variant.empty() || want.variant == "v8";
    return have_v8 && want_v8 ? 100 : 0;
  }
  if (want.architecture == "amd64") {
    int have_level = amd64_level(have.variant), want_level = amd64_level(want.variant);
    return have_level <= want_level ? 50 + have_level : 0;
  }
  if (want.architecture == "arm" && have.variant.size() == 2 && want.variant.size() == 2) {
    // Older arm variants run on newer cores: v6 images on a v7 node.
    return have.variant <= want.variant ? 50 + (have.variant[1] - '0') : 0;
  }
  return 0;
}

}  // namespace

Platform Platform::host() {
  utsname u{};
  ::uname(&u);
  Platform p;
  p.os = "linux";
  std::string machine = u.machine;
  if (machine == "armv7l") {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (machine == "armv6l") {
    p.architecture = "arm";
    p.variant = "v6";
  } else {
    p.architecture = normalize_arch(machine, nullptr);
  }
  return p;
}

Result<Platform> Platform::parse(std::string_view text) {
  auto parts = split(text, '/', false);
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return invalid("platform '" + std::string(text) + "': want os/arch[/variant]");
  }
  Platform p;
  p.os = parts[0];
  if (parts.size() == 3) p.variant = parts[2];
  p.architecture = normalize_arch(parts[1], &p.variant);
  return p;
}

std::string Platform::str() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

Result<std::string> detect_manifest_type(std::string_view body, std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  type = std::string(trim(type));
  if (media_type::is_index(type) || media_type::is_manifest(type)) return type;
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("manifest: not a JSON object");
  if (auto mt = j.find("mediaType"); mt != j.end() && mt->is_string()) {
    std::string declared = mt->get<std::string>();
    if (media_type::is_index(declared) || media_type::is_manifest(declared)) return declared;
    return fail(ENOTSUP, "manifest: unsupported media type '" + declared + "'");
  }
  if (auto v = j.find("schemaVersion"); v != j.end() && v->is_number_integer() && v->get<int>() == 1) {
    return fail(ENOTSUP, "manifest: Docker schema 1 images are not supported");
  }
  // OCI allows omitting mediaType; the shape tells an index from a manifest.
  if (j.contains("manifests")) return std::string(media_type::kOciIndex);
  if (j.contains("config") && j.contains("layers")) return std::string(media_type::kOciManifest);
  if (!type.empty()) return fail(ENOTSUP, "manifest: unsupported media type '" + type + "'");
  return invalid("manifest: cannot tell its media type");
}

Result<ImageIndex> parse_index(std::string_view body, std::string_view media_type) {
  json j = BERTH_TRY(parse_json(body, "image index"));
  ImageIndex index;
  index.media_type = std::string(media_type);
  if (auto mt = j.find("mediaType"); mt != j.end() && mt->is_string() && mt->get<std::string>() != media_type) {
    return invalid("image index: mediaType '" + mt->get<std::string>() + "' contradicts '" + index.media_type + "'");
  }
  auto manifests = j.find("manifests");
  if (manifests == j.end() || !manifests->is_array()) return invalid("image index: \"manifests\" must be an array");
  for (size_t i = 0; i < manifests->size(); ++i) {
    index.manifests.push_back(BERTH_TRY(descriptor_of((*manifests)[i], "image index manifests[" + std::to_string(i) + "]")));
  }
  index.annotations = BERTH_TRY(annotations_of(j, "image index"));
  return index;
}

Result<ImageManifest> parse_manifest(std::string_view body, std::string_view media_type) {
  json j = BERTH_TRY(parse_json(body, "image manifest"));
  ImageManifest m;
  m.media_type = std::string(media_type);
  if (auto mt = j.find("mediaType"); mt != j.end() && mt->is_string() && mt->get<std::string>() != media_type) {
    return invalid("image manifest: mediaType '" + mt->get<std::string>() + "' contradicts '" + m.media_type + "'");
  }
  auto config = j.find("config");
  if (config == j.end()) return invalid("image manifest: missing \"config\"");
  m.config = BERTH_TRY(descriptor_of(*config, "image manifest config"));
  if (!media_type::is_config(m.config.media_type)) {
    return fail(ENOTSUP, "image manifest: unsupported config media type '" + m.config.media_type +
                             "' (not a container image)");
  }
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return invalid("image manifest: \"layers\" must be an array");
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string where = "image manifest layers[" + std::to_string(i) + "]";
    Descriptor layer = BERTH_TRY(descriptor_of((*layers)[i], where));
    if (media_type::layer_format(layer.media_type) == media_type::LayerFormat::unknown) {
      return fail(ENOTSUP, where + ": unsupported layer media type '" + layer.media_type + "'");
    }
    m.layers.push_back(std::move(layer));
  }
  m.annotations = BERTH_TRY(annotations_of(j, "image manifest"));
  return m;
}

Result<Descriptor> select_platform(const ImageIndex& index, const Platform& want) {
  const Descriptor* best = nullptr;
  int best_score = 0;
  std::string offered;
  for (auto& d : index.manifests) {
    if (!media_type::is_manifest(d.media_type)) continue;  // attestations, nested indexes
    if (!offered.empty()) offered += ", ";
    offered += d.platform ? d.platform->str() : "unspecified";
    // A manifest without a platform may fit; its config's os/arch is checked later.
    int score = d.platform ? platform_score(*d.platform, want) : 1;
    if (score > best_score) {
      best_score = score;
      best = &d;
    }
  }
  if (!best) {
    return fail(ENOENT, "no match for platform " + want.str() + " in image index (offers: " +
                            (offered.empty() ? std::string("none") : offered) + ")");
  }
  return *best;
}

}  // namespace berth::storage

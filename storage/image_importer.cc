#include "storage/image_importer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "common/file_util.h"
#include "common/safe_path.h"
#include "storage/image_reference.h"
#include "storage/media_types.h"

namespace berth::storage {

using nlohmann::json;

namespace {

constexpr int64_t kMaxMetadataFile = 16 << 20;

std::string random_hex() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

Result<std::string> read_in_root(int root_fd, const std::string& path) {
  auto fd = BERTH_TRY(open_in_root(root_fd, path, O_RDONLY | O_CLOEXEC));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return sys_fail("stat " + path);
  if (st.st_size > kMaxMetadataFile) return fail(EFBIG, path + " is too large");
  return read_file(fd_path(fd.get()));
}

// Hashes a file (a docker archive names files, not digests) and peeks at its magic.
Result<std::pair<Digest, int64_t>> hash_in_root(int root_fd, const std::string& path, bool* gzip) {
  auto fd = BERTH_TRY(open_in_root(root_fd, path, O_RDONLY | O_CLOEXEC));
  Sha256 hasher;
  std::string buf(1 << 20, '\0');
  int64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return sys_fail("read " + path);
    if (n == 0) break;
    if (total == 0 && gzip) *gzip = n >= 2 && static_cast<unsigned char>(buf[0]) == 0x1f && static_cast<unsigned char>(buf[1]) == 0x8b;
    hasher.update(buf.data(), static_cast<size_t>(n));
    total += n;
  }
  return std::pair{hasher.finish(), total};
}

Result<std::string> checked_entry_name(std::string name) {
  while (name.starts_with("./")) name.erase(0, 2);
  if (name.starts_with("/")) return invalid("archive entry '" + name + "' is absolute");
  for (auto& part : split(name, '/')) {
    if (part == "..") return invalid("archive entry '" + name + "' climbs out with '..'");
  }
  return name;
}

// Unpacks the archive's files into scratch_fd. Only what an image archive holds is
// accepted: regular files, directories, symlinks.
Result<> extract_archive(const std::string& path, int scratch_fd) {
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return invalid(path + ": not a tar archive: " + archive_error_string(a.get()));
  }
  archive_entry* entry = nullptr;
  std::string buf(1 << 20, '\0');
  for (;;) {
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return invalid(path + ": " + archive_error_string(a.get()));
    std::string name = BERTH_TRY(checked_entry_name(archive_entry_pathname(entry)));
    while (!name.empty() && name.back() == '/') name.pop_back();
    if (name.empty() || name == ".") continue;
    auto slash = name.rfind('/');
    std::string parent = slash == std::string::npos ? "." : name.substr(0, slash);
    std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    auto parent_fd = BERTH_TRY(make_dirs_in_root(scratch_fd, parent, 0700));
    mode_t type = archive_entry_filetype(entry);
    if (archive_entry_hardlink(entry)) return invalid(path + ": entry '" + name + "' is a hard link, which image archives do not use");
    if (type == AE_IFDIR) {
      if (::mkdirat(parent_fd.get(), base.c_str(), 0700) != 0 && errno != EEXIST) return sys_fail("mkdir " + name);
    } else if (type == AE_IFLNK) {
      if (::symlinkat(archive_entry_symlink(entry), parent_fd.get(), base.c_str()) != 0) return sys_fail("symlink " + name);
    } else if (type == AE_IFREG) {
      UniqueFd out(::openat(parent_fd.get(), base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) return sys_fail("create " + name);
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) return invalid(path + ": " + archive_error_string(a.get()));
        if (n == 0) break;
        for (la_ssize_t off = 0; off < n;) {
          ssize_t w = ::write(out.get(), buf.data() + off, static_cast<size_t>(n - off));
          if (w < 0) return sys_fail("write " + name);
          off += w;
        }
      }
    } else {
      return invalid(path + ": entry '" + name + "' has a file type image archives do not use");
    }
  }
  return {};
}

Result<std::string> qualify(const std::string& given, const std::string& name_option, const Digest& digest) {
  if (given.empty()) {
    if (name_option.empty()) return invalid("image " + digest.str() + " has no name; give one with --name");
    return BERTH_TRY(ImageReference::parse(name_option)).str();
  }
  // A bare tag ("latest") needs a repository from the caller.
  bool bare_tag = given.find('/') == std::string::npos && given.find('@') == std::string::npos &&
                  given.find(':') == std::string::npos && !name_option.empty();
  if (bare_tag) {
    auto repo = BERTH_TRY(ImageReference::parse(name_option));
    return repo.name() + ":" + given;
  }
  if (given.find('/') == std::string::npos && given.find(':') == std::string::npos) {
    return invalid("image " + digest.str() + " is named only by tag '" + given + "'; give a repository with --name");
  }
  return BERTH_TRY(ImageReference::parse(given)).str();
}

Result<> plan_oci_layout(ImportPlan& plan, const std::string& name_option) {
  int root = plan.source->root_fd();
  auto layout = json::parse(BERTH_TRY(read_in_root(root, "oci-layout")), nullptr, false);
  if (!layout.is_object() || !layout.contains("imageLayoutVersion")) return invalid("oci-layout: no imageLayoutVersion");
  auto body = BERTH_TRY(read_in_root(root, "index.json"));
  auto type = BERTH_TRY(detect_manifest_type(body, media_type::kOciIndex));
  if (!media_type::is_index(type)) return invalid("index.json is not an image index");
  auto index = BERTH_TRY(parse_index(body, type));
  for (auto& d : index.manifests) {
    if (!media_type::is_index(d.media_type) && !media_type::is_manifest(d.media_type)) continue;
    std::string given;
    if (auto it = d.annotations.find("io.containerd.image.name"); it != d.annotations.end()) {
      given = it->second;
    } else if (auto ref = d.annotations.find("org.opencontainers.image.ref.name"); ref != d.annotations.end()) {
      given = ref->second;
    }
    std::string name = BERTH_TRY(qualify(given, name_option, d.digest));
    // Several ref names can point at one manifest: one entry, several names.
    auto same = std::find_if(plan.entries.begin(), plan.entries.end(), [&](auto& e) { return e.digest == d.digest; });
    if (same != plan.entries.end()) {
      same->names.push_back(name);
    } else {
      plan.entries.push_back({d.digest, {name}});
    }
  }
  if (plan.entries.empty()) return invalid("index.json lists no images");
  return {};
}

Result<> plan_docker_archive(ImportPlan& plan, const std::string& name_option, const ContentStore& content) {
  int root = plan.source->root_fd();
  auto manifest = json::parse(BERTH_TRY(read_in_root(root, "manifest.json")), nullptr, false);
  if (!manifest.is_array() || manifest.empty()) return invalid("manifest.json: want a non-empty array");
  for (auto& item : manifest) {
    if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string() || !item.contains("Layers") ||
        !item["Layers"].is_array()) {
      return invalid("manifest.json: each entry needs Config and Layers");
    }
    std::string config_path = BERTH_TRY(checked_entry_name(item["Config"].get<std::string>()));
    auto [config_digest, config_size] = BERTH_TRY(hash_in_root(root, config_path, nullptr));
    plan.source->add_file(config_digest, config_path);
    json layers = json::array();
    for (auto& layer : item["Layers"]) {
      if (!layer.is_string()) return invalid("manifest.json: Layers must be strings");
      std::string layer_path = BERTH_TRY(checked_entry_name(layer.get<std::string>()));
      bool gzip = false;
      auto [digest, size] = BERTH_TRY(hash_in_root(root, layer_path, &gzip));
      plan.source->add_file(digest, layer_path);
      layers.push_back({{"mediaType", gzip ? media_type::kDockerLayerGzip : media_type::kDockerLayer},
                        {"size", size},
                        {"digest", digest.str()}});
    }
    json synthesized = {{"schemaVersion", 2},
                        {"mediaType", media_type::kDockerManifest},
                        {"config", {{"mediaType", media_type::kDockerConfig}, {"size", config_size}, {"digest", config_digest.str()}}},
                        {"layers", layers}};
    Digest manifest_digest = BERTH_TRY(content.put(synthesized.dump()));
    std::vector<std::string> names;
    if (auto tags = item.find("RepoTags"); tags != item.end() && tags->is_array()) {
      for (auto& tag : *tags) {
        if (tag.is_string()) names.push_back(BERTH_TRY(ImageReference::parse(tag.get<std::string>())).str());
      }
    }
    if (names.empty()) names.push_back(BERTH_TRY(qualify("", name_option, manifest_digest)));
    plan.entries.push_back({manifest_digest, std::move(names)});
  }
  return {};
}

}  // namespace

ImportPlan::~ImportPlan() {
  source.reset();
  if (!scratch_dir.empty()) (void)remove_tree(scratch_dir);
}

Result<ImportPlan> ImageImporter::plan(const std::string& path, const std::string& name, const ContentStore& content,
                                       const std::string& scratch_root) {
  ImportPlan plan;
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return sys_fail(path);
  std::string dir = path;
  if (!S_ISDIR(st.st_mode)) {
    plan.scratch_dir = scratch_root + "/import-" + random_hex();
    if (::mkdir(plan.scratch_dir.c_str(), 0700) != 0) return sys_fail("mkdir " + plan.scratch_dir);
    UniqueFd scratch(::open(plan.scratch_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!scratch) return sys_fail("open " + plan.scratch_dir);
    BERTH_TRY_VOID(extract_archive(path, scratch.get()));
    dir = plan.scratch_dir;
  }
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_fail("open " + dir);
  plan.source = std::make_unique<LocalImageSource>(path, std::move(root), content);
  struct stat probe{};
  bool docker = ::fstatat(plan.source->root_fd(), "manifest.json", &probe, 0) == 0;
  bool oci = ::fstatat(plan.source->root_fd(), "index.json", &probe, 0) == 0;
  if (docker) {
    BERTH_TRY_VOID(plan_docker_archive(plan, name, content));
  } else if (oci) {
    BERTH_TRY_VOID(plan_oci_layout(plan, name));
  } else {
    return invalid(path + ": neither an OCI image layout (index.json) nor a docker save archive (manifest.json)");
  }
  return plan;
}

}  // namespace berth::storage

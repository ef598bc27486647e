#include "storage/image_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "common/file_util.h"
#include "common/unique_fd.h"
#include "storage/image_importer.h"
#include "storage/image_reference.h"
#include "storage/registry_image_source.h"

namespace berth::storage {

namespace {

// flock on <root>/gc.lock: shared for pulls and imports, exclusive for GC.
class StoreLock {
 public:
  static Result<StoreLock> take(const std::string& root, int operation) {
    std::string path = root + "/gc.lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return sys_fail("open " + path);
    while (::flock(fd.get(), operation) != 0) {
      if (errno == EINTR) continue;
      return sys_fail("lock " + path);
    }
    return StoreLock(std::move(fd));
  }
  void release() { fd_.reset(); }

 private:
  explicit StoreLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

bool looks_like_id(const std::string& text) {
  std::string hex = text.starts_with("sha256:") ? text.substr(7) : text;
  return hex.size() >= 3 && hex.size() <= 64 &&
         std::all_of(hex.begin(), hex.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

Result<std::unique_ptr<ImageStore>> ImageStore::open(ImageStoreOptions options) {
  BERTH_TRY_VOID(make_dirs(options.root, 0700));
  auto db = BERTH_TRY(Database::open(options.root + "/berth.db"));
  auto content = BERTH_TRY(ContentStore::open(options.root + "/content"));
  auto snapshots = BERTH_TRY(OverlaySnapshotter::open(options.root + "/snapshots", db));
  auto records = BERTH_TRY(ImageRecords::open(db));
  auto hosts = BERTH_TRY(RegistryHosts::load(options.registry_config_path));
  for (auto& host : options.insecure_registries) hosts.add_insecure(host);
  auto client = std::make_unique<RegistryClient>(std::move(hosts), options.registry);
  return std::unique_ptr<ImageStore>(new ImageStore(std::move(options), std::move(db), std::move(content),
                                                    std::move(snapshots), std::move(records), std::move(client)));
}

Result<Image> ImageStore::pull(const std::string& reference, const RegistryCredentials& credentials,
                               const PullProgressFn& progress) {
  auto ref = BERTH_TRY(ImageReference::parse(reference));
  PulledImage pulled;
  {
    auto lock = BERTH_TRY(StoreLock::take(options_.root, LOCK_SH));
    RegistryImageSource source(*client_, ref.registry, ref.repository, credentials);
    ImagePuller puller(content_, *snapshots_, PullerOptions{options_.platform, options_.parallel_layers});
    auto result = puller.pull(source, ref.manifest_reference(), progress);
    if (!result) {
      lock.release();
      (void)collect(false);  // blobs of the failed pull, unless another pull is running
      return std::unexpected(result.error());
    }
    pulled = std::move(*result);
    std::vector<std::string> names;
    if (!ref.tag.empty()) names.push_back(ref.with_tag());
    names.push_back(ref.with_digest(pulled.top_digest));
    auto image = record(pulled, std::move(names));
    if (!image) return std::unexpected(image.error());
  }
  (void)collect(false);  // an image the tag moved away from
  return get(pulled.config_digest.str());
}

Result<Image> ImageStore::record(const PulledImage& pulled, std::vector<std::string> names) {
  ImageRecord rec;
  rec.id = pulled.config_digest.str();
  rec.manifest_digest = pulled.manifest_digest.str();
  rec.manifest_media_type = pulled.manifest_media_type;
  rec.chain_id = pulled.chain_id;
  rec.size = pulled.size;
  rec.created_at = ::time(nullptr);
  rec.names = std::move(names);
  rec.blobs = pulled.blobs;
  BERTH_TRY_VOID(records_.put(rec));
  return get(rec.id);
}

Result<std::vector<Image>> ImageStore::import(const std::string& path, const std::string& name,
                                              const PullProgressFn& progress) {
  std::vector<std::string> ids;
  {
    auto lock = BERTH_TRY(StoreLock::take(options_.root, LOCK_SH));
    auto plan = ImageImporter::plan(path, name, content_, options_.root);
    if (!plan) {
      lock.release();
      (void)collect(false);
      return std::unexpected(plan.error().wrap("import " + path));
    }
    ImagePuller puller(content_, *snapshots_, PullerOptions{options_.platform, options_.parallel_layers});
    std::vector<std::pair<PulledImage, std::vector<std::string>>> pulled;
    for (auto& entry : plan->entries) {
      auto image = puller.pull(*plan->source, entry.digest.str(), progress);
      if (!image) {
        lock.release();
        (void)collect(false);
        return std::unexpected(image.error().wrap("import " + path));
      }
      pulled.emplace_back(std::move(*image), entry.names);
    }
    // Recorded only once every image in the archive is in place.
    for (auto& [image, names] : pulled) {
      BERTH_TRY(record(image, names));
      ids.push_back(image.config_digest.str());
    }
  }
  (void)collect(false);
  std::vector<Image> out;
  for (auto& id : ids) out.push_back(BERTH_TRY(get(id)));
  return out;
}

Result<std::string> ImageStore::resolve_id(const std::string& reference_or_id) {
  if (reference_or_id.empty()) return invalid("empty image reference");
  if (auto ref = ImageReference::parse(reference_or_id); ref) {
    std::string name = ref->digest ? ref->with_digest(*ref->digest) : ref->with_tag();
    if (auto rec = BERTH_TRY(records_.by_name(name))) return rec->id;
  }
  if (looks_like_id(reference_or_id)) {
    if (reference_or_id.starts_with("sha256:") && reference_or_id.size() == 71) {
      if (auto rec = BERTH_TRY(records_.get(reference_or_id))) return rec->id;
    } else {
      std::string prefix = reference_or_id.starts_with("sha256:") ? reference_or_id.substr(7) : reference_or_id;
      auto ids = BERTH_TRY(records_.ids_with_prefix(prefix));
      if (ids.size() == 1) return ids.front();
      if (ids.size() > 1) return fail(EINVAL, "image ID prefix " + reference_or_id + " is ambiguous");
    }
  }
  return fail(ENOENT, "image " + reference_or_id + " not found");
}

Result<Image> ImageStore::load(const ImageRecord& record) {
  Image image;
  image.id = record.id;
  image.manifest_digest = record.manifest_digest;
  image.manifest_media_type = record.manifest_media_type;
  image.chain_id = record.chain_id;
  image.size = record.size;
  image.created_at = record.created_at;
  for (auto& name : record.names) {
    (name.find('@') == std::string::npos ? image.repo_tags : image.repo_digests).push_back(name);
  }
  auto config_digest = BERTH_TRY(Digest::parse(record.id));
  auto config_body = BERTH_TRY(content_.read_blob(config_digest));
  image.config = BERTH_TRY(parse_image_config(config_body));
  auto manifest_digest = BERTH_TRY(Digest::parse(record.manifest_digest));
  auto manifest_body = BERTH_TRY(content_.read_blob(manifest_digest));
  image.layers = BERTH_TRY(parse_manifest(manifest_body, record.manifest_media_type)).layers;
  return image;
}

Result<Image> ImageStore::get(const std::string& reference_or_id) {
  std::string id = BERTH_TRY(resolve_id(reference_or_id));
  auto rec = BERTH_TRY(records_.get(id));
  if (!rec) return fail(ENOENT, "image " + reference_or_id + " not found");
  return load(*rec);
}

Result<std::vector<Image>> ImageStore::list() {
  std::vector<Image> out;
  for (auto& rec : BERTH_TRY(records_.list())) out.push_back(BERTH_TRY(load(rec)));
  return out;
}

Result<> ImageStore::remove(const std::string& reference_or_id) {
  if (auto ref = ImageReference::parse(reference_or_id); ref) {
    std::string name = ref->digest ? ref->with_digest(*ref->digest) : ref->with_tag();
    if (auto rec = BERTH_TRY(records_.by_name(name))) {
      if (BERTH_TRY(records_.remove_name(name))) BERTH_TRY_VOID(records_.remove_image(rec->id));
      BERTH_TRY(collect(true));
      return {};
    }
  }
  std::string id = BERTH_TRY(resolve_id(reference_or_id));
  BERTH_TRY_VOID(records_.remove_image(id));
  BERTH_TRY(collect(true));
  return {};
}

Result<GcResult> ImageStore::garbage_collect() { return collect(true); }

Result<GcResult> ImageStore::collect(bool wait) {
  GcResult result;
  auto lock = StoreLock::take(options_.root, wait ? LOCK_EX : LOCK_EX | LOCK_NB);
  if (!lock) {
    if (lock.error().code == EWOULDBLOCK) return result;  // a pull is running; it or a later GC cleans up
    return std::unexpected(lock.error());
  }
  result.ran = true;
  for (auto& id : BERTH_TRY(records_.unnamed())) {
    BERTH_TRY_VOID(records_.remove_image(id));
    ++result.images;
  }

  auto live_blobs = BERTH_TRY(records_.live_blobs());
  std::set<std::string> live(live_blobs.begin(), live_blobs.end());
  for (auto& blob : BERTH_TRY(content_.list())) {
    if (live.contains(blob.digest.str())) continue;
    BERTH_TRY_VOID(content_.remove(blob.digest));
    ++result.blobs;
  }

  // Live snapshots: image chains, every active or view snapshot, and their parents.
  auto all = BERTH_TRY(snapshots_->list());
  std::map<std::string, std::string> parent_of;
  std::vector<std::string> roots = BERTH_TRY(records_.live_chains());
  for (auto& s : all) {
    parent_of[s.key] = s.parent;
    if (s.kind != SnapshotKind::committed) roots.push_back(s.key);
  }
  std::set<std::string> reachable;
  for (auto key : roots) {
    while (!key.empty() && reachable.insert(key).second) key = parent_of[key];
  }
  // Children were committed after their parents, so newest first removes leaves first.
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.id > b.id; });
  for (auto& s : all) {
    if (reachable.contains(s.key)) continue;
    BERTH_TRY_VOID(snapshots_->remove(s.key));
    ++result.snapshots;
  }
  return result;
}

Result<StoreUsage> ImageStore::usage() {
  StoreUsage u;
  u.mountpoint = snapshots_->root();
  u.snapshots = BERTH_TRY(snapshots_->total_usage());
  SnapshotUsage content;
  for (auto& blob : BERTH_TRY(content_.list())) {
    content.bytes += blob.size;
    content.inodes += 1;
  }
  u.content = content;
  return u;
}

}  // namespace berth::storage

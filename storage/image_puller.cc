#include "storage/image_puller.h"

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "storage/layer_unpacker.h"
#include "storage/media_types.h"

namespace berth::storage {

namespace {

constexpr int kMaxIndexDepth = 4;

void report(const PullProgressFn& progress, PullProgress::Phase phase, const std::string& digest, int64_t done = 0,
            int64_t total = 0) {
  if (progress) progress(PullProgress{phase, digest, done, total});
}

LayerCompression compression_of(const std::string& media_type_text) {
  switch (media_type::layer_format(media_type_text)) {
    case media_type::LayerFormat::gzip:
      return LayerCompression::gzip;
    case media_type::LayerFormat::zstd:
      return LayerCompression::zstd;
    case media_type::LayerFormat::tar:
      return LayerCompression::none;
    case media_type::LayerFormat::unknown:
      break;
  }
  return LayerCompression::detect;
}

}  // namespace

Result<Digest> ImagePuller::store_manifest(const SourceManifest& manifest, const std::string& what) {
  Digest actual = sha256_of(manifest.body);
  if (actual != manifest.digest) {
    return fail(EIO, what + ": body digest " + actual.str() + " does not match " + manifest.digest.str());
  }
  return content_.put(manifest.body, manifest.digest);
}

Result<> ImagePuller::ensure_blob(ImageSource& source, const Descriptor& blob, const PullProgressFn& progress) {
  if (content_.contains(blob.digest)) {
    report(progress, PullProgress::Phase::exists, blob.digest.str(), blob.size, blob.size);
    return {};
  }
  BlobWriter writer = BERTH_TRY(content_.writer(blob.digest, blob.size));
  BERTH_TRY_VOID(source.fetch_blob(blob, writer, progress));
  BERTH_TRY_VOID(writer.commit());
  report(progress, PullProgress::Phase::downloaded, blob.digest.str(), blob.size, blob.size);
  return {};
}

Result<PulledImage> ImagePuller::pull(ImageSource& source, const std::string& reference, const PullProgressFn& progress) {
  auto context = [&](const Error& e) { return std::unexpected(e.wrap("pull " + source.describe())); };
  PulledImage image;
  std::vector<std::string> blobs;

  auto top = source.fetch_manifest(reference);
  if (!top) return context(top.error());
  SourceManifest current = std::move(*top);
  image.top_digest = current.digest;
  // An index may point at another index (nested platforms); follow a few levels.
  for (int depth = 0;; ++depth) {
    auto type = detect_manifest_type(current.body, current.media_type);
    if (!type) return context(type.error());
    if (auto stored = store_manifest(current, "manifest " + current.digest.str()); !stored) return context(stored.error());
    blobs.push_back(current.digest.str());
    report(progress, PullProgress::Phase::resolved, current.digest.str(), static_cast<int64_t>(current.body.size()),
           static_cast<int64_t>(current.body.size()));
    if (media_type::is_manifest(*type)) {
      image.manifest_digest = current.digest;
      image.manifest_media_type = *type;
      break;
    }
    if (depth >= kMaxIndexDepth) return context(Error{ELOOP, "image index nesting is too deep"});
    auto index = parse_index(current.body, *type);
    if (!index) return context(index.error());
    auto chosen = select_platform(*index, options_.platform);
    if (!chosen) return context(chosen.error());
    auto next = source.fetch_manifest(chosen->digest.str());
    if (!next) return context(next.error());
    if (next->digest != chosen->digest) {
      return context(Error{EIO, "manifest digest " + next->digest.str() + " does not match the index's " +
                                    chosen->digest.str()});
    }
    current = std::move(*next);
  }

  auto manifest = parse_manifest(current.body, image.manifest_media_type);
  if (!manifest) return context(manifest.error());
  if (auto got = ensure_blob(source, manifest->config, progress); !got) return context(got.error());
  auto config_body = content_.read_blob(manifest->config.digest);
  if (!config_body) return context(config_body.error());
  auto config = parse_image_config(*config_body);
  if (!config) return context(config.error());
  // A plain manifest carries no platform; its config does.
  if (!config->os.empty() && !config->architecture.empty()) {
    Platform have{config->os, config->architecture, config->variant, {}};
    if (have.os != options_.platform.os || have.architecture != options_.platform.architecture) {
      return context(Error{ENOENT, "image is for " + have.str() + ", not for this node's " + options_.platform.str()});
    }
  }
  if (config->diff_ids.size() != manifest->layers.size()) {
    return context(Error{EINVAL, "image config lists " + std::to_string(config->diff_ids.size()) +
                                     " diff_ids but the manifest has " + std::to_string(manifest->layers.size()) +
                                     " layers"});
  }
  image.config_digest = manifest->config.digest;
  image.config = std::move(*config);
  image.layers = manifest->layers;
  image.size = manifest->config.size;
  blobs.push_back(manifest->config.digest.str());
  for (auto& layer : image.layers) {
    image.size += layer.size;
    blobs.push_back(layer.digest.str());
  }
  image.blobs = std::move(blobs);

  auto chains = chain_ids(image.config.diff_ids);
  if (!chains.empty()) image.chain_id = chains.back().str();
  if (auto unpacked = unpack_layers(source, image, chains, progress); !unpacked) return context(unpacked.error());
  report(progress, PullProgress::Phase::done, image.manifest_digest.str());
  return image;
}

Result<> ImagePuller::unpack_layers(ImageSource& source, const PulledImage& image, const std::vector<Digest>& chains,
                                    const PullProgressFn& progress) {
  // Layers whose snapshot another image already committed need nothing.
  size_t first_missing = chains.size();
  for (size_t i = 0; i < chains.size(); ++i) {
    if (!snapshots_.exists(chains[i].str())) {
      first_missing = i;
      break;
    }
    report(progress, PullProgress::Phase::exists, image.layers[i].digest.str(), image.layers[i].size,
           image.layers[i].size);
  }
  if (first_missing == chains.size()) return {};

  size_t count = chains.size() - first_missing;
  std::vector<std::optional<OverlaySnapshotter::Staging>> staged(count);
  std::vector<std::optional<Error>> errors(count);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};

  auto work = [&] {
    for (;;) {
      size_t slot = next.fetch_add(1);
      if (slot >= count || failed.load()) return;
      size_t i = first_missing + slot;
      const Descriptor& layer = image.layers[i];
      auto run = [&]() -> Result<> {
        BERTH_TRY_VOID(ensure_blob(source, layer, progress));
        auto staging = BERTH_TRY(snapshots_.stage());
        auto fd = BERTH_TRY(content_.open_blob(layer.digest));
        report(progress, PullProgress::Phase::unpacking, layer.digest.str(), 0, layer.size);
        LayerUnpackOptions options;
        options.compression = compression_of(layer.media_type);
        options.expected_diff_id = image.config.diff_ids[i];
        auto unpacked = LayerUnpacker::unpack(fd.get(), staging.path(), options);
        if (!unpacked) return std::unexpected(unpacked.error().wrap("layer " + layer.digest.str()));
        report(progress, PullProgress::Phase::unpacked, layer.digest.str(), layer.size, layer.size);
        staged[slot].emplace(std::move(staging));
        return {};
      };
      if (auto r = run(); !r) {
        errors[slot] = r.error();
        failed.store(true);
        return;
      }
    }
  };
  size_t threads = std::min<size_t>(count, static_cast<size_t>(std::max(1, options_.parallel_layers)));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (auto& e : errors) {
    if (e) return std::unexpected(*e);
  }
  for (size_t slot = 0; slot < count; ++slot) {
    size_t i = first_missing + slot;
    std::string parent = i == 0 ? std::string() : chains[i - 1].str();
    BERTH_TRY_VOID(snapshots_.commit(*staged[slot], chains[i].str(), parent));
  }
  return {};
}

}  // namespace berth::storage

#include "storage/registry_image_source.h"

namespace berth::storage {

Result<SourceManifest> RegistryImageSource::fetch_manifest(const std::string& reference) {
  auto m = BERTH_TRY(client_.fetch_manifest(registry_, repository_, reference, credentials_));
  return SourceManifest{std::move(m.media_type), std::move(m.body), std::move(m.digest)};
}

Result<> RegistryImageSource::fetch_blob(const Descriptor& blob, BlobWriter& writer, const PullProgressFn& progress) {
  BlobProgressFn relay;
  if (progress) {
    relay = [&progress](const BlobProgress& p) {
      progress(PullProgress{PullProgress::Phase::downloading, p.digest.str(), p.done, p.total});
    };
  }
  return client_.fetch_blob(registry_, repository_, blob.digest, blob.size, writer, credentials_, relay);
}

}  // namespace berth::storage

// An ImageSource reading one repository of a registry through RegistryClient.
#pragma once

#include <string>

#include "storage/image_source.h"
#include "storage/registry_client.h"

namespace berth::storage {

class RegistryImageSource : public ImageSource {
 public:
  RegistryImageSource(RegistryClient& client, std::string registry, std::string repository,
                      RegistryCredentials credentials)
      : client_(client), registry_(std::move(registry)), repository_(std::move(repository)),
        credentials_(std::move(credentials)) {}

  std::string describe() const override { return registry_ + "/" + repository_; }
  Result<SourceManifest> fetch_manifest(const std::string& reference) override;
  Result<> fetch_blob(const Descriptor& blob, BlobWriter& writer, const PullProgressFn& progress) override;

 private:
  RegistryClient& client_;
  std::string registry_;
  std::string repository_;
  RegistryCredentials credentials_;
};

}  // namespace berth::storage

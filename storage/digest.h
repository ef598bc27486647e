// Content digests as the OCI image spec writes them ("sha256:<64 hex>") and a
// streaming SHA-256 so every byte can be verified as it passes.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace berth::storage {

struct Digest {
  std::string algorithm;  // only "sha256" is accepted
  std::string hex;        // lower-case, 64 characters

  // Rejects anything but a well-formed sha256 digest, so a digest can name a file.
  static Result<Digest> parse(std::string_view text);
  std::string str() const { return algorithm + ":" + hex; }
  bool empty() const { return hex.empty(); }
  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;
};

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  Digest finish();  // the hasher is spent afterwards

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
};

Digest sha256_of(std::string_view data);

}  // namespace berth::storage

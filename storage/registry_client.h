// Pulls manifests and blobs from registries speaking the OCI distribution spec (Docker
// registry v2) over libcurl.
//
// - Endpoints come from RegistryHosts (hosts.toml mirrors, then the registry itself);
//   a failing endpoint falls through to the next and the last error is reported.
//   Requests to a mirror carry `?ns=<registry>` as containerd's do.
// - Auth: Bearer tokens per the Docker token spec (cached per endpoint, repository and
//   credentials until they expire), Basic when the registry asks for it, or the CRI
//   registry_token sent as is.
// - Retries: 5xx, 429 and network errors are retried max_attempts times per endpoint
//   with doubling backoff (Retry-After honoured up to the cap); a mirror that refuses
//   connections is skipped at once. Blob downloads resume with Range after a cut.
// - Redirects (blob storage) are followed by hand: Authorization never goes to
//   another host.
// - TLS: system CAs plus the endpoint's ca files, skip_verify, client certificates.
//   Proxies: libcurl's environment handling (http_proxy, HTTPS_PROXY, https_proxy,
//   ALL_PROXY, NO_PROXY) stays in force; upper-case HTTP_PROXY, which libcurl ignores
//   for CGI-safety, is honoured too as Go programs (containerd) do.
//
// Errors name the image and the URL: EACCES unauthorized (401/403), ENOENT manifest or
// blob unknown (404), EIO server errors after retries or a digest mismatch, ETIMEDOUT
// when no byte arrives for stall_timeout, EFBIG oversized manifests or blobs, EPROTO
// TLS failures and protocol violations, ECONNREFUSED unreachable endpoints.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/error.h"
#include "storage/content_store.h"
#include "storage/digest.h"
#include "storage/registry_auth.h"
#include "storage/registry_hosts.h"

namespace berth::storage {

struct ManifestResponse {
  std::string media_type;  // from Content-Type, else the body's mediaType, else guessed from its shape
  std::string body;
  Digest digest;  // sha256 of body
};

struct BlobProgress {
  Digest digest;
  int64_t done = 0;
  int64_t total = 0;
};
using BlobProgressFn = std::function<void(const BlobProgress&)>;

struct RegistryClientOptions {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds stall_timeout{30000};  // abort when no byte arrives for this long (about 1 s resolution)
  int max_attempts = 4;                            // per endpoint, for 5xx/429/network errors
  std::chrono::milliseconds backoff_base{200};     // doubles per attempt, capped at backoff_cap
  std::chrono::milliseconds backoff_cap{10000};
  std::string user_agent = "berth/0.1";
  int64_t max_manifest_size = 4 << 20;
};

// Thread-safe: blobs are fetched in parallel from several threads through one client,
// which shares connections, DNS and TLS sessions between them.
class RegistryClient {
 public:
  explicit RegistryClient(RegistryHosts hosts, RegistryClientOptions options = {});
  ~RegistryClient();
  RegistryClient(RegistryClient&&) noexcept;
  RegistryClient& operator=(RegistryClient&&) noexcept;

  // GET <prefix>/<repository>/manifests/<reference> (tag or digest), accepting OCI
  // manifests and indexes and Docker schema2 manifests and lists. A digest reference
  // must match the body. Tags use endpoints that may resolve, digests those that may pull.
  Result<ManifestResponse> fetch_manifest(const std::string& registry, const std::string& repository,
                                          const std::string& reference, const RegistryCredentials& creds = {});

  // Streams <prefix>/<repository>/blobs/<digest> into writer; the caller commits (which
  // verifies size and digest). size < 0: unknown. Resumes with Range after a cut, and
  // starts over (writer.reset()) when a server ignores Range. A body larger than `size`
  // is refused as it arrives. progress runs on the calling thread as data comes in.
  Result<> fetch_blob(const std::string& registry, const std::string& repository, const Digest& digest, int64_t size,
                      BlobWriter& writer, const RegistryCredentials& creds = {}, const BlobProgressFn& progress = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Checks a repository path ("library/busybox") and a reference (tag or digest) against
// the distribution spec's grammar, so neither can smuggle path segments into a URL.
Result<> validate_repository(const std::string& repository);
Result<> validate_reference(const std::string& reference);

}  // namespace berth::storage

// Blobs addressed by their sha256 digest under <root>/blobs/sha256/<hex>.
// A blob is written to <root>/ingest first, hashed as it streams, and renamed into
// place only after its size and digest match and the data is fsynced: a blob path
// either holds exactly the bytes its name promises or does not exist, also after a
// crash (stale ingest files are swept on open).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "storage/digest.h"

namespace berth::storage {

class BlobWriter;

struct BlobInfo {
  Digest digest;
  int64_t size = 0;
};

class ContentStore {
 public:
  // Creates the directories as needed and removes ingest files left by a crash.
  static Result<ContentStore> open(std::string root);

  const std::string& root() const { return root_; }
  std::string blob_path(const Digest& digest) const;
  bool contains(const Digest& digest) const;
  Result<int64_t> size_of(const Digest& digest) const;
  Result<UniqueFd> open_blob(const Digest& digest) const;
  // Reads a small blob (manifest, config) whole; refuses blobs above max_size.
  Result<std::string> read_blob(const Digest& digest, int64_t max_size = 16 << 20) const;

  // Starts a write. expected_size < 0 means unknown. An expected digest that is
  // already stored still gets a writer: the data is verified and then dropped.
  Result<BlobWriter> writer(const Digest& expected, int64_t expected_size = -1) const;
  // Stores a whole buffer under its own digest (or verifies it against expected).
  Result<Digest> put(std::string_view data, const std::optional<Digest>& expected = std::nullopt) const;

  // Idempotent: removing a missing blob succeeds.
  Result<> remove(const Digest& digest) const;
  Result<std::vector<BlobInfo>> list() const;

 private:
  explicit ContentStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

// One in-flight blob. Destroying an uncommitted writer deletes its temp file.
class BlobWriter {
 public:
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  ~BlobWriter();

  Result<> write(std::string_view chunk);
  // Drops what was written so far (a download restarting from byte 0).
  Result<> reset();
  int64_t written() const { return written_; }
  // Verifies size and digest, fsyncs and renames into place.
  Result<> commit();

 private:
  friend class ContentStore;
  BlobWriter(std::string temp_path, std::string final_path, UniqueFd fd, Digest expected, int64_t expected_size);
  void discard();

  std::string temp_path_;
  std::string final_path_;
  UniqueFd fd_;
  Digest expected_;
  int64_t expected_size_ = -1;
  int64_t written_ = 0;
  std::optional<Sha256> hasher_;
};

}  // namespace berth::storage

// The invoker's durable memory: <dir>/<container_id>-<ifname>.json per attachment,
// written with fsync of the file and of the dir so that a power cut right after
// ADD started still leaves enough on disk to run DEL.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "network/cni_attachment.h"

namespace berth::network {

class CniCache {
 public:
  explicit CniCache(std::string dir);

  std::string path_of(const std::string& container_id, const std::string& ifname) const;
  bool exists(const std::string& container_id, const std::string& ifname) const;

  // nullopt when there is no entry. EINVAL when the file cannot be understood or
  // belongs to another attachment (the name "<a>-<b>" is ambiguous when ids hold '-').
  Result<std::optional<CachedAttachment>> load(const std::string& container_id, const std::string& ifname) const;

  // Creates the dir (0700) on first use; the file is 0600.
  Result<> store(const CniAttachment& attachment, const CniNetworkConfig& config,
                 const std::optional<CniResult>& result);

  // ENOENT is fine.
  Result<> remove(const std::string& container_id, const std::string& ifname);

  // Every readable entry; unreadable files are logged and skipped. A missing dir is
  // an empty list.
  Result<std::vector<CachedAttachment>> list() const;

 private:
  Result<CachedAttachment> read_entry(const std::string& path) const;

  std::string dir_;
};

}  // namespace berth::network

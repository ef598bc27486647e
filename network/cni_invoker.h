// Runs CNI plugin chains (ADD, DEL, CHECK) for pod sandboxes, with a durable cache
// so that DEL can always be run: after a crash half-way through ADD, after the
// config on disk changed or went away, after the netns is gone.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "network/cni_attachment.h"
#include "network/cni_cache.h"
#include "network/cni_config.h"
#include "network/cni_result.h"

namespace berth::network {

class CniInvoker {
 public:
  // bin_dirs are searched in order for each plugin type; cache_dir must belong to
  // this invoker alone (one daemon per cache dir).
  CniInvoker(std::vector<std::string> bin_dirs, std::string cache_dir,
             std::chrono::seconds plugin_timeout = std::chrono::seconds(60));

  // Runs every plugin's ADD in order and returns the last result. The cache entry is
  // written before the first plugin runs. On failure the plugins that ran are
  // DEL'd in reverse order; the entry stays only if that DEL failed. EEXIST when the
  // attachment is already cached (DEL it first).
  Result<CniResult> add(const CniAttachment& attachment, const CniNetworkConfig& config);

  // Runs DEL in reverse order from the cached config and result; the current config
  // is used only when nothing is cached, and nothing cached with no config is
  // success. The cache entry goes once every plugin's DEL succeeded.
  Result<> del(const CniAttachment& attachment, const CniNetworkConfig* current_config_or_null);

  // Runs CHECK in order with the cached result. Success without running anything
  // when the cached config sets disableCheck; ENOTSUP for configs older than 0.4.0;
  // ENOENT when no completed ADD is cached.
  Result<> check(const CniAttachment& attachment);

  bool has_cache(const std::string& container_id, const std::string& ifname) const;
  // Every cached attachment, complete or not: what a daemon compares with its pods
  // at start to DEL the orphans.
  Result<std::vector<CachedAttachment>> list_cached() const;

  // The first <dir>/<type> that is an executable regular file.
  Result<std::string> find_plugin(const std::string& type) const;

 private:
  struct LockEntry {
    std::mutex mutex;
    int users = 0;
  };
  class ContainerLock;
  struct InvokeOutcome {
    bool started = false;  // the plugin ran (so a rollback must DEL it too)
    long cni_code = 0;     // "code" of the plugin's error JSON, 0 if none
  };

  // Runs one plugin; for ADD returns its result JSON, otherwise null.
  Result<nlohmann::json> invoke(const CniNetworkConfig& config, size_t index, const char* command,
                                const CniAttachment& attachment, const nlohmann::json* prev_result,
                                InvokeOutcome* outcome);
  Result<> del_plugins(const CniNetworkConfig& config, size_t count, const CniAttachment& attachment,
                       const nlohmann::json* prev_result);
  std::vector<std::string> environment(const char* command, const CniAttachment& attachment) const;

  std::vector<std::string> bin_dirs_;
  CniCache cache_;
  std::chrono::seconds plugin_timeout_;
  std::string path_env_;

  std::mutex locks_mutex_;
  std::map<std::string, std::unique_ptr<LockEntry>> locks_;
};

}  // namespace berth::network

// One interface of one container on one CNI network: what the runtime asks for, and
// what the invoker remembers about it on disk.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "network/cni_config.h"
#include "network/cni_result.h"

namespace berth::network {

struct CniAttachment {
  std::string container_id;  // letters, digits, '_', '.', '-' (the libcni rule)
  std::string netns_path;    // required for ADD; DEL passes it even when it is gone
  std::string ifname = "eth0";
  // CNI_ARGS as K=V pairs, e.g. IgnoreUnknown=1, K8S_POD_NAMESPACE, K8S_POD_NAME,
  // K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID.
  std::vector<std::pair<std::string, std::string>> args;
  // Keyed by capability ("portMappings", "dns", "bandwidth", "ips", "mac", ...);
  // each plugin sees only the keys it declares in its capabilities.
  nlohmann::json capability_args = nlohmann::json::object();
};

// A cache entry: written before ADD runs any plugin, completed with the result.
struct CachedAttachment {
  CniAttachment attachment;
  CniNetworkConfig config;          // the config ADD used; DEL runs this one
  std::optional<CniResult> result;  // empty: ADD started and never finished
  std::string path;                 // the cache file
};

}  // namespace berth::network

// A CNI network configuration as berth runs it: always a list of plugins, whether
// the file on disk was a .conflist or a single-plugin .conf.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"

namespace berth::network {

struct CniPluginConfig {
  std::string type;                         // binary name looked up in the plugin dirs
  std::map<std::string, bool> capabilities; // as declared; only true ones get runtimeConfig
  nlohmann::json raw;                       // the plugin's object exactly as configured

  bool has_capability(const std::string& name) const;
};

struct CniNetworkConfig {
  std::string cni_version;
  std::string name;
  bool disable_check = false;
  std::vector<CniPluginConfig> plugins;
  std::string source;  // file it was read from; "" when built in memory

  // The list form ({cniVersion, name, disableCheck, plugins}); parse_network_config
  // reads it back, which is how the invoker's cache stores the config it used.
  nlohmann::json to_json() const;
};

// Parses a conflist object, or (when it has no "plugins" key) a single-plugin conf
// wrapped into a list. `source` names the input in error messages.
Result<CniNetworkConfig> parse_network_config(const nlohmann::json& doc, const std::string& source);

// Reads and parses one config file.
Result<CniNetworkConfig> load_network_file(const std::string& path);

// The default network: the first regular file of conf_dir, in byte order of names,
// ending in .conflist, .conf or .json (the rule libcni and containerd apply).
// ENOENT when the dir is missing or holds no such file; EINVAL, naming the file,
// when that first file is not a valid config (later files are not tried, so a typo
// cannot silently switch pods to another network).
Result<CniNetworkConfig> load_default_network(const std::string& conf_dir);

// CNI versions this runtime knows how to talk to.
bool is_supported_cni_version(const std::string& version);

// Compares dotted versions numerically: <0, 0, >0. Non-numeric parts count as 0.
int compare_cni_versions(const std::string& a, const std::string& b);

}  // namespace berth::network

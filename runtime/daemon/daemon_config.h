// berthd's settings: built-in defaults, then /etc/berth/berthd.toml (or --config),
// then command-line flags, each overriding the one before.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"

namespace berth::daemon {

struct DaemonConfig {
  std::string root = "/var/lib/berth";
  std::string state = "/run/berth";
  std::string socket = "/run/berth/berth.sock";
  std::string log_level = "info";
  std::string shim_binary;     // "" = berth-shim next to berthd, else on PATH
  std::string runtime_binary;  // "" = berth next to berthd, else on PATH
  std::string cgroup_root = "/berth";
  std::vector<std::string> cni_conf_dirs = {"/etc/cni/net.d"};
  std::vector<std::string> cni_bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
  int cni_timeout_seconds = 60;
  std::string registry_config_path = "/etc/berth/certs.d";
  std::vector<std::string> insecure_registries;
  int parallel_layers = 3;
  bool restrict_oom_score_adj = true;
  std::string runtime_version = "0.1.0";
};

// Reads a TOML file over `config`. Unknown keys are an error (a typo must not be
// silently ignored); a missing file is ENOENT.
Result<> load_config_file(const std::string& path, DaemonConfig& config);

// The config as TOML, every key present: `berthd --print-config`.
std::string to_toml(const DaemonConfig& config);

}  // namespace berth::daemon

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
  // The streaming server (exec, attach, port-forward URLs). kubelet proxies to it,
  // so loopback is enough; port 0 takes any free port.
  std::string stream_address = "127.0.0.1";
  int stream_port = 0;
  int stream_idle_timeout_seconds = 4 * 3600;
  int stream_creation_timeout_seconds = 30;
  int stream_token_ttl_seconds = 60;
  int stream_max_connections = 128;
  std::string runtime_version = "0.1.0";
};

// Reads a TOML file over `config`. Unknown keys are an error (a typo must not be
// silently ignored); a missing file is ENOENT.
Result<> load_config_file(const std::string& path, DaemonConfig& config);

// Values that parse but make no sense (a negative timeout, port 70000).
Result<> check_config(const DaemonConfig& config);

// The config as TOML, every key present: `berthd --print-config`.
std::string to_toml(const DaemonConfig& config);

}  // namespace berth::daemon

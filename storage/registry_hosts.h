// Where to pull a registry's content from, configured the way containerd does it:
// <config_dir>/<registry>/hosts.toml (see containerd docs/hosts.md) lists mirrors
// tried before the registry itself, with their TLS settings and extra headers.
//
// Lookup for registry "host:port": <dir>/host_port_/, then <dir>/host:port/, then
// <dir>/_default/; the first directory that exists wins. A directory without
// hosts.toml falls back to Docker's certs.d layout (*.crt CA files, *.cert/*.key
// client pairs), applied to the registry itself.
//
// hosts.toml keys (top level for the server, or under [host."<url>"] per mirror):
//   server = "https://..."            top level only; default: the registry itself
//   capabilities = ["pull","resolve","push"]   default: all three
//   skip_verify = bool
//   ca = "path" | ["path", ...]
//   client = "pem" | ["pem", ...] | [["cert","key"], ...]   a lone path holds cert and key
//   override_path = bool               the URL's path is the API root (no "/v2" appended)
//   header = { name = "v" | ["v1","v2"] }
// Relative paths are relative to the hosts.toml's directory. [host] entries keep file
// order. Unknown keys (dial_timeout, proxy) are accepted and ignored.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace berth::storage {

struct RegistryEndpoint {
  std::string url;                  // "https://registry-1.docker.io", "http://127.0.0.1:5000" (no trailing slash)
  std::string path_prefix = "/v2";  // API root; override_path makes it the URL's own path
  bool can_pull = true, can_resolve = true;
  bool skip_verify = false;
  std::vector<std::string> ca_files;                              // added to the system CAs
  std::vector<std::pair<std::string, std::string>> client_certs;  // {cert, key}; key empty: the cert file holds it
  std::map<std::string, std::string> headers;                     // multi-valued headers joined with ", "
};

class RegistryHosts {
 public:
  RegistryHosts() = default;  // no config: every registry is its own only endpoint

  // Parses every hosts.toml under config_dir now, so a malformed file is reported at
  // startup (naming the file and key). endpoints_for() reads the files again on each
  // call, so edits apply without a restart, as in containerd. A missing dir is fine.
  static Result<RegistryHosts> load(const std::string& config_dir);

  // Registries reached over plain http when no server is configured for them.
  void add_insecure(std::string registry);

  // Endpoints to try in order: the [host] entries of the registry's hosts.toml (or
  // _default's), then the server (docker.io -> https://registry-1.docker.io; else
  // https://<registry>, or http:// if insecure).
  Result<std::vector<RegistryEndpoint>> endpoints_for(const std::string& registry) const;

  // Parses one hosts.toml text; `dir` resolves relative paths and `file` names the file
  // in errors. Exposed for tests.
  static Result<std::vector<RegistryEndpoint>> parse_hosts_toml(const std::string& text, const std::string& dir,
                                                                const std::string& file, const std::string& registry,
                                                                bool insecure);

 private:
  bool is_insecure(const std::string& registry) const;
  std::string config_dir_;
  std::vector<std::string> insecure_;
};

// The server a registry name means when nothing is configured.
RegistryEndpoint default_registry_endpoint(const std::string& registry, bool insecure);

}  // namespace berth::storage

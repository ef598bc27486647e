// The image config blob (OCI image-spec config.json / Docker v1 image JSON) and the
// container defaults it implies: what runs, as whom, where, with which environment.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "storage/digest.h"

namespace berth::storage {

struct ContainerDefaults {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string working_dir;
  std::string user;  // "name", "uid", "uid:gid", "name:group"
  std::vector<std::string> exposed_ports;  // "8080/tcp"
  std::vector<std::string> volumes;        // container paths
  std::string stop_signal;
  std::map<std::string, std::string> labels;
};

struct ImageConfig {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string created;  // RFC 3339, may be empty
  std::string author;
  std::vector<Digest> diff_ids;
  ContainerDefaults defaults;
  int64_t history_entries = 0;
};

// Validates rootfs.type == "layers" and every diff_id; the defaults are optional.
Result<ImageConfig> parse_image_config(std::string_view body);

// Image Env overlaid with the request's env: a request KEY replaces the image's KEY,
// order kept (image first), as docker and containerd do.
std::vector<std::string> merge_env(const std::vector<std::string>& image_env, const std::vector<std::string>& request_env);

// The argv a container runs when the request gives `command` (overrides Entrypoint)
// and/or `args` (overrides Cmd), following the Kubernetes rules.
std::vector<std::string> effective_argv(const ContainerDefaults& image, const std::vector<std::string>& command,
                                        const std::vector<std::string>& args);

// ChainID of each layer prefix: chain[0] = diff[0], chain[n] = sha256(chain[n-1] + " " + diff[n]).
std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids);

}  // namespace berth::storage

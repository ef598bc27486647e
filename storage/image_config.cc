#include "storage/image_config.h"

#include <nlohmann/json.hpp>

namespace berth::storage {

using nlohmann::json;

namespace {

Result<std::vector<std::string>> string_list(const json& j, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return invalid(where + "." + key + " must be an array of strings");
  for (auto& v : *it) {
    if (!v.is_string()) return invalid(where + "." + key + " must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::vector<std::string>> object_keys(const json& j, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) return invalid(where + "." + key + " must be an object");
  for (auto& [k, v] : it->items()) out.push_back(k);
  return out;
}

std::string string_or_empty(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<ImageConfig> parse_image_config(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("image config: not a JSON object");
  ImageConfig config;
  config.os = string_or_empty(j, "os");
  config.architecture = string_or_empty(j, "architecture");
  config.variant = string_or_empty(j, "variant");
  config.created = string_or_empty(j, "created");
  config.author = string_or_empty(j, "author");
  if (auto h = j.find("history"); h != j.end() && h->is_array()) config.history_entries = static_cast<int64_t>(h->size());

  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) return invalid("image config: missing \"rootfs\"");
  if (string_or_empty(*rootfs, "type") != "layers") return invalid("image config: rootfs.type must be \"layers\"");
  for (auto& id : BERTH_TRY(string_list(*rootfs, "diff_ids", "image config rootfs"))) {
    auto digest = Digest::parse(id);
    if (!digest) return std::unexpected(digest.error().wrap("image config rootfs.diff_ids"));
    config.diff_ids.push_back(std::move(*digest));
  }

  auto c = j.find("config");
  if (c == j.end() || c->is_null()) return config;
  if (!c->is_object()) return invalid("image config: \"config\" must be an object");
  const std::string where = "image config config";
  ContainerDefaults& d = config.defaults;
  d.entrypoint = BERTH_TRY(string_list(*c, "Entrypoint", where));
  d.cmd = BERTH_TRY(string_list(*c, "Cmd", where));
  d.env = BERTH_TRY(string_list(*c, "Env", where));
  d.working_dir = string_or_empty(*c, "WorkingDir");
  d.user = string_or_empty(*c, "User");
  d.exposed_ports = BERTH_TRY(object_keys(*c, "ExposedPorts", where));
  d.volumes = BERTH_TRY(object_keys(*c, "Volumes", where));
  d.stop_signal = string_or_empty(*c, "StopSignal");
  if (auto labels = c->find("Labels"); labels != c->end() && labels->is_object()) {
    for (auto& [k, v] : labels->items()) {
      if (v.is_string()) d.labels[k] = v.get<std::string>();
    }
  }
  return config;
}

std::vector<std::string> merge_env(const std::vector<std::string>& image_env, const std::vector<std::string>& request_env) {
  auto key_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> out = image_env;
  for (auto& kv : request_env) {
    std::string key = key_of(kv);
    auto it = std::find_if(out.begin(), out.end(), [&](const std::string& e) { return key_of(e) == key; });
    if (it != out.end()) {
      *it = kv;
    } else {
      out.push_back(kv);
    }
  }
  return out;
}

std::vector<std::string> effective_argv(const ContainerDefaults& image, const std::vector<std::string>& command,
                                        const std::vector<std::string>& args) {
  // Kubernetes: command replaces Entrypoint and drops the image Cmd; args alone
  // replace Cmd and keep Entrypoint.
  std::vector<std::string> argv;
  if (!command.empty()) {
    argv = command;
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  argv = image.entrypoint;
  const auto& tail = args.empty() ? image.cmd : args;
  argv.insert(argv.end(), tail.begin(), tail.end());
  return argv;
}

std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> out;
  out.reserve(diff_ids.size());
  for (auto& diff : diff_ids) {
    out.push_back(out.empty() ? diff : sha256_of(out.back().str() + " " + diff.str()));
  }
  return out;
}

}  // namespace berth::storage

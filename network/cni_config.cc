#include "network/cni_config.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "common/file_util.h"

namespace berth::network {

namespace {

using nlohmann::json;

std::unexpected<Error> bad(const std::string& source, const std::string& what) {
  return invalid("CNI config " + source + ": " + what);
}

// Network names end up in iptables comments, IPAM paths and cache file names, so
// they follow the same character rule as libcni.
bool valid_network_name(const std::string& name) {
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

Result<std::string> required_string(const json& obj, const char* key, const std::string& where,
                                    const std::string& source) {
  auto it = obj.find(key);
  if (it == obj.end()) return bad(source, where + "missing \"" + key + "\"");
  if (!it->is_string()) return bad(source, where + "\"" + key + "\" must be a string");
  std::string value = it->get<std::string>();
  if (value.empty()) return bad(source, where + "\"" + key + "\" is empty");
  return value;
}

Result<std::string> checked_version(const json& doc, const std::string& source) {
  auto version = BERTH_TRY(required_string(doc, "cniVersion", "", source));
  if (!is_supported_cni_version(version))
    return bad(source, "unsupported cniVersion \"" + version + "\"");
  return version;
}

Result<CniPluginConfig> parse_plugin(const json& obj, const std::string& where, const std::string& source) {
  if (!obj.is_object()) return bad(source, where + "must be an object");
  CniPluginConfig plugin;
  plugin.type = BERTH_TRY(required_string(obj, "type", where, source));
  // The type becomes a file name inside the plugin dirs: no path tricks.
  if (plugin.type.find('/') != std::string::npos || plugin.type == "." || plugin.type == "..")
    return bad(source, where + "invalid plugin type \"" + plugin.type + "\"");
  if (auto caps = obj.find("capabilities"); caps != obj.end()) {
    if (!caps->is_object()) return bad(source, where + "\"capabilities\" must be an object");
    for (auto& [name, enabled] : caps->items()) {
      if (!enabled.is_boolean())
        return bad(source, where + "capability \"" + name + "\" must be true or false");
      plugin.capabilities[name] = enabled.get<bool>();
    }
  }
  plugin.raw = obj;
  return plugin;
}

// libcni accepts disableCheck as a bool or as the strings "true"/"false".
Result<bool> parse_disable_check(const json& doc, const std::string& source) {
  auto it = doc.find("disableCheck");
  if (it == doc.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    auto text = it->get<std::string>();
    if (text == "true") return true;
    if (text == "false") return false;
  }
  return bad(source, "\"disableCheck\" must be true or false");
}

bool has_config_extension(const std::string& name) {
  for (std::string_view ext : {".conflist", ".conf", ".json"}) {
    if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) return true;
  }
  return false;
}

}  // namespace

bool CniPluginConfig::has_capability(const std::string& name) const {
  auto it = capabilities.find(name);
  return it != capabilities.end() && it->second;
}

json CniNetworkConfig::to_json() const {
  json plugin_list = json::array();
  for (auto& p : plugins) plugin_list.push_back(p.raw);
  json out = {{"cniVersion", cni_version}, {"name", name}, {"plugins", std::move(plugin_list)}};
  if (disable_check) out["disableCheck"] = true;
  return out;
}

bool is_supported_cni_version(const std::string& version) {
  static constexpr std::array<std::string_view, 7> known = {"0.1.0", "0.2.0", "0.3.0", "0.3.1",
                                                            "0.4.0", "1.0.0", "1.1.0"};
  return std::find(known.begin(), known.end(), version) != known.end();
}

int compare_cni_versions(const std::string& a, const std::string& b) {
  auto pa = split(a, '.', false), pb = split(b, '.', false);
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    auto num = [](const std::vector<std::string>& parts, size_t i) -> unsigned long {
      if (i >= parts.size() || parts[i].empty()) return 0;
      if (!std::all_of(parts[i].begin(), parts[i].end(), [](char c) { return c >= '0' && c <= '9'; })) return 0;
      return std::stoul(parts[i].substr(0, 9));
    };
    unsigned long x = num(pa, i), y = num(pb, i);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

Result<CniNetworkConfig> parse_network_config(const json& doc, const std::string& source) {
  if (!doc.is_object()) return bad(source, "not a JSON object");
  CniNetworkConfig config;
  config.source = source;
  config.cni_version = BERTH_TRY(checked_version(doc, source));
  config.name = BERTH_TRY(required_string(doc, "name", "", source));
  if (!valid_network_name(config.name))
    return bad(source, "invalid network name \"" + config.name + "\" (letters, digits, '_', '.', '-')");

  auto plugins = doc.find("plugins");
  if (plugins == doc.end()) {
    // A single-plugin .conf: the whole document is the plugin's config.
    config.plugins.push_back(BERTH_TRY(parse_plugin(doc, "", source)));
    return config;
  }
  config.disable_check = BERTH_TRY(parse_disable_check(doc, source));
  if (!plugins->is_array()) return bad(source, "\"plugins\" must be an array");
  if (plugins->empty()) return bad(source, "\"plugins\" is empty");
  for (size_t i = 0; i < plugins->size(); ++i) {
    std::string where = "plugins[" + std::to_string(i) + "]: ";
    config.plugins.push_back(BERTH_TRY(parse_plugin((*plugins)[i], where, source)));
  }
  return config;
}

Result<CniNetworkConfig> load_network_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::unexpected(text.error().wrap("read CNI config"));
  json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return bad(path, "not valid JSON");
  return parse_network_config(doc, path);
}

Result<CniNetworkConfig> load_default_network(const std::string& conf_dir) {
  DIR* dir = ::opendir(conf_dir.c_str());
  if (!dir) {
    int err = errno;
    if (err == ENOENT) return fail(ENOENT, "no CNI network config: directory " + conf_dir + " does not exist");
    return sys_fail("open CNI config dir " + conf_dir, err);
  }
  std::vector<std::string> names;
  while (dirent* ent = ::readdir(dir)) {
    std::string name = ent->d_name;
    if (!has_config_extension(name)) continue;
    struct stat st{};
    // Follow symlinks: config management tools often link files into place.
    if (::stat((conf_dir + "/" + name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    names.push_back(std::move(name));
  }
  ::closedir(dir);
  if (names.empty())
    return fail(ENOENT, "no CNI network config in " + conf_dir + " (no .conflist, .conf or .json file)");
  std::sort(names.begin(), names.end());
  return load_network_file(conf_dir + "/" + names.front());
}

}  // namespace berth::network

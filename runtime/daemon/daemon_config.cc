#include "runtime/daemon/daemon_config.h"

#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace berth::daemon {

namespace {

Result<> read_string(const toml::table& t, std::string_view key, std::string& out) {
  if (auto* node = t.get(key)) {
    auto v = node->value<std::string>();
    if (!v) return invalid(std::string(key) + " must be a string");
    out = *v;
  }
  return {};
}

Result<> read_strings(const toml::table& t, std::string_view key, std::vector<std::string>& out) {
  if (auto* node = t.get(key)) {
    auto* arr = node->as_array();
    if (!arr) return invalid(std::string(key) + " must be an array of strings");
    out.clear();
    for (auto& item : *arr) {
      auto v = item.value<std::string>();
      if (!v) return invalid(std::string(key) + " must be an array of strings");
      out.push_back(*v);
    }
  }
  return {};
}

Result<> read_int(const toml::table& t, std::string_view key, int& out) {
  if (auto* node = t.get(key)) {
    auto v = node->value<int64_t>();
    if (!v) return invalid(std::string(key) + " must be an integer");
    out = static_cast<int>(*v);
  }
  return {};
}

Result<> read_bool(const toml::table& t, std::string_view key, bool& out) {
  if (auto* node = t.get(key)) {
    auto v = node->value<bool>();
    if (!v) return invalid(std::string(key) + " must be true or false");
    out = *v;
  }
  return {};
}

Result<> only_known(const toml::table& t, const std::set<std::string>& known, const std::string& where) {
  for (auto& [key, value] : t)
    if (!known.contains(std::string(key.str())))
      return invalid("unknown key '" + std::string(key.str()) + "'" + (where.empty() ? "" : " in [" + where + "]"));
  return {};
}

}  // namespace

Result<> load_config_file(const std::string& path, DaemonConfig& c) {
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    if (std::string(e.description()).find("File could not be opened") != std::string::npos)
      return fail(ENOENT, "config file " + path + " not found");
    return invalid("config " + path + " " + where.str() + ": " + std::string(e.description()));
  }
  auto wrap = [&](Result<> r) -> Result<> {
    if (!r) return invalid("config " + path + ": " + r.error().message);
    return {};
  };
  BERTH_TRY_VOID(wrap(only_known(doc,
                                 {"root", "state", "socket", "log_level", "shim_binary", "runtime_binary",
                                  "cgroup_root", "restrict_oom_score_adj", "cni", "registry", "streaming"},
                                 "")));
  BERTH_TRY_VOID(wrap(read_string(doc, "root", c.root)));
  BERTH_TRY_VOID(wrap(read_string(doc, "state", c.state)));
  BERTH_TRY_VOID(wrap(read_string(doc, "socket", c.socket)));
  BERTH_TRY_VOID(wrap(read_string(doc, "log_level", c.log_level)));
  BERTH_TRY_VOID(wrap(read_string(doc, "shim_binary", c.shim_binary)));
  BERTH_TRY_VOID(wrap(read_string(doc, "runtime_binary", c.runtime_binary)));
  BERTH_TRY_VOID(wrap(read_string(doc, "cgroup_root", c.cgroup_root)));
  BERTH_TRY_VOID(wrap(read_bool(doc, "restrict_oom_score_adj", c.restrict_oom_score_adj)));
  if (auto* cni = doc.get_as<toml::table>("cni")) {
    BERTH_TRY_VOID(wrap(only_known(*cni, {"conf_dirs", "bin_dirs", "timeout_seconds"}, "cni")));
    BERTH_TRY_VOID(wrap(read_strings(*cni, "conf_dirs", c.cni_conf_dirs)));
    BERTH_TRY_VOID(wrap(read_strings(*cni, "bin_dirs", c.cni_bin_dirs)));
    BERTH_TRY_VOID(wrap(read_int(*cni, "timeout_seconds", c.cni_timeout_seconds)));
  } else if (doc.contains("cni")) {
    return invalid("config " + path + ": cni must be a table");
  }
  if (auto* reg = doc.get_as<toml::table>("registry")) {
    BERTH_TRY_VOID(wrap(only_known(*reg, {"config_path", "insecure", "parallel_layers"}, "registry")));
    BERTH_TRY_VOID(wrap(read_string(*reg, "config_path", c.registry_config_path)));
    BERTH_TRY_VOID(wrap(read_strings(*reg, "insecure", c.insecure_registries)));
    BERTH_TRY_VOID(wrap(read_int(*reg, "parallel_layers", c.parallel_layers)));
  } else if (doc.contains("registry")) {
    return invalid("config " + path + ": registry must be a table");
  }
  if (auto* st = doc.get_as<toml::table>("streaming")) {
    BERTH_TRY_VOID(wrap(only_known(*st,
                                   {"address", "port", "idle_timeout_seconds", "stream_creation_timeout_seconds",
                                    "token_ttl_seconds", "max_connections"},
                                   "streaming")));
    BERTH_TRY_VOID(wrap(read_string(*st, "address", c.stream_address)));
    BERTH_TRY_VOID(wrap(read_int(*st, "port", c.stream_port)));
    BERTH_TRY_VOID(wrap(read_int(*st, "idle_timeout_seconds", c.stream_idle_timeout_seconds)));
    BERTH_TRY_VOID(wrap(read_int(*st, "stream_creation_timeout_seconds", c.stream_creation_timeout_seconds)));
    BERTH_TRY_VOID(wrap(read_int(*st, "token_ttl_seconds", c.stream_token_ttl_seconds)));
    BERTH_TRY_VOID(wrap(read_int(*st, "max_connections", c.stream_max_connections)));
  } else if (doc.contains("streaming")) {
    return invalid("config " + path + ": streaming must be a table");
  }
  return wrap(check_config(c));
}

Result<> check_config(const DaemonConfig& c) {
  if (c.stream_port < 0 || c.stream_port > 65535) return invalid("streaming port must be in 0-65535");
  for (auto [name, value] : {std::pair{"idle_timeout_seconds", c.stream_idle_timeout_seconds},
                             std::pair{"stream_creation_timeout_seconds", c.stream_creation_timeout_seconds},
                             std::pair{"token_ttl_seconds", c.stream_token_ttl_seconds},
                             std::pair{"max_connections", c.stream_max_connections}})
    if (value <= 0) return invalid(std::string("streaming ") + name + " must be positive");
  return {};
}

std::string to_toml(const DaemonConfig& c) {
  auto strings = [](const std::vector<std::string>& v) {
    toml::array a;
    for (auto& s : v) a.push_back(s);
    return a;
  };
  toml::table doc{{"root", c.root},
                  {"state", c.state},
                  {"socket", c.socket},
                  {"log_level", c.log_level},
                  {"shim_binary", c.shim_binary},
                  {"runtime_binary", c.runtime_binary},
                  {"cgroup_root", c.cgroup_root},
                  {"restrict_oom_score_adj", c.restrict_oom_score_adj},
                  {"cni", toml::table{{"conf_dirs", strings(c.cni_conf_dirs)},
                                      {"bin_dirs", strings(c.cni_bin_dirs)},
                                      {"timeout_seconds", c.cni_timeout_seconds}}},
                  {"registry", toml::table{{"config_path", c.registry_config_path},
                                           {"insecure", strings(c.insecure_registries)},
                                           {"parallel_layers", c.parallel_layers}}},
                  {"streaming", toml::table{{"address", c.stream_address},
                                            {"port", c.stream_port},
                                            {"idle_timeout_seconds", c.stream_idle_timeout_seconds},
                                            {"stream_creation_timeout_seconds", c.stream_creation_timeout_seconds},
                                            {"token_ttl_seconds", c.stream_token_ttl_seconds},
                                            {"max_connections", c.stream_max_connections}}}};
  std::ostringstream out;
  out << doc << "\n";
  return out.str();
}

}  // namespace berth::daemon

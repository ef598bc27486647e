#include "storage/registry_hosts.h"

#include <dirent.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>

#include "common/file_util.h"

namespace berth::storage {

namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(path.c_str())) {
    while (dirent* ent = ::readdir(dir)) {
      if (ent->d_name[0] != '.') names.emplace_back(ent->d_name);
    }
    ::closedir(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// "host:port" lives in "host_port_" (containerd's spelling, usable on every
// filesystem) or in "host:port".
std::string port_dir_name(const std::string& registry) {
  auto colon = registry.rfind(':');
  if (colon == std::string::npos || colon == 0) return registry;
  return registry.substr(0, colon) + "_" + registry.substr(colon + 1) + "_";
}

std::string registry_from_dir_name(const std::string& name) {
  if (name.size() > 2 && name.back() == '_') {
    auto sep = name.rfind('_', name.size() - 2);
    if (sep != std::string::npos && sep > 0) {
      std::string port = name.substr(sep + 1, name.size() - sep - 2);
      if (!port.empty() && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return name.substr(0, sep) + ":" + port;
      }
    }
  }
  return name;
}

std::string absolute(const std::string& path, const std::string& dir) {
  if (path.empty() || path.front() == '/') return path;
  return dir + "/" + path;
}

// Splits "scheme://authority/path" and normalises the path the way the API root is
// built: duplicate and trailing slashes dropped, "/v2" appended unless override_path.
Result<RegistryEndpoint> endpoint_from_url(std::string url, bool override_path, const std::string& what) {
  if (url.find("://") == std::string::npos) url = "https://" + url;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return invalid(what + ": '" + url + "' is not a URL");
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return invalid(what + ": '" + url + "': scheme must be http or https");
  }
  std::string rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string::npos) {
    return invalid(what + ": '" + url + "': a query or fragment is not allowed");
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (authority.empty() || authority.find_first_of(" @\\") != std::string::npos) {
    return invalid(what + ": '" + url + "' has no valid host");
  }
  std::string path;
  if (slash != std::string::npos) {
    for (const auto& part : split(rest.substr(slash), '/')) {
      if (part == ".") continue;
      if (part == "..") return invalid(what + ": '" + url + "': '..' is not allowed in the path");
      path += "/" + part;
    }
  }
  if (!override_path && !ends_with(path, "/v2")) path += "/v2";
  RegistryEndpoint ep;
  ep.url = scheme + "://" + authority;
  ep.path_prefix = path;
  return ep;
}

struct FileContext {
  const std::string& file;
  const std::string& dir;
  Error err(const std::string& key, const std::string& msg) const {
    return Error{EINVAL, file + ": " + key + ": " + msg};
  }
};

Result<std::vector<std::string>> string_or_strings(const toml::node& node, const std::string& key,
                                                   const FileContext& ctx) {
  std::vector<std::string> out;
  if (node.is_string()) {
    out.push_back(*node.value<std::string>());
    return out;
  }
  const toml::array* arr = node.as_array();
  if (!arr) return std::unexpected(ctx.err(key, "expected a string or an array of strings"));
  for (const auto& item : *arr) {
    if (!item.is_string()) return std::unexpected(ctx.err(key, "expected a string or an array of strings"));
    out.push_back(*item.value<std::string>());
  }
  return out;
}

// Applies the per-host keys of `table` (top level or one [host."..."] table) to `ep`.
// `prefix` is how the table is named in errors ("" or "host.\"https://m\".").
Result<> apply_host_keys(const toml::table& table, const std::string& prefix, const FileContext& ctx,
                         RegistryEndpoint& ep) {
  if (const toml::node* caps = table.get("capabilities")) {
    std::string key = prefix + "capabilities";
    const toml::array* arr = caps->as_array();
    if (!arr) return std::unexpected(ctx.err(key, "expected an array of strings"));
    if (!arr->empty()) {
      ep.can_pull = ep.can_resolve = false;
      for (const auto& item : *arr) {
        if (!item.is_string()) return std::unexpected(ctx.err(key, "expected an array of strings"));
        std::string cap = *item.value<std::string>();
        std::transform(cap.begin(), cap.end(), cap.begin(), [](unsigned char c) { return std::tolower(c); });
        if (cap == "pull") {
          ep.can_pull = true;
        } else if (cap == "resolve") {
          ep.can_resolve = true;
        } else if (cap != "push") {
          return std::unexpected(ctx.err(key, "unknown capability '" + cap + "' (pull, resolve, push)"));
        }
      }
    }
  }
  if (const toml::node* skip = table.get("skip_verify")) {
    if (!skip->is_boolean()) return std::unexpected(ctx.err(prefix + "skip_verify", "expected true or false"));
    ep.skip_verify = *skip->value<bool>();
  }
  if (const toml::node* ca = table.get("ca")) {
    auto paths = BERTH_TRY(string_or_strings(*ca, prefix + "ca", ctx));
    for (auto& p : paths) ep.ca_files.push_back(absolute(p, ctx.dir));
  }
  if (const toml::node* client = table.get("client")) {
    std::string key = prefix + "client";
    if (client->is_string()) {
      ep.client_certs.emplace_back(absolute(*client->value<std::string>(), ctx.dir), "");
    } else if (const toml::array* arr = client->as_array()) {
      for (const auto& item : *arr) {
        if (item.is_string()) {
          ep.client_certs.emplace_back(absolute(*item.value<std::string>(), ctx.dir), "");
        } else if (const toml::array* pair = item.as_array()) {
          if (pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string()) {
            return std::unexpected(ctx.err(key, "a pair must be [\"cert\", \"key\"]"));
          }
          ep.client_certs.emplace_back(absolute(*(*pair)[0].value<std::string>(), ctx.dir),
                                       absolute(*(*pair)[1].value<std::string>(), ctx.dir));
        } else {
          return std::unexpected(ctx.err(key, "expected a path, paths or [cert, key] pairs"));
        }
      }
    } else {
      return std::unexpected(ctx.err(key, "expected a path, paths or [cert, key] pairs"));
    }
  }
  if (const toml::node* header = table.get("header")) {
    const toml::table* headers = header->as_table();
    if (!headers) return std::unexpected(ctx.err(prefix + "header", "expected a table"));
    for (const auto& [name, value] : *headers) {
      std::string key = prefix + "header." + std::string(name.str());
      auto values = BERTH_TRY(string_or_strings(value, key, ctx));
      std::string joined;
      for (const auto& v : values) {
        if (v.find_first_of("\r\n") != std::string::npos) {
          return std::unexpected(ctx.err(key, "a header value cannot hold a line break"));
        }
        joined += (joined.empty() ? "" : ", ") + v;
      }
      if (name.str().empty() || name.str().find_first_of(" :\r\n\t") != std::string_view::npos) {
        return std::unexpected(ctx.err(key, "not a valid header name"));
      }
      ep.headers[std::string(name.str())] = joined;
    }
  }
  return {};
}

Result<bool> override_path_of(const toml::table& table, const std::string& prefix, const FileContext& ctx) {
  const toml::node* node = table.get("override_path");
  if (!node) return false;
  if (!node->is_boolean()) return std::unexpected(ctx.err(prefix + "override_path", "expected true or false"));
  return *node->value<bool>();
}

Result<std::vector<RegistryEndpoint>> cert_dir_endpoints(const std::string& dir, const std::string& registry,
                                                         bool insecure) {
  RegistryEndpoint ep = default_registry_endpoint(registry, insecure);
  for (const auto& name : list_dir(dir)) {
    std::string path = dir + "/" + name;
    if (ends_with(name, ".crt")) {
      ep.ca_files.push_back(path);
    } else if (ends_with(name, ".cert")) {
      std::string key = dir + "/" + name.substr(0, name.size() - 5) + ".key";
      if (!is_file(key)) return invalid(path + ": client certificate without its key " + key);
      ep.client_certs.emplace_back(path, key);
    }
  }
  return std::vector<RegistryEndpoint>{ep};
}

}  // namespace

RegistryEndpoint default_registry_endpoint(const std::string& registry, bool insecure) {
  RegistryEndpoint ep;
  if (registry == "docker.io" || registry == "registry-1.docker.io" || registry == "index.docker.io") {
    ep.url = "https://registry-1.docker.io";
  } else {
    ep.url = (insecure ? "http://" : "https://") + registry;
  }
  return ep;
}

Result<std::vector<RegistryEndpoint>> RegistryHosts::parse_hosts_toml(const std::string& text, const std::string& dir,
                                                                      const std::string& file,
                                                                      const std::string& registry, bool insecure) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return invalid(file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
                   std::string(e.description()));
  }
  FileContext ctx{file, dir};
  std::vector<RegistryEndpoint> endpoints;

  if (const toml::node* hosts = root.get("host")) {
    const toml::table* table = hosts->as_table();
    if (!table) return std::unexpected(ctx.err("host", "expected a table of [host.\"<url>\"] entries"));
    // toml++ keeps keys sorted; the file order is the order to try mirrors in.
    std::vector<std::pair<const toml::key*, const toml::node*>> ordered;
    for (const auto& [key, node] : *table) ordered.emplace_back(&key, &node);
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      const auto& pa = a.first->source().begin;
      const auto& pb = b.first->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    for (const auto& [key, node] : ordered) {
      std::string name = "host.\"" + std::string(key->str()) + "\"";
      const toml::table* host_table = node->as_table();
      if (!host_table) return std::unexpected(ctx.err(name, "expected a table"));
      bool override_path = BERTH_TRY(override_path_of(*host_table, name + ".", ctx));
      RegistryEndpoint ep = BERTH_TRY(endpoint_from_url(std::string(key->str()), override_path, file + ": " + name));
      BERTH_TRY_VOID(apply_host_keys(*host_table, name + ".", ctx, ep));
      endpoints.push_back(std::move(ep));
    }
  }

  RegistryEndpoint server;
  bool override_path = BERTH_TRY(override_path_of(root, "", ctx));
  if (const toml::node* node = root.get("server")) {
    if (!node->is_string()) return std::unexpected(ctx.err("server", "expected a URL string"));
    server = BERTH_TRY(endpoint_from_url(*node->value<std::string>(), override_path, file + ": server"));
  } else {
    server = default_registry_endpoint(registry, insecure);
    if (override_path) server.path_prefix = "";
  }
  BERTH_TRY_VOID(apply_host_keys(root, "", ctx, server));
  endpoints.push_back(std::move(server));
  return endpoints;
}

Result<RegistryHosts> RegistryHosts::load(const std::string& config_dir) {
  RegistryHosts hosts;
  hosts.config_dir_ = config_dir;
  while (hosts.config_dir_.size() > 1 && hosts.config_dir_.back() == '/') hosts.config_dir_.pop_back();
  for (const auto& name : list_dir(hosts.config_dir_)) {
    std::string dir = hosts.config_dir_ + "/" + name;
    std::string file = dir + "/hosts.toml";
    if (!is_dir(dir) || !is_file(file)) continue;
    std::string text = BERTH_TRY(read_file(file));
    BERTH_TRY_VOID(parse_hosts_toml(text, dir, file, registry_from_dir_name(name), false));
  }
  return hosts;
}

void RegistryHosts::add_insecure(std::string registry) {
  if (!is_insecure(registry)) insecure_.push_back(std::move(registry));
}

bool RegistryHosts::is_insecure(const std::string& registry) const {
  return std::find(insecure_.begin(), insecure_.end(), registry) != insecure_.end();
}

Result<std::vector<RegistryEndpoint>> RegistryHosts::endpoints_for(const std::string& registry) const {
  if (registry.empty() || registry.find_first_of("/ \\") != std::string::npos || registry.starts_with(".")) {
    return invalid("registry host '" + registry + "' is not valid");
  }
  bool insecure = is_insecure(registry);
  if (!config_dir_.empty()) {
    for (const auto& name : {port_dir_name(registry), registry, std::string("_default")}) {
      std::string dir = config_dir_ + "/" + name;
      if (!is_dir(dir)) continue;
      std::string file = dir + "/hosts.toml";
      if (!is_file(file)) return cert_dir_endpoints(dir, registry, insecure);
      std::string text = BERTH_TRY(read_file(file));
      return parse_hosts_toml(text, dir, file, registry, insecure);
    }
  }
  return std::vector<RegistryEndpoint>{default_registry_endpoint(registry, insecure)};
}

}  // namespace berth::storage

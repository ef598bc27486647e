#include "network/cni_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/file_util.h"
#include "common/log.h"
#include "common/unique_fd.h"

namespace berth::network {

namespace {

using nlohmann::json;

constexpr const char* kKind = "berth-cni-cache-v1";
constexpr std::string_view kSuffix = ".json";

std::unexpected<Error> bad(const std::string& path, const std::string& what) {
  return invalid("CNI cache file " + path + ": " + what);
}

std::string string_field(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The rename of a new cache file is only durable once its directory is synced.
Result<> sync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_fail("open " + dir);
  if (::fsync(fd.get()) != 0) return sys_fail("fsync " + dir);
  return {};
}

}  // namespace

CniCache::CniCache(std::string dir) : dir_(std::move(dir)) {}

std::string CniCache::path_of(const std::string& container_id, const std::string& ifname) const {
  return dir_ + "/" + container_id + "-" + ifname + std::string(kSuffix);
}

bool CniCache::exists(const std::string& container_id, const std::string& ifname) const {
  // A file that cannot be read still stands for an attachment that may need DEL.
  return ::access(path_of(container_id, ifname).c_str(), F_OK) == 0;
}

Result<CachedAttachment> CniCache::read_entry(const std::string& path) const {
  auto text = BERTH_TRY(read_file(path));
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return bad(path, "not a JSON object");
  if (string_field(doc, "kind") != kKind) return bad(path, "unknown kind \"" + string_field(doc, "kind") + "\"");

  CachedAttachment entry;
  entry.path = path;
  auto& a = entry.attachment;
  a.container_id = string_field(doc, "containerId");
  a.ifname = string_field(doc, "ifName");
  a.netns_path = string_field(doc, "netns");
  if (a.container_id.empty() || a.ifname.empty()) return bad(path, "missing containerId or ifName");
  if (auto args = doc.find("cniArgs"); args != doc.end() && args->is_array()) {
    for (auto& pair : *args) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
        return bad(path, "\"cniArgs\" must hold [key, value] string pairs");
      a.args.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
  }
  if (auto caps = doc.find("capabilityArgs"); caps != doc.end() && caps->is_object()) a.capability_args = *caps;

  auto config = doc.find("config");
  if (config == doc.end()) return bad(path, "missing \"config\"");
  auto parsed = parse_network_config(*config, path + " (cached config)");
  if (!parsed) return std::unexpected(parsed.error());
  entry.config = std::move(*parsed);
  entry.config.source = path;

  if (auto result = doc.find("result"); result != doc.end() && !result->is_null()) {
    auto r = CniResult::parse(*result);
    if (!r) return std::unexpected(r.error().wrap("CNI cache file " + path));
    entry.result = std::move(*r);
  }
  return entry;
}

Result<std::optional<CachedAttachment>> CniCache::load(const std::string& container_id,
                                                       const std::string& ifname) const {
  std::string path = path_of(container_id, ifname);
  if (::access(path.c_str(), F_OK) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return sys_fail("access " + path);
  }
  auto entry = BERTH_TRY(read_entry(path));
  if (entry.attachment.container_id != container_id || entry.attachment.ifname != ifname)
    return bad(path, "belongs to container " + entry.attachment.container_id + " interface " +
                         entry.attachment.ifname);
  return entry;
}

Result<> CniCache::store(const CniAttachment& attachment, const CniNetworkConfig& config,
                         const std::optional<CniResult>& result) {
  BERTH_TRY_VOID(make_dirs(dir_, 0700));
  json args = json::array();
  for (auto& [k, v] : attachment.args) args.push_back(json::array({k, v}));
  json doc = {
      {"kind", kKind},
      {"containerId", attachment.container_id},
      {"ifName", attachment.ifname},
      {"networkName", config.name},
      {"netns", attachment.netns_path},
      {"cniArgs", std::move(args)},
      {"capabilityArgs", attachment.capability_args.is_null() ? json::object() : attachment.capability_args},
      {"config", config.to_json()},
      {"result", result ? result->raw : json(nullptr)},
  };
  std::string path = path_of(attachment.container_id, attachment.ifname);
  BERTH_TRY_VOID(write_file_atomic(path, doc.dump(), 0600, Durability::durable));
  return sync_dir(dir_);
}

Result<> CniCache::remove(const std::string& container_id, const std::string& ifname) {
  std::string path = path_of(container_id, ifname);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_fail("remove " + path);
  return {};
}

Result<std::vector<CachedAttachment>> CniCache::list() const {
  std::vector<CachedAttachment> out;
  DIR* dir = ::opendir(dir_.c_str());
  if (!dir) {
    if (errno == ENOENT) return out;
    return sys_fail("open CNI cache dir " + dir_);
  }
  std::vector<std::string> names;
  while (dirent* ent = ::readdir(dir)) {
    std::string name = ent->d_name;
    if (name.size() > kSuffix.size() && name.ends_with(kSuffix)) names.push_back(std::move(name));
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (auto& name : names) {
    auto entry = read_entry(dir_ + "/" + name);
    if (!entry) {
      log::warn("skipping CNI cache entry: " + entry.error().message);
      continue;
    }
    out.push_back(std::move(*entry));
  }
  return out;
}

}  // namespace berth::network

#include "network/cni_invoker.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include "common/file_util.h"
#include "common/log.h"
#include "network/cni_plugin_exec.h"

namespace berth::network {

namespace {

using nlohmann::json;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The ids end up in file names and in plugin-made names (iptables chains, IPAM
// files), so they follow the libcni rules.
Result<> validate(const CniAttachment& a) {
  const auto& id = a.container_id;
  bool id_ok = !id.empty() && std::isalnum(static_cast<unsigned char>(id[0]));
  for (char c : id) id_ok = id_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  if (!id_ok) return invalid("invalid CNI container id \"" + id + "\" (letters, digits, '_', '.', '-')");

  const auto& ifname = a.ifname;
  bool if_ok = !ifname.empty() && ifname.size() <= 15 && ifname != "." && ifname != "..";
  for (char c : ifname) if_ok = if_ok && c != '/' && c != ':' && !std::isspace(static_cast<unsigned char>(c));
  if (!if_ok) return invalid("invalid interface name \"" + ifname + "\"");

  // CNI_ARGS is "K=V;K=V": a separator inside a key or value would forge another pair.
  for (auto& [k, v] : a.args) {
    if (k.empty() || k.find_first_of("=;") != std::string::npos || v.find(';') != std::string::npos)
      return invalid("invalid CNI arg \"" + k + "=" + v + "\" for " + id);
  }
  if (!a.capability_args.is_null() && !a.capability_args.is_object())
    return invalid("CNI capability args for " + id + " must be a JSON object");
  return {};
}

// Spec error codes -> errno, so callers can tell bad config from a busy system.
int errno_for_cni_code(long code) {
  switch (code) {
    case 1: return ENOTSUP;  // incompatible CNI version
    case 2: return EINVAL;   // unsupported field
    case 3: return ENOENT;   // container unknown or does not exist
    case 4: return EINVAL;   // invalid environment variables
    case 5: return EIO;      // I/O failure
    case 6: return EINVAL;   // failed to decode content
    case 7: return EINVAL;   // invalid network config
    case 11: return EAGAIN;  // try again later
    default: return EIO;
  }
}

std::string tail(std::string_view text, size_t max) {
  text = trim(text);
  if (text.size() <= max) return std::string(text);
  return "..." + std::string(text.substr(text.size() - max));
}

bool sends_prev_result_on_del(const CniNetworkConfig& config) {
  return compare_cni_versions(config.cni_version, "0.4.0") >= 0;
}

}  // namespace

// Serializes operations on one container; the map entry lives while someone holds
// or waits for it.
class CniInvoker::ContainerLock {
 public:
  ContainerLock(CniInvoker& owner, const std::string& id) : owner_(owner), id_(id) {
    {
      std::lock_guard guard(owner_.locks_mutex_);
      auto& slot = owner_.locks_[id_];
      if (!slot) slot = std::make_unique<LockEntry>();
      entry_ = slot.get();
      ++entry_->users;
    }
    entry_->mutex.lock();
  }
  ~ContainerLock() {
    entry_->mutex.unlock();
    std::lock_guard guard(owner_.locks_mutex_);
    if (--entry_->users == 0) owner_.locks_.erase(id_);
  }
  ContainerLock(const ContainerLock&) = delete;
  ContainerLock& operator=(const ContainerLock&) = delete;

 private:
  CniInvoker& owner_;
  std::string id_;
  LockEntry* entry_ = nullptr;
};

CniInvoker::CniInvoker(std::vector<std::string> bin_dirs, std::string cache_dir,
                       std::chrono::seconds plugin_timeout)
    : bin_dirs_(std::move(bin_dirs)), cache_(std::move(cache_dir)), plugin_timeout_(plugin_timeout) {
  const char* path = std::getenv("PATH");
  path_env_ = path && *path ? path : kDefaultPath;
}

Result<std::string> CniInvoker::find_plugin(const std::string& type) const {
  if (type.empty() || type.find('/') != std::string::npos)
    return invalid("invalid CNI plugin type \"" + type + "\"");
  for (auto& dir : bin_dirs_) {
    std::string path = dir + "/" + type;
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0) return path;
  }
  std::string dirs;
  for (auto& dir : bin_dirs_) dirs += (dirs.empty() ? "" : ", ") + dir;
  return fail(ENOENT, "CNI plugin '" + type + "' not found in dirs " + (dirs.empty() ? "(none)" : dirs));
}

std::vector<std::string> CniInvoker::environment(const char* command, const CniAttachment& a) const {
  std::string args, cni_path;
  for (auto& [k, v] : a.args) args += (args.empty() ? "" : ";") + k + "=" + v;
  for (auto& dir : bin_dirs_) cni_path += (cni_path.empty() ? "" : ":") + dir;
  return {
      std::string("CNI_COMMAND=") + command,
      "CNI_CONTAINERID=" + a.container_id,
      "CNI_NETNS=" + a.netns_path,
      "CNI_IFNAME=" + a.ifname,
      "CNI_ARGS=" + args,
      "CNI_PATH=" + cni_path,
      "PATH=" + path_env_,
  };
}

Result<json> CniInvoker::invoke(const CniNetworkConfig& config, size_t index, const char* command,
                                const CniAttachment& attachment, const json* prev_result, InvokeOutcome* outcome) {
  *outcome = {};
  const CniPluginConfig& plugin = config.plugins[index];
  const std::string what = "CNI plugin " + plugin.type + " " + command;
  auto path = find_plugin(plugin.type);
  if (!path) return std::unexpected(path.error());

  // Every plugin of the list speaks the list's version under the list's name, sees
  // the previous result, and gets only the runtime values it declared it handles.
  json conf = plugin.raw;
  conf["cniVersion"] = config.cni_version;
  conf["name"] = config.name;
  if (prev_result && !prev_result->is_null()) conf["prevResult"] = *prev_result;
  json runtime = json::object();
  if (attachment.capability_args.is_object()) {
    for (auto& [capability, enabled] : plugin.capabilities) {
      if (!enabled) continue;
      if (auto it = attachment.capability_args.find(capability); it != attachment.capability_args.end())
        runtime[capability] = *it;
    }
  }
  if (!runtime.empty()) conf["runtimeConfig"] = std::move(runtime);

  PluginRun run{*path, environment(command, attachment), conf.dump(),
                std::chrono::duration_cast<std::chrono::milliseconds>(plugin_timeout_)};
  auto out = run_cni_plugin(run, &outcome->started);
  if (!out) {
    if (out.error().code == ETIMEDOUT)
      return fail(ETIMEDOUT, what + " timed out after " + std::to_string(plugin_timeout_.count()) +
                                 "s; the plugin was killed");
    return std::unexpected(out.error().wrap(what));
  }
  if (!trim(out->err).empty()) log::debug(what + " stderr: " + tail(out->err, 2000));

  if (out->exit_code != 0) {
    json err = json::parse(out->out, nullptr, /*allow_exceptions=*/false);
    auto msg_it = err.is_object() ? err.find("msg") : err.end();
    if (err.is_object() && msg_it != err.end() && msg_it->is_string()) {
      long code = 0;
      if (auto c = err.find("code"); c != err.end() && c->is_number_integer()) code = c->get<long>();
      outcome->cni_code = code;
      std::string message = what + " failed (code " + std::to_string(code) + "): " + msg_it->get<std::string>();
      if (auto d = err.find("details"); d != err.end() && d->is_string() && !d->get<std::string>().empty())
        message += "; " + d->get<std::string>();
      if (!trim(out->err).empty()) log::warn(what + " stderr: " + tail(out->err, 2000));
      return fail(errno_for_cni_code(code), std::move(message));
    }
    std::string detail = !trim(out->err).empty() ? out->err : out->out;
    std::string message = what + " failed: exit status " + std::to_string(out->exit_code);
    if (!trim(detail).empty()) message += ": " + tail(detail, 1000);
    return fail(EIO, std::move(message));
  }

  if (std::string_view(command) != "ADD") return json(nullptr);
  json result = json::parse(out->out, nullptr, /*allow_exceptions=*/false);
  if (result.is_discarded()) return fail(EPROTO, what + " returned no JSON result: " + tail(out->out, 500));
  auto parsed = CniResult::parse(result);
  if (!parsed) return fail(EPROTO, what + " returned an invalid result: " + parsed.error().message);
  return result;
}

Result<> CniInvoker::del_plugins(const CniNetworkConfig& config, size_t count, const CniAttachment& attachment,
                                 const json* prev_result) {
  const json* prev = sends_prev_result_on_del(config) ? prev_result : nullptr;
  // Reverse order, and stop at the first failure: releasing the IP (bridge/IPAM)
  // while port mappings to it still exist would hand those to the next pod.
  for (size_t i = count; i-- > 0;) {
    InvokeOutcome outcome;
    auto r = invoke(config, i, "DEL", attachment, prev, &outcome);
    if (!r) {
      // "Container unknown" from DEL means there is nothing left to remove.
      if (outcome.cni_code == 3) continue;
      return std::unexpected(r.error());
    }
  }
  return {};
}

Result<CniResult> CniInvoker::add(const CniAttachment& attachment, const CniNetworkConfig& config) {
  BERTH_TRY_VOID(validate(attachment));
  if (attachment.netns_path.empty()) return invalid("CNI ADD for " + attachment.container_id + ": no netns path");
  if (config.plugins.empty()) return invalid("CNI network " + config.name + " has no plugins");
  const std::string what = "CNI ADD of network " + config.name + " for " + attachment.container_id + "/" +
                           attachment.ifname;

  ContainerLock lock(*this, attachment.container_id);
  if (cache_.exists(attachment.container_id, attachment.ifname))
    return fail(EEXIST, what + ": already attached (cache " +
                            cache_.path_of(attachment.container_id, attachment.ifname) + "); DEL it first");
  // Written before any plugin runs: a crash from here on still leaves what DEL needs.
  if (auto r = cache_.store(attachment, config, std::nullopt); !r) return std::unexpected(r.error().wrap(what));

  json prev(nullptr);
  for (size_t i = 0; i < config.plugins.size(); ++i) {
    InvokeOutcome outcome;
    auto r = invoke(config, i, "ADD", attachment, &prev, &outcome);
    if (r) {
      prev = std::move(*r);
      continue;
    }
    // Undo what ran, the failed plugin included when it started: it may have made
    // part of its changes before failing or being killed.
    size_t ran = outcome.started ? i + 1 : i;
    Error error = r.error().wrap(what);
    if (auto undone = del_plugins(config, ran, attachment, &prev); !undone) {
      log::warn(what + ": cleanup after the failure failed, keeping the cache entry for a later DEL: " +
                undone.error().message);
      error.message += " (cleanup failed too: " + undone.error().message + ")";
    } else if (auto removed = cache_.remove(attachment.container_id, attachment.ifname); !removed) {
      log::warn(what + ": " + removed.error().message);
    }
    return std::unexpected(std::move(error));
  }

  auto result = CniResult::parse(prev);
  if (result) {
    if (auto stored = cache_.store(attachment, config, *result); stored) return result;
    else result = std::unexpected(stored.error());
  }
  // Either cannot happen in practice (each result was checked; the first store
  // worked), but a result that is not on disk must not stay in place.
  Error error = result.error().wrap(what);
  if (auto undone = del_plugins(config, config.plugins.size(), attachment, &prev); !undone) {
    error.message += " (cleanup failed too: " + undone.error().message + ")";
  } else {
    (void)cache_.remove(attachment.container_id, attachment.ifname);
  }
  return std::unexpected(std::move(error));
}

Result<> CniInvoker::del(const CniAttachment& attachment, const CniNetworkConfig* current_config_or_null) {
  BERTH_TRY_VOID(validate(attachment));
  const std::string what = "CNI DEL for " + attachment.container_id + "/" + attachment.ifname;
  ContainerLock lock(*this, attachment.container_id);

  auto cached = cache_.load(attachment.container_id, attachment.ifname);
  if (!cached) {
    // Unreadable entry: fall back to the current config rather than never being
    // able to DEL; the entry is replaced by the removal below on success.
    log::warn(what + ": " + cached.error().message);
    if (!current_config_or_null) return std::unexpected(cached.error().wrap(what));
  }

  if (cached && cached->has_value()) {
    CachedAttachment& entry = **cached;
    // Args as ADD got them (plugins may key state on them), the caller's netns path
    // if it gave one.
    CniAttachment effective = entry.attachment;
    if (!attachment.netns_path.empty()) effective.netns_path = attachment.netns_path;
    const json* prev = entry.result ? &entry.result->raw : nullptr;
    if (auto r = del_plugins(entry.config, entry.config.plugins.size(), effective, prev); !r)
      return std::unexpected(r.error().wrap(what + " (network " + entry.config.name + ")"));
    return cache_.remove(attachment.container_id, attachment.ifname);
  }

  if (!current_config_or_null) return {};  // never added, nothing known: nothing to do
  const CniNetworkConfig& config = *current_config_or_null;
  if (auto r = del_plugins(config, config.plugins.size(), attachment, nullptr); !r)
    return std::unexpected(r.error().wrap(what + " (network " + config.name + ")"));
  return cache_.remove(attachment.container_id, attachment.ifname);
}

Result<> CniInvoker::check(const CniAttachment& attachment) {
  BERTH_TRY_VOID(validate(attachment));
  const std::string what = "CNI CHECK for " + attachment.container_id + "/" + attachment.ifname;
  ContainerLock lock(*this, attachment.container_id);

  auto cached = cache_.load(attachment.container_id, attachment.ifname);
  if (!cached) return std::unexpected(cached.error().wrap(what));
  if (!cached->has_value()) return fail(ENOENT, what + ": no cached CNI attachment");
  CachedAttachment& entry = **cached;
  if (!entry.result) return fail(ENOENT, what + ": ADD never completed");
  if (compare_cni_versions(entry.config.cni_version, "0.4.0") < 0)
    return fail(ENOTSUP, what + ": cniVersion " + entry.config.cni_version + " has no CHECK");
  if (entry.config.disable_check) return {};

  CniAttachment effective = entry.attachment;
  if (!attachment.netns_path.empty()) effective.netns_path = attachment.netns_path;
  for (size_t i = 0; i < entry.config.plugins.size(); ++i) {
    InvokeOutcome outcome;
    auto r = invoke(entry.config, i, "CHECK", effective, &entry.result->raw, &outcome);
    if (!r) return std::unexpected(r.error().wrap(what));
  }
  return {};
}

bool CniInvoker::has_cache(const std::string& container_id, const std::string& ifname) const {
  CniAttachment probe;
  probe.container_id = container_id;
  probe.ifname = ifname;
  if (!validate(probe)) return false;
  return cache_.exists(container_id, ifname);
}

Result<std::vector<CachedAttachment>> CniInvoker::list_cached() const { return cache_.list(); }

}  // namespace berth::network

#include "runtime/oci/spec_parser.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "common/file_util.h"
#include "common/safe_path.h"

namespace berth::oci {

namespace {

using nlohmann::json;

// Thrown inside this file only and turned into Error at the API edge.
struct FieldError {
  std::string message;
};

[[noreturn]] void field_fail(const std::string& path, const std::string& what) {
  throw FieldError{path + ": " + what};
}

const json* member(const json& obj, const char* key, const std::string& path) {
  if (!obj.is_object()) field_fail(path, "must be an object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string join(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }

std::string get_string(const json& obj, const char* key, const std::string& path, std::string def = "") {
  auto* v = member(obj, key, path);
  if (!v) return def;
  if (!v->is_string()) field_fail(join(path, key), "must be a string");
  return v->get<std::string>();
}

bool get_bool(const json& obj, const char* key, const std::string& path, bool def = false) {
  auto* v = member(obj, key, path);
  if (!v) return def;
  if (!v->is_boolean()) field_fail(join(path, key), "must be a boolean");
  return v->get<bool>();
}

std::optional<bool> opt_bool(const json& obj, const char* key, const std::string& path) {
  if (!member(obj, key, path)) return std::nullopt;
  return get_bool(obj, key, path);
}

template <typename T>
T number(const json& v, const std::string& path) {
  if (!v.is_number_integer()) field_fail(path, "must be an integer");
  if constexpr (std::is_unsigned_v<T>) {
    if (v.is_number_unsigned()) {
      auto u = v.get<uint64_t>();
      if (u > std::numeric_limits<T>::max()) field_fail(path, "out of range");
      return static_cast<T>(u);
    }
    auto s = v.get<int64_t>();
    if (s < 0) field_fail(path, "must not be negative");
    if (static_cast<uint64_t>(s) > std::numeric_limits<T>::max()) field_fail(path, "out of range");
    return static_cast<T>(s);
  } else {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      field_fail(path, "out of range");
    auto s = v.get<int64_t>();
    if (s < std::numeric_limits<T>::min() || s > std::numeric_limits<T>::max()) field_fail(path, "out of range");
    return static_cast<T>(s);
  }
}

template <typename T>
std::optional<T> opt_num(const json& obj, const char* key, const std::string& path) {
  auto* v = member(obj, key, path);
  if (!v) return std::nullopt;
  return number<T>(*v, join(path, key));
}

template <typename T>
T get_num(const json& obj, const char* key, const std::string& path, T def = 0) {
  return opt_num<T>(obj, key, path).value_or(def);
}

std::vector<std::string> get_strings(const json& obj, const char* key, const std::string& path) {
  std::vector<std::string> out;
  auto* v = member(obj, key, path);
  if (!v) return out;
  if (!v->is_array()) field_fail(join(path, key), "must be an array of strings");
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) field_fail(join(path, key) + "[" + std::to_string(i) + "]", "must be a string");
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> get_string_map(const json& obj, const char* key, const std::string& path) {
  std::map<std::string, std::string> out;
  auto* v = member(obj, key, path);
  if (!v) return out;
  if (!v->is_object()) field_fail(join(path, key), "must be an object");
  for (auto& [k, val] : v->items()) {
    if (!val.is_string()) field_fail(join(path, key) + "." + k, "must be a string");
    out[k] = val.get<std::string>();
  }
  return out;
}

// Calls fn(element, element_path) for each element of an optional array member.
template <typename Fn>
void each(const json& obj, const char* key, const std::string& path, Fn fn) {
  auto* v = member(obj, key, path);
  if (!v) return;
  if (!v->is_array()) field_fail(join(path, key), "must be an array");
  for (size_t i = 0; i < v->size(); ++i) fn((*v)[i], join(path, key) + "[" + std::to_string(i) + "]");
}

std::vector<IdMapping> parse_mappings(const json& obj, const char* key, const std::string& path) {
  std::vector<IdMapping> out;
  each(obj, key, path, [&](const json& m, const std::string& p) {
    out.push_back({get_num<uint32_t>(m, "containerID", p), get_num<uint32_t>(m, "hostID", p),
                   get_num<uint32_t>(m, "size", p)});
  });
  return out;
}

Process parse_process_obj(const json& j, const std::string& path) {
  Process p;
  p.terminal = get_bool(j, "terminal", path);
  if (auto* cs = member(j, "consoleSize", path)) {
    std::string cp = join(path, "consoleSize");
    p.console_size = ConsoleSize{get_num<uint32_t>(*cs, "height", cp), get_num<uint32_t>(*cs, "width", cp)};
  }
  if (auto* u = member(j, "user", path)) {
    std::string up = join(path, "user");
    p.user.uid = get_num<uint32_t>(*u, "uid", up);
    p.user.gid = get_num<uint32_t>(*u, "gid", up);
    p.user.umask = opt_num<uint32_t>(*u, "umask", up);
    each(*u, "additionalGids", up, [&](const json& g, const std::string& gp) {
      p.user.additional_gids.push_back(number<uint32_t>(g, gp));
    });
  }
  p.args = get_strings(j, "args", path);
  p.env = get_strings(j, "env", path);
  p.cwd = get_string(j, "cwd", path, "/");
  if (auto* c = member(j, "capabilities", path)) {
    std::string cp = join(path, "capabilities");
    Capabilities caps;
    caps.bounding = get_strings(*c, "bounding", cp);
    caps.effective = get_strings(*c, "effective", cp);
    caps.inheritable = get_strings(*c, "inheritable", cp);
    caps.permitted = get_strings(*c, "permitted", cp);
    caps.ambient = get_strings(*c, "ambient", cp);
    p.capabilities = std::move(caps);
  }
  each(j, "rlimits", path, [&](const json& r, const std::string& rp) {
    p.rlimits.push_back({get_string(r, "type", rp), get_num<uint64_t>(r, "hard", rp), get_num<uint64_t>(r, "soft", rp)});
  });
  p.no_new_privileges = get_bool(j, "noNewPrivileges", path);
  p.apparmor_profile = get_string(j, "apparmorProfile", path);
  p.oom_score_adj = opt_num<int>(j, "oomScoreAdj", path);
  p.selinux_label = get_string(j, "selinuxLabel", path);
  return p;
}

Hook parse_hook(const json& j, const std::string& path) {
  Hook h;
  h.path = get_string(j, "path", path);
  h.args = get_strings(j, "args", path);
  h.env = get_strings(j, "env", path);
  h.timeout = opt_num<int>(j, "timeout", path);
  return h;
}

Resources parse_resources_obj(const json& j, const std::string& path) {
  Resources r;
  each(j, "devices", path, [&](const json& d, const std::string& dp) {
    DeviceRule rule;
    rule.allow = get_bool(d, "allow", dp);
    rule.type = get_string(d, "type", dp);
    rule.major = opt_num<int64_t>(d, "major", dp);
    rule.minor = opt_num<int64_t>(d, "minor", dp);
    rule.access = get_string(d, "access", dp);
    r.devices.push_back(rule);
  });
  if (auto* m = member(j, "memory", path)) {
    std::string mp = join(path, "memory");
    MemoryResources mem;
    mem.limit = opt_num<int64_t>(*m, "limit", mp);
    mem.reservation = opt_num<int64_t>(*m, "reservation", mp);
    mem.swap = opt_num<int64_t>(*m, "swap", mp);
    mem.kernel = opt_num<int64_t>(*m, "kernel", mp);
    mem.kernel_tcp = opt_num<int64_t>(*m, "kernelTCP", mp);
    mem.swappiness = opt_num<uint64_t>(*m, "swappiness", mp);
    mem.disable_oom_killer = opt_bool(*m, "disableOOMKiller", mp);
    mem.use_hierarchy = opt_bool(*m, "useHierarchy", mp);
    mem.check_before_update = opt_bool(*m, "checkBeforeUpdate", mp);
    r.memory = mem;
  }
  if (auto* c = member(j, "cpu", path)) {
    std::string cp = join(path, "cpu");
    CpuResources cpu;
    cpu.shares = opt_num<uint64_t>(*c, "shares", cp);
    cpu.quota = opt_num<int64_t>(*c, "quota", cp);
    cpu.burst = opt_num<uint64_t>(*c, "burst", cp);
    cpu.period = opt_num<uint64_t>(*c, "period", cp);
    cpu.realtime_runtime = opt_num<int64_t>(*c, "realtimeRuntime", cp);
    cpu.realtime_period = opt_num<uint64_t>(*c, "realtimePeriod", cp);
    cpu.cpus = get_string(*c, "cpus", cp);
    cpu.mems = get_string(*c, "mems", cp);
    cpu.idle = opt_num<int64_t>(*c, "idle", cp);
    r.cpu = cpu;
  }
  if (auto* p = member(j, "pids", path)) r.pids_limit = get_num<int64_t>(*p, "limit", join(path, "pids"));
  if (auto* b = member(j, "blockIO", path)) {
    std::string bp = join(path, "blockIO");
    BlockIoResources io;
    io.weight = opt_num<uint16_t>(*b, "weight", bp);
    io.leaf_weight = opt_num<uint16_t>(*b, "leafWeight", bp);
    each(*b, "weightDevice", bp, [&](const json& d, const std::string& dp) {
      io.weight_device.push_back({get_num<int64_t>(d, "major", dp), get_num<int64_t>(d, "minor", dp),
                                  opt_num<uint16_t>(d, "weight", dp), opt_num<uint16_t>(d, "leafWeight", dp)});
    });
    auto throttles = [&](const char* key, std::vector<ThrottleDevice>& out) {
      each(*b, key, bp, [&](const json& d, const std::string& dp) {
        out.push_back({get_num<int64_t>(d, "major", dp), get_num<int64_t>(d, "minor", dp), get_num<uint64_t>(d, "rate", dp)});
      });
    };
    throttles("throttleReadBpsDevice", io.throttle_read_bps);
    throttles("throttleWriteBpsDevice", io.throttle_write_bps);
    throttles("throttleReadIOPSDevice", io.throttle_read_iops);
    throttles("throttleWriteIOPSDevice", io.throttle_write_iops);
    r.block_io = io;
  }
  each(j, "hugepageLimits", path, [&](const json& h, const std::string& hp) {
    r.hugepage_limits.push_back({get_string(h, "pageSize", hp), get_num<uint64_t>(h, "limit", hp)});
  });
  if (auto* n = member(j, "network", path)) {
    std::string np = join(path, "network");
    NetworkResources net;
    net.class_id = opt_num<uint32_t>(*n, "classID", np);
    each(*n, "priorities", np, [&](const json& p, const std::string& pp) {
      net.priorities.emplace_back(get_string(p, "name", pp), get_num<uint32_t>(p, "priority", pp));
    });
    r.network = net;
  }
  r.unified = get_string_map(j, "unified", path);
  return r;
}

Seccomp parse_seccomp(const json& j, const std::string& path) {
  Seccomp s;
  s.default_action = get_string(j, "defaultAction", path);
  s.default_errno_ret = opt_num<uint32_t>(j, "defaultErrnoRet", path);
  s.architectures = get_strings(j, "architectures", path);
  s.flags = get_strings(j, "flags", path);
  s.listener_path = get_string(j, "listenerPath", path);
  s.listener_metadata = get_string(j, "listenerMetadata", path);
  each(j, "syscalls", path, [&](const json& r, const std::string& rp) {
    SyscallRule rule;
    rule.names = get_strings(r, "names", rp);
    rule.action = get_string(r, "action", rp);
    rule.errno_ret = opt_num<uint32_t>(r, "errnoRet", rp);
    each(r, "args", rp, [&](const json& a, const std::string& ap) {
      rule.args.push_back({get_num<uint32_t>(a, "index", ap), get_num<uint64_t>(a, "value", ap),
                           get_num<uint64_t>(a, "valueTwo", ap), get_string(a, "op", ap)});
    });
    s.syscalls.push_back(std::move(rule));
  });
  return s;
}

Linux parse_linux(const json& j, const std::string& path) {
  Linux l;
  each(j, "namespaces", path, [&](const json& n, const std::string& np) {
    l.namespaces.push_back({get_string(n, "type", np), get_string(n, "path", np)});
  });
  l.uid_mappings = parse_mappings(j, "uidMappings", path);
  l.gid_mappings = parse_mappings(j, "gidMappings", path);
  if (auto* t = member(j, "timeOffsets", path)) {
    if (!t->is_object()) field_fail(join(path, "timeOffsets"), "must be an object");
    for (auto& [clock, off] : t->items()) {
      std::string op = join(path, "timeOffsets") + "." + clock;
      l.time_offsets[clock] = {get_num<int64_t>(off, "secs", op), get_num<uint32_t>(off, "nanosecs", op)};
    }
  }
  each(j, "devices", path, [&](const json& d, const std::string& dp) {
    Device dev;
    dev.type = get_string(d, "type", dp);
    dev.path = get_string(d, "path", dp);
    dev.major = get_num<int64_t>(d, "major", dp);
    dev.minor = get_num<int64_t>(d, "minor", dp);
    dev.file_mode = opt_num<uint32_t>(d, "fileMode", dp);
    dev.uid = opt_num<uint32_t>(d, "uid", dp);
    dev.gid = opt_num<uint32_t>(d, "gid", dp);
    l.devices.push_back(dev);
  });
  l.cgroups_path = get_string(j, "cgroupsPath", path);
  if (auto* r = member(j, "resources", path)) l.resources = parse_resources_obj(*r, join(path, "resources"));
  l.rootfs_propagation = get_string(j, "rootfsPropagation", path);
  if (auto* s = member(j, "seccomp", path)) l.seccomp = parse_seccomp(*s, join(path, "seccomp"));
  l.sysctl = get_string_map(j, "sysctl", path);
  l.masked_paths = get_strings(j, "maskedPaths", path);
  l.readonly_paths = get_strings(j, "readonlyPaths", path);
  l.mount_label = get_string(j, "mountLabel", path);
  return l;
}

Spec parse_spec_obj(const json& j) {
  if (!j.is_object()) field_fail("config", "must be a JSON object");
  Spec s;
  s.oci_version = get_string(j, "ociVersion", "");
  if (auto* p = member(j, "process", "")) s.process = parse_process_obj(*p, "process");
  if (auto* r = member(j, "root", "")) {
    s.root.path = get_string(*r, "path", "root");
    s.root.readonly = get_bool(*r, "readonly", "root");
  }
  s.hostname = get_string(j, "hostname", "");
  s.domainname = get_string(j, "domainname", "");
  each(j, "mounts", "", [&](const json& m, const std::string& mp) {
    s.mounts.push_back({get_string(m, "destination", mp), get_string(m, "type", mp), get_string(m, "source", mp),
                        get_strings(m, "options", mp)});
  });
  if (auto* h = member(j, "hooks", "")) {
    auto hooks = [&](const char* key, std::vector<Hook>& out) {
      each(*h, key, "hooks", [&](const json& x, const std::string& xp) { out.push_back(parse_hook(x, xp)); });
    };
    hooks("prestart", s.hooks.prestart);
    hooks("createRuntime", s.hooks.create_runtime);
    hooks("createContainer", s.hooks.create_container);
    hooks("startContainer", s.hooks.start_container);
    hooks("poststart", s.hooks.poststart);
    hooks("poststop", s.hooks.poststop);
  }
  s.annotations = get_string_map(j, "annotations", "");
  if (auto* l = member(j, "linux", "")) s.linux = parse_linux(*l, "linux");
  return s;
}

template <typename T, typename Fn>
Result<T> guarded(const std::string& json_text, const char* what, Fn fn) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid(std::string(what) + ": not valid JSON");
  try {
    return fn(j);
  } catch (const FieldError& e) {
    return invalid(std::string(what) + ": " + e.message);
  } catch (const json::exception& e) {
    return invalid(std::string(what) + ": " + e.what());
  }
}

const std::set<std::string> kNamespaceTypes = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"};

Result<> check_limit(const std::optional<int64_t>& v, const std::string& name) {
  if (v && *v < -1) return invalid(name + ": must be >= -1 (got " + std::to_string(*v) + ")");
  return {};
}

}  // namespace

Result<Spec> parse_spec(const std::string& json_text) {
  return guarded<Spec>(json_text, "config.json", [](const json& j) { return parse_spec_obj(j); });
}

Result<Spec> load_spec(const std::string& bundle_dir) {
  auto text = read_file(bundle_dir + "/config.json");
  if (!text) return std::unexpected(text.error().wrap("load bundle"));
  return parse_spec(*text);
}

Result<Process> parse_process(const std::string& json_text) {
  return guarded<Process>(json_text, "process", [](const json& j) { return parse_process_obj(j, "process"); });
}

Result<Resources> parse_resources(const std::string& json_text) {
  return guarded<Resources>(json_text, "resources",
                            [](const json& j) { return parse_resources_obj(j, "resources"); });
}

std::string rootfs_path(const Spec& spec, const std::string& bundle_dir) {
  if (!spec.root.path.empty() && spec.root.path[0] == '/') return clean_path(spec.root.path);
  return clean_path(bundle_dir + "/" + spec.root.path);
}

Result<> validate_resources(const Resources& r) {
  if (r.memory) {
    BERTH_TRY_VOID(check_limit(r.memory->limit, "linux.resources.memory.limit"));
    BERTH_TRY_VOID(check_limit(r.memory->reservation, "linux.resources.memory.reservation"));
    BERTH_TRY_VOID(check_limit(r.memory->swap, "linux.resources.memory.swap"));
    BERTH_TRY_VOID(check_limit(r.memory->kernel, "linux.resources.memory.kernel"));
    BERTH_TRY_VOID(check_limit(r.memory->kernel_tcp, "linux.resources.memory.kernelTCP"));
    if (r.memory->swappiness && *r.memory->swappiness > 100)
      return invalid("linux.resources.memory.swappiness: must be 0..100");
    if (r.memory->limit && r.memory->swap && *r.memory->limit > 0 && *r.memory->swap > 0 &&
        *r.memory->swap < *r.memory->limit)
      return invalid("linux.resources.memory.swap: must be >= memory.limit (it is memory plus swap)");
  }
  if (r.cpu) {
    BERTH_TRY_VOID(check_limit(r.cpu->quota, "linux.resources.cpu.quota"));
    if (r.cpu->quota && *r.cpu->quota == 0) return invalid("linux.resources.cpu.quota: must not be 0");
    if (r.cpu->period && (*r.cpu->period < 1000 || *r.cpu->period > 1000000))
      return invalid("linux.resources.cpu.period: must be 1000..1000000 microseconds");
    BERTH_TRY_VOID(check_limit(r.cpu->realtime_runtime, "linux.resources.cpu.realtimeRuntime"));
  }
  BERTH_TRY_VOID(check_limit(r.pids_limit, "linux.resources.pids.limit"));
  if (r.block_io) {
    auto weight_ok = [](const std::optional<uint16_t>& w) { return !w || *w == 0 || (*w >= 10 && *w <= 1000); };
    if (!weight_ok(r.block_io->weight)) return invalid("linux.resources.blockIO.weight: must be 10..1000");
    if (!weight_ok(r.block_io->leaf_weight)) return invalid("linux.resources.blockIO.leafWeight: must be 10..1000");
    for (auto& d : r.block_io->weight_device)
      if (!weight_ok(d.weight) || !weight_ok(d.leaf_weight))
        return invalid("linux.resources.blockIO.weightDevice: weight must be 10..1000");
  }
  for (auto& d : r.devices) {
    if (!d.type.empty() && d.type != "a" && d.type != "c" && d.type != "b")
      return invalid("linux.resources.devices: type must be a, b or c (got \"" + d.type + "\")");
    if (d.access.find_first_not_of("rwm") != std::string::npos)
      return invalid("linux.resources.devices: access must be a combination of r, w, m (got \"" + d.access + "\")");
  }
  for (auto& h : r.hugepage_limits)
    if (h.page_size.empty()) return invalid("linux.resources.hugepageLimits: pageSize is required");
  for (auto& [key, value] : r.unified)
    if (key.find('/') != std::string::npos || key.find('.') == std::string::npos || key[0] == '.')
      return invalid("linux.resources.unified: \"" + key + "\" is not a cgroup file name");
  return {};
}

Result<> validate_spec(const Spec& spec, const std::string& bundle_dir) {
  if (spec.oci_version.empty()) return invalid("config.json: ociVersion is required");
  if (!spec.oci_version.starts_with("1."))
    return invalid("config.json: ociVersion " + spec.oci_version + " is not supported (want 1.x)");
  if (spec.root.path.empty()) return invalid("config.json: root.path is required");
  std::string rootfs = rootfs_path(spec, bundle_dir);
  struct stat st{};
  if (::stat(rootfs.c_str(), &st) != 0) return sys_fail("config.json: root.path " + rootfs);
  if (!S_ISDIR(st.st_mode)) return invalid("config.json: root.path " + rootfs + " is not a directory");
  if (!spec.process) return invalid("config.json: process is required");
  if (spec.process->args.empty()) return invalid("process.args: must name the program to run");
  if (spec.process->cwd.empty() || spec.process->cwd[0] != '/')
    return invalid("process.cwd: must be an absolute path (got \"" + spec.process->cwd + "\")");
  if (spec.process->oom_score_adj && (*spec.process->oom_score_adj < -1000 || *spec.process->oom_score_adj > 1000))
    return invalid("process.oomScoreAdj: must be -1000..1000");
  for (auto& r : spec.process->rlimits) {
    if (!r.type.starts_with("RLIMIT_")) return invalid("process.rlimits: unknown type \"" + r.type + "\"");
    if (r.soft > r.hard) return invalid("process.rlimits: " + r.type + " soft limit exceeds hard limit");
  }
  for (auto& m : spec.mounts) {
    if (m.destination.empty()) return invalid("mounts: destination is required");
    if (path_escapes(m.destination))
      return invalid("mounts: destination \"" + m.destination + "\" escapes the container root");
    if (m.destination[0] != '/')
      return invalid("mounts: destination \"" + m.destination + "\" must be an absolute path");
  }
  auto hook_ok = [](const std::vector<Hook>& hooks, const char* name) -> Result<> {
    for (auto& h : hooks) {
      if (h.path.empty() || h.path[0] != '/')
        return invalid(std::string("hooks.") + name + ": path must be absolute (got \"" + h.path + "\")");
      if (h.timeout && *h.timeout <= 0) return invalid(std::string("hooks.") + name + ": timeout must be > 0");
    }
    return {};
  };
  BERTH_TRY_VOID(hook_ok(spec.hooks.prestart, "prestart"));
  BERTH_TRY_VOID(hook_ok(spec.hooks.create_runtime, "createRuntime"));
  BERTH_TRY_VOID(hook_ok(spec.hooks.create_container, "createContainer"));
  BERTH_TRY_VOID(hook_ok(spec.hooks.start_container, "startContainer"));
  BERTH_TRY_VOID(hook_ok(spec.hooks.poststart, "poststart"));
  BERTH_TRY_VOID(hook_ok(spec.hooks.poststop, "poststop"));

  if (!spec.linux) {
    if (!spec.hostname.empty() || !spec.domainname.empty()) return invalid("hostname/domainname: need a new uts namespace");
    return {};
  }
  const Linux& l = *spec.linux;
  std::set<std::string> seen;
  for (auto& ns : l.namespaces) {
    if (!kNamespaceTypes.contains(ns.type)) return invalid("linux.namespaces: unknown namespace type \"" + ns.type + "\"");
    if (!seen.insert(ns.type).second) return invalid("linux.namespaces: \"" + ns.type + "\" listed twice");
    if (!ns.path.empty() && ns.path[0] != '/')
      return invalid("linux.namespaces: path of \"" + ns.type + "\" must be absolute");
  }
  const Namespace* user = spec.find_namespace("user");
  bool new_user = user && user->path.empty();
  if (new_user && (l.uid_mappings.empty() || l.gid_mappings.empty()))
    return invalid("linux: a new user namespace needs uidMappings and gidMappings");
  if (!user && (!l.uid_mappings.empty() || !l.gid_mappings.empty()))
    return invalid("linux: uidMappings/gidMappings need a user namespace");
  for (auto* maps : {&l.uid_mappings, &l.gid_mappings})
    for (auto& m : *maps)
      if (m.size == 0) return invalid("linux: an id mapping has size 0");
  if (!l.time_offsets.empty()) {
    const Namespace* time = spec.find_namespace("time");
    if (!time || !time->path.empty()) return invalid("linux.timeOffsets: needs a new time namespace");
    for (auto& [clock, off] : l.time_offsets) {
      if (clock != "monotonic" && clock != "boottime")
        return invalid("linux.timeOffsets: unknown clock \"" + clock + "\"");
      if (off.nanosecs >= 1000000000) return invalid("linux.timeOffsets." + clock + ".nanosecs: must be < 1e9");
    }
  }
  for (auto& d : l.devices) {
    if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
      return invalid("linux.devices: type of " + d.path + " must be c, b, u or p");
    if (d.path.empty() || d.path[0] != '/' || path_escapes(d.path))
      return invalid("linux.devices: path \"" + d.path + "\" must be absolute and inside the container");
  }
  if (!l.rootfs_propagation.empty()) {
    static const std::set<std::string> kProp = {"shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"};
    if (!kProp.contains(l.rootfs_propagation))
      return invalid("linux.rootfsPropagation: unknown value \"" + l.rootfs_propagation + "\"");
  }
  for (auto* list : {&l.masked_paths, &l.readonly_paths})
    for (auto& p : *list)
      if (p.empty() || p[0] != '/' || path_escapes(p)) return invalid("linux: path \"" + p + "\" must be absolute and inside the container");
  for (auto& [key, value] : l.sysctl)
    if (key.empty() || key.find("..") != std::string::npos || key[0] == '/' || key[0] == '.')
      return invalid("linux.sysctl: bad key \"" + key + "\"");
  if (l.resources) BERTH_TRY_VOID(validate_resources(*l.resources));
  // Setting either name outside a fresh uts namespace would rename the host (or the
  // namespace joined by path).
  bool new_uts = spec.find_namespace("uts") && spec.find_namespace("uts")->path.empty();
  if (!spec.hostname.empty() && !new_uts) return invalid("hostname: needs a new uts namespace");
  if (!spec.domainname.empty() && !new_uts) return invalid("domainname: needs a new uts namespace");
  return {};
}

}  // namespace berth::oci

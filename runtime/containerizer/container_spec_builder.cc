#include "runtime/containerizer/container_spec_builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <set>

#include "common/file_util.h"
#include "common/safe_path.h"
#include "isolators/cgroups/cgroups.h"
#include "isolators/process/capabilities.h"
#include "isolators/seccomp/default_profile.h"
#include "isolators/seccomp/seccomp.h"
#include "runtime/containerizer/image_user.h"
#include "runtime/oci/spec_parser.h"

namespace berth::pod {

namespace {

using nlohmann::json;

constexpr const char* kOciVersion = "1.1.0";
constexpr const char* kDefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int64_t kMaxId = 0xfffffffe;  // (uint32_t)-1 is "no id" to the kernel

// What Kubernetes and containerd hide or freeze in /proc and /sys unless the pod
// asks otherwise (kubelet sends an explicit empty list for procMount: Unmasked).
const std::vector<std::string> kDefaultMaskedPaths = {
    "/proc/acpi",       "/proc/asound",     "/proc/kcore",       "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
const std::vector<std::string> kDefaultReadonlyPaths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                        "/proc/sysrq-trigger"};

// ---------------------------------------------------------------------------------
// Capabilities

std::string capability_key(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  return upper.starts_with("CAP_") ? upper : "CAP_" + upper;
}

bool is_all(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  return upper == "ALL";
}

Result<uint64_t> capability_bit(std::string_view name, const char* field) {
  auto cap = process::capability_from_name(capability_key(name));
  if (!cap || *cap < 0 || *cap > 63) return invalid(std::string(field) + ": unknown capability \"" + std::string(name) + "\"");
  return uint64_t{1} << *cap;
}

// containerd's "all capabilities" is the daemon's own effective set, not every name
// libcap knows: a capability berthd lacks (CAP_SYS_RESOURCE on some hosts) could
// only make the container's capset fail.
Result<uint64_t> daemon_effective_capabilities() {
  auto status = read_file("/proc/self/status");
  if (!status) return std::unexpected(status.error().wrap("read berthd's capabilities"));
  for (auto& line : split(*status, '\n')) {
    if (!line.starts_with("CapEff:")) continue;
    std::string hex(trim(std::string_view(line).substr(7)));
    char* end = nullptr;
    uint64_t bits = std::strtoull(hex.c_str(), &end, 16);
    if (hex.empty() || *end != '\0') break;
    return bits;
  }
  return fail(EIO, "read berthd's capabilities: no CapEff line in /proc/self/status");
}

std::vector<std::string> capability_names(uint64_t bits) {
  std::vector<std::string> out;
  for (int cap = 0; cap < 64; ++cap) {
    if (!(bits & (uint64_t{1} << cap))) continue;
    std::string name = process::capability_name(cap);
    // A bit libcap cannot name cannot be written into a spec either.
    if (process::capability_from_name(name)) out.push_back(std::move(name));
  }
  return out;
}

struct CapabilityPlan {
  uint64_t set = 0;  // bounding = permitted = effective
  uint64_t ambient = 0;
};

// As containerd's WithCapabilities: "ALL" in add (the daemon's set) and in drop
// (nothing) apply first, then the named adds, then the named drops, so
// {add: ALL, drop: CHOWN} and {drop: ALL, add: NET_ADMIN} both mean what they say.
// Privileged containers get the daemon's whole set whatever the lists say.
Result<CapabilityPlan> plan_capabilities(const ContainerSecurity& sec) {
  CapabilityPlan plan;
  for (auto& name : default_container_capabilities()) plan.set |= BERTH_TRY(capability_bit(name, "default capabilities"));
  uint64_t add = 0, drop = 0;
  bool add_all = false, drop_all = false;
  for (auto& name : sec.add_capabilities) {
    if (is_all(name)) add_all = true;
    else add |= BERTH_TRY(capability_bit(name, "add_capabilities"));
  }
  for (auto& name : sec.drop_capabilities) {
    if (is_all(name)) drop_all = true;
    else drop |= BERTH_TRY(capability_bit(name, "drop_capabilities"));
  }
  for (auto& name : sec.add_ambient_capabilities) {
    if (is_all(name)) return invalid("add_ambient_capabilities: \"ALL\" is not allowed; name each capability");
    plan.ambient |= BERTH_TRY(capability_bit(name, "add_ambient_capabilities"));
  }
  if (sec.privileged || add_all) plan.set = BERTH_TRY(daemon_effective_capabilities());
  if (!sec.privileged) {
    if (drop_all) plan.set = 0;
    plan.set = (plan.set | add) & ~drop;
  }
  // An ambient capability the kernel is to keep across exec must also be permitted
  // and inheritable; the request asked for it, so grant it in every set.
  plan.set |= plan.ambient;
  return plan;
}

// ---------------------------------------------------------------------------------
// Seccomp

json seccomp_json(const oci::Seccomp& s) {
  json j = {{"defaultAction", s.default_action}};
  if (s.default_errno_ret) j["defaultErrnoRet"] = *s.default_errno_ret;
  if (!s.architectures.empty()) j["architectures"] = s.architectures;
  if (!s.flags.empty()) j["flags"] = s.flags;
  if (!s.listener_path.empty()) j["listenerPath"] = s.listener_path;
  if (!s.listener_metadata.empty()) j["listenerMetadata"] = s.listener_metadata;
  json rules = json::array();
  for (auto& r : s.syscalls) {
    json rule = {{"names", r.names}, {"action", r.action}};
    if (r.errno_ret) rule["errnoRet"] = *r.errno_ret;
    if (!r.args.empty()) {
      json args = json::array();
      for (auto& a : r.args) args.push_back({{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", a.op}});
      rule["args"] = std::move(args);
    }
    rules.push_back(std::move(rule));
  }
  j["syscalls"] = std::move(rules);
  return j;
}

// Compiles the profile now, so a broken one fails CreateContainer, and drops the
// syscall names this host's libseccomp cannot resolve (profiles newer than the
// library, as runc tolerates): the launcher compiles strictly and would refuse them.
Result<oci::Seccomp> checked_profile(oci::Seccomp profile, const std::string& what) {
  seccomp::CompileOptions options;
  options.skip_unknown_syscalls = true;
  auto program = seccomp::compile(profile, options);
  if (!program) return std::unexpected(program.error().wrap(what));
  if (program->skipped_syscalls.empty()) return profile;
  std::set<std::string> skipped(program->skipped_syscalls.begin(), program->skipped_syscalls.end());
  std::vector<oci::SyscallRule> kept;
  for (auto& rule : profile.syscalls) {
    std::erase_if(rule.names, [&](const std::string& n) { return skipped.contains(n); });
    if (!rule.names.empty()) kept.push_back(std::move(rule));
  }
  profile.syscalls = std::move(kept);
  return profile;
}

Result<oci::Seccomp> load_localhost_profile(const std::string& path) {
  if (path.empty() || path[0] != '/')
    return invalid("seccomp localhost profile \"" + path + "\" must be an absolute path");
  auto text = read_file(path);
  if (!text) {
    if (text.error().code == ENOENT) return fail(ENOENT, "seccomp profile " + path + " not found");
    return std::unexpected(text.error().wrap("seccomp profile " + path));
  }
  json profile = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (profile.is_discarded() || !profile.is_object())
    return invalid("seccomp profile " + path + ": not a JSON object");
  // The launcher's own parser, so the profile means exactly what it will mean there.
  json wrapper = {{"ociVersion", kOciVersion}, {"linux", {{"seccomp", profile}}}};
  auto spec = oci::parse_spec(wrapper.dump());
  if (!spec) return std::unexpected(spec.error().wrap("seccomp profile " + path));
  if (!spec->linux || !spec->linux->seccomp) return invalid("seccomp profile " + path + ": empty profile");
  if (spec->linux->seccomp->default_action.empty()) return invalid("seccomp profile " + path + ": defaultAction is required");
  return *spec->linux->seccomp;
}

// The profile the container runs under, or nullopt for none. The container's choice
// wins; an unset one falls back to the pod's, then to RuntimeDefault.
Result<std::optional<oci::Seccomp>> plan_seccomp(const ContainerSecurity& sec, const PodSandboxSpec& pod,
                                                 const std::vector<std::string>& bounding) {
  const SecurityProfile& chosen = sec.seccomp.type != SecurityProfile::Type::unset ? sec.seccomp : pod.seccomp;
  if (chosen.type != SecurityProfile::Type::localhost && !chosen.localhost_ref.empty())
    return invalid("seccomp: localhost_ref is only allowed with a localhost profile");
  if (sec.privileged) return std::optional<oci::Seccomp>{};  // as containerd: privileged means unconfined
  switch (chosen.type) {
    case SecurityProfile::Type::unconfined:
      return std::optional<oci::Seccomp>{};
    case SecurityProfile::Type::localhost: {
      auto profile = BERTH_TRY(load_localhost_profile(chosen.localhost_ref));
      return std::optional<oci::Seccomp>{BERTH_TRY(checked_profile(std::move(profile), "seccomp profile " + chosen.localhost_ref))};
    }
    case SecurityProfile::Type::unset:
    case SecurityProfile::Type::runtime_default:
      break;
  }
  return std::optional<oci::Seccomp>{BERTH_TRY(checked_profile(seccomp::default_profile(bounding), "RuntimeDefault seccomp profile"))};
}

// No AppArmor on the hosts berth targets: the choice is kept as an annotation so it
// can be reported, and never handed to the launcher (which would refuse it).
Result<std::string> apparmor_record(const SecurityProfile& p) {
  switch (p.type) {
    case SecurityProfile::Type::unset: return std::string();
    case SecurityProfile::Type::runtime_default: return std::string("runtime/default");
    case SecurityProfile::Type::unconfined: return std::string("unconfined");
    case SecurityProfile::Type::localhost:
      if (p.localhost_ref.empty()) return invalid("apparmor: a localhost profile needs a profile name");
      return "localhost/" + p.localhost_ref;
  }
  return std::string();
}

// ---------------------------------------------------------------------------------
// Mounts

json oci_mount(const std::string& dest, const std::string& type, const std::string& source,
               std::vector<std::string> options) {
  json m = {{"destination", dest}, {"type", type}, {"source", source}};
  if (!options.empty()) m["options"] = std::move(options);
  return m;
}

// berth's defaults (runc's, which containerd also starts from). /dev/shm is a
// private 64 MiB tmpfs unless the sandbox provides one to share.
std::vector<json> default_mounts(bool privileged) {
  std::vector<std::string> sys = {"nosuid", "noexec", "nodev", "ro"};
  std::vector<std::string> cgroup = {"nosuid", "noexec", "nodev", "relatime", "ro"};
  if (privileged) {
    sys.pop_back();
    cgroup.pop_back();
  }
  return {
      oci_mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      oci_mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      oci_mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      oci_mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      oci_mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      oci_mount("/sys", "sysfs", "sysfs", std::move(sys)),
      oci_mount("/sys/fs/cgroup", "cgroup", "cgroup", std::move(cgroup)),
  };
}

// "\040" in /proc/self/mountinfo is a space, and so on.
std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 3)), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct HostMount {
  std::string mountpoint;
  bool shared = false;
  bool slave = false;
};

// The host mount that `path` (already free of symlinks) lives on.
Result<HostMount> host_mount_of(const std::string& path) {
  auto text = read_file("/proc/self/mountinfo");
  if (!text) return std::unexpected(text.error().wrap("find the mount of " + path));
  HostMount best;
  bool found = false;
  for (auto& line : split(*text, '\n')) {
    auto f = split(line, ' ');
    if (f.size() < 7) continue;
    std::string mountpoint = unescape_mountinfo(f[4]);
    bool under = mountpoint == "/" || path == mountpoint || path.starts_with(mountpoint + "/");
    // Later lines are mounted on top of earlier ones at the same place.
    if (!under || (found && mountpoint.size() < best.mountpoint.size())) continue;
    HostMount m{mountpoint, false, false};
    for (size_t i = 6; i < f.size() && f[i] != "-"; ++i) {
      if (f[i].starts_with("shared:")) m.shared = true;
      if (f[i].starts_with("master:")) m.slave = true;
    }
    best = std::move(m);
    found = true;
  }
  if (!found) return fail(ENOENT, "no mount found for " + path);
  return best;
}

struct MountPlan {
  std::vector<json> mounts;
  std::string rootfs_propagation;
};

// One CRI-style mount as containerd writes it: an rbind with explicit propagation
// and ro/rw. The source must exist: berth refuses rather than creating host paths.
Result<json> bind_mount(const Mount& m, MountPlan& plan) {
  if (m.container_path.empty() || m.container_path[0] != '/')
    return invalid("mount container_path \"" + m.container_path + "\" must be an absolute path");
  if (m.host_path.empty()) return invalid("mount at " + m.container_path + ": host_path is required");
  char resolved[PATH_MAX];
  if (!::realpath(m.host_path.c_str(), resolved)) {
    if (errno == ENOENT || errno == ENOTDIR) return fail(ENOENT, "mount source " + m.host_path + " does not exist");
    return sys_fail("mount source " + m.host_path);
  }
  std::string source = resolved;
  std::vector<std::string> options = {"rbind"};
  switch (m.propagation) {
    case MountPropagation::private_:
      options.push_back("rprivate");
      break;
    case MountPropagation::host_to_container: {
      auto host = BERTH_TRY(host_mount_of(source));
      if (!host.shared && !host.slave)
        return invalid("mount source " + m.host_path + " is on " + host.mountpoint +
                       ", which is neither a shared nor a slave mount (needed for host-to-container propagation)");
      options.push_back("rslave");
      if (plan.rootfs_propagation != "rshared") plan.rootfs_propagation = "rslave";
      break;
    }
    case MountPropagation::bidirectional: {
      auto host = BERTH_TRY(host_mount_of(source));
      if (!host.shared)
        return invalid("mount source " + m.host_path + " is on " + host.mountpoint +
                       ", which is not a shared mount (needed for bidirectional propagation)");
      options.push_back("rshared");
      plan.rootfs_propagation = "rshared";
      break;
    }
  }
  if (m.recursive_readonly) {
    if (!m.readonly) return invalid("mount " + m.host_path + ": recursive read-only needs read-only too");
    if (m.propagation != MountPropagation::private_)
      return invalid("mount " + m.host_path + ": recursive read-only needs private propagation");
    options.push_back("ro");
    options.push_back("rro");  // mount_setattr(AT_RECURSIVE) in the launcher
  } else {
    options.push_back(m.readonly ? "ro" : "rw");
  }
  return oci_mount(m.container_path, "bind", source, std::move(options));
}

// The sandbox's files and /dev/shm, merged with the request's mounts (the request
// wins at the same destination), ordered parent before child, after the defaults
// that nothing overrides (a request /dev takes every default under /dev with it).
Result<MountPlan> plan_mounts(const ContainerSpec& c, const SandboxRuntimeInfo& sb, bool privileged) {
  std::vector<Mount> requested = c.mounts;
  auto requested_at = [&](const std::string& dest) {
    return std::any_of(requested.begin(), requested.end(),
                       [&](const Mount& m) { return clean_path(m.container_path) == dest; });
  };
  // berthd writes the sandbox's files before any container starts, so a missing
  // one is an error here (containerd skips a missing /etc/hostname).
  std::vector<Mount> extra;
  bool ro = c.security.readonly_rootfs;
  auto add_file = [&](const std::string& host, const char* dest) {
    if (!host.empty() && !requested_at(dest)) extra.push_back({dest, host, ro, false, false, MountPropagation::private_});
  };
  add_file(sb.hostname_file, "/etc/hostname");
  add_file(sb.hosts_file, "/etc/hosts");
  add_file(sb.resolv_conf_file, "/etc/resolv.conf");
  // Shared IPC means shared POSIX shm too: the pod's dir, or the host's for a
  // host-IPC pod (containerd binds the host's /dev/shm there).
  std::string shm = !sb.shm_dir.empty() ? sb.shm_dir : sb.ipc_ns_path.empty() ? "/dev/shm" : "";
  if (!shm.empty() && !requested_at("/dev/shm"))
    extra.push_back({"/dev/shm", shm, false, false, false, MountPropagation::private_});
  requested.insert(requested.end(), extra.begin(), extra.end());
  // Fewer path components first, so a parent never lands on top of its child.
  auto depth = [](const Mount& m) {
    std::string p = clean_path(m.container_path);
    return std::count(p.begin(), p.end(), '/');
  };
  std::stable_sort(requested.begin(), requested.end(), [&](const Mount& a, const Mount& b) { return depth(a) < depth(b); });

  MountPlan plan;
  std::vector<json> binds;
  std::set<std::string> taken;
  for (auto& m : requested) {
    binds.push_back(BERTH_TRY(bind_mount(m, plan)));
    taken.insert(clean_path(m.container_path));
  }
  for (auto& d : default_mounts(privileged)) {
    std::string dest = d["destination"];
    if (taken.contains(dest)) continue;
    if (taken.contains("/dev") && dest.starts_with("/dev/")) continue;
    plan.mounts.push_back(std::move(d));
  }
  for (auto& b : binds) plan.mounts.push_back(std::move(b));
  return plan;
}

// ---------------------------------------------------------------------------------
// Devices

json device_entry(const std::string& container_path, const struct stat& st) {
  return {{"path", container_path},
          {"type", S_ISBLK(st.st_mode) ? "b" : "c"},
          {"major", static_cast<int64_t>(major(st.st_rdev))},
          {"minor", static_cast<int64_t>(minor(st.st_rdev))},
          {"fileMode", static_cast<uint32_t>(st.st_mode & 07777)},
          {"uid", static_cast<uint32_t>(st.st_uid)},
          {"gid", static_cast<uint32_t>(st.st_gid)}};
}

// Every device node under the host's /dev, as containerd gives privileged containers
// (the same directories are skipped: they are mounted afresh or are not devices).
void collect_host_devices(const std::string& dir, std::vector<std::pair<std::string, struct stat>>& out) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      static const std::set<std::string> kSkip = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"};
      if (!kSkip.contains(name)) collect_host_devices(path, out);
      continue;
    }
    if (name == "console") continue;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) out.emplace_back(path, st);
  }
  ::closedir(d);
}

struct DevicePlan {
  json devices = json::array();
  json rules = json::array();
};

// A CRI device names one node; a directory is refused (containerd would add every
// node below it). The rules deny everything else, as containerd's base spec does.
Result<DevicePlan> plan_devices(const ContainerSpec& c, bool privileged) {
  DevicePlan plan;
  std::set<std::string> paths;
  if (!privileged) plan.rules.push_back({{"allow", false}, {"access", "rwm"}});
  for (auto& d : c.devices) {
    if (d.host_path.empty()) return invalid("device: host_path is required");
    std::string dest = d.container_path.empty() ? d.host_path : d.container_path;
    if (dest[0] != '/') return invalid("device " + d.host_path + ": container_path \"" + dest + "\" must be absolute");
    std::string access = d.permissions.empty() ? "rwm" : d.permissions;
    if (access.find_first_not_of("rwm") != std::string::npos)
      return invalid("device " + d.host_path + ": permissions \"" + d.permissions + "\" may only hold r, w and m");
    struct stat st{};
    if (::stat(d.host_path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return fail(ENOENT, "device " + d.host_path + " does not exist");
      return sys_fail("device " + d.host_path);
    }
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
      return invalid("device " + d.host_path + " is not a character or block device");
    std::string clean = clean_path(dest);
    if (!paths.insert(clean).second) return invalid("device path " + clean + " is listed twice");
    json entry = device_entry(clean, st);
    plan.devices.push_back(entry);
    if (!privileged)
      plan.rules.push_back({{"allow", true}, {"type", entry["type"]}, {"major", entry["major"]}, {"minor", entry["minor"]},
                            {"access", access}});
  }
  if (privileged) {
    std::vector<std::pair<std::string, struct stat>> host;
    collect_host_devices("/dev", host);
    std::sort(host.begin(), host.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (auto& [path, st] : host)
      if (paths.insert(path).second) plan.devices.push_back(device_entry(path, st));
    plan.rules.push_back({{"allow", true}, {"access", "rwm"}});
  }
  return plan;
}

// ---------------------------------------------------------------------------------
// Resources

// containerd's test: a memory.memsw (v1) or memory.swap.max (v2) file for berthd's
// own cgroup. Without it a swap limit cannot be written, so none is asked for.
bool swap_controller_available() {
  static const bool available = [] {
    auto layout = cgroups::Layout::detect();
    if (!layout) return false;
    if (layout->has_v1("memory"))
      return ::access((layout->v1_mounts.at("memory") + "/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0;
    if (!layout->has_unified("memory")) return false;
    auto self = read_file("/proc/self/cgroup");
    if (!self) return false;
    for (auto& line : split(*self, '\n'))
      if (line.starts_with("0::"))
        return ::access((layout->unified_mount + line.substr(3) + "/memory.swap.max").c_str(), F_OK) == 0;
    return false;
  }();
  return available;
}

Result<json> plan_resources(const ContainerSpec& c, json device_rules) {
  json res = {{"devices", std::move(device_rules)}};
  if (!c.resources) return res;
  const Resources& r = *c.resources;
  json cpu = json::object();
  if (r.cpu_period < 0) return invalid("resources.cpu_period must not be negative");
  if (r.cpu_shares < 0) return invalid("resources.cpu_shares must not be negative");
  if (r.cpu_period) cpu["period"] = static_cast<uint64_t>(r.cpu_period);
  if (r.cpu_quota) cpu["quota"] = r.cpu_quota;
  if (r.cpu_shares) cpu["shares"] = static_cast<uint64_t>(r.cpu_shares);
  if (!r.cpuset_cpus.empty()) cpu["cpus"] = r.cpuset_cpus;
  if (!r.cpuset_mems.empty()) cpu["mems"] = r.cpuset_mems;
  if (!cpu.empty()) res["cpu"] = std::move(cpu);
  if (r.memory_limit_in_bytes > 0 && r.memory_swap_limit_in_bytes > 0 && r.memory_swap_limit_in_bytes < r.memory_limit_in_bytes)
    return invalid("resources.memory_swap_limit_in_bytes is memory plus swap: it must not be below memory_limit_in_bytes");
  json memory = json::object();
  if (r.memory_limit_in_bytes) {
    memory["limit"] = r.memory_limit_in_bytes;
    // No swap unless asked: memory+swap equal to memory, as containerd sets it.
    if (!r.memory_swap_limit_in_bytes && swap_controller_available()) memory["swap"] = r.memory_limit_in_bytes;
  }
  if (r.memory_swap_limit_in_bytes && swap_controller_available()) memory["swap"] = r.memory_swap_limit_in_bytes;
  if (!memory.empty()) res["memory"] = std::move(memory);
  if (!r.hugepage_limits.empty()) {
    json pages = json::array();
    for (auto& h : r.hugepage_limits) {
      if (h.page_size.empty()) return invalid("resources.hugepage_limits: page_size is required");
      pages.push_back({{"pageSize", h.page_size}, {"limit", h.limit}});
    }
    res["hugepageLimits"] = std::move(pages);
  }
  if (!r.unified.empty()) res["unified"] = r.unified;
  return res;
}

// CRI's oom_score_adj, raised to berthd's own when lowering it is not possible here
// (containerd's restrict_oom_score_adj).
Result<std::optional<int>> plan_oom_score_adj(const ContainerSpec& c, bool restrict) {
  if (!c.resources) return std::optional<int>{};
  int64_t adj = c.resources->oom_score_adj;
  if (adj < -1000 || adj > 1000) return invalid("resources.oom_score_adj must be in -1000..1000");
  if (restrict) {
    auto own = read_file("/proc/self/oom_score_adj");
    if (!own) return std::unexpected(own.error().wrap("read berthd's oom_score_adj"));
    int current = std::atoi(std::string(trim(*own)).c_str());
    if (adj < current) adj = current;
  }
  return std::optional<int>{static_cast<int>(adj)};
}

// ---------------------------------------------------------------------------------
// Namespaces

Result<json> plan_namespaces(const ContainerSpecInputs& in) {
  const SandboxRuntimeInfo& sb = *in.sandbox;
  const ContainerSecurity& sec = in.container->security;
  json ns = json::array({{{"type", "mount"}}});
  switch (sec.namespaces.pid) {
    case NamespaceMode::container:
      ns.push_back({{"type", "pid"}});
      break;
    case NamespaceMode::pod:
      if (sb.pid_ns_path.empty()) return invalid("pid namespace mode POD, but sandbox " + sb.id + " has no pid namespace");
      ns.push_back({{"type", "pid"}, {"path", sb.pid_ns_path}});
      break;
    case NamespaceMode::target:
      if (in.target_pid_ns_path.empty())
        return invalid("pid namespace mode TARGET: no pid namespace for target container \"" + sec.namespaces.target_id + "\"");
      ns.push_back({{"type", "pid"}, {"path", in.target_pid_ns_path}});
      break;
    case NamespaceMode::node:
      break;
  }
  if (!sb.netns_path.empty()) ns.push_back({{"type", "network"}, {"path", sb.netns_path}});
  if (!sb.ipc_ns_path.empty()) ns.push_back({{"type", "ipc"}, {"path", sb.ipc_ns_path}});
  // A host-network pod also keeps the host's uts namespace (and so its hostname).
  if (!sb.netns_path.empty() && !sb.uts_ns_path.empty()) ns.push_back({{"type", "uts"}, {"path", sb.uts_ns_path}});
  // As containerd: no cgroup namespace for privileged containers, which may need
  // the host's view of the hierarchy.
  if (in.cgroup_namespace && !sec.privileged) ns.push_back({{"type", "cgroup"}});
  return ns;
}

// ---------------------------------------------------------------------------------
// Process

std::string key_of(const std::string& kv) { return kv.substr(0, kv.find('=')); }

bool has_env(const std::vector<std::string>& env, const std::string& key) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& kv) { return key_of(kv) == key; });
}

std::string pod_hostname(const ContainerSpecInputs& in) {
  if (!in.sandbox->hostname.empty()) return in.sandbox->hostname;
  if (!in.pod->hostname.empty()) return in.pod->hostname;
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

// The user string CRI's fields make (containerd's generateUserString); "" leaves
// the image's USER in charge.
Result<std::string> requested_user(const ContainerSecurity& sec, const std::string& image_user) {
  std::string user;
  if (sec.run_as_user) {
    if (*sec.run_as_user < 0 || *sec.run_as_user > kMaxId) return invalid("run_as_user " + std::to_string(*sec.run_as_user) + " is out of range");
    user = std::to_string(*sec.run_as_user);
  }
  if (!sec.run_as_username.empty()) user = sec.run_as_username;
  if (sec.run_as_group) {
    if (*sec.run_as_group < 0 || *sec.run_as_group > kMaxId)
      return invalid("run_as_group " + std::to_string(*sec.run_as_group) + " is out of range");
    if (user.empty()) return invalid("run_as_group " + std::to_string(*sec.run_as_group) + " is given without run_as_user or run_as_username");
    user += ":" + std::to_string(*sec.run_as_group);
  }
  return user.empty() ? image_user : user;
}

// The primary gid always (containerd since CVE-2023-25173), the image's group
// memberships unless the policy is Strict, then the requested groups.
Result<std::vector<uint32_t>> plan_additional_gids(const ContainerSpecInputs& in, const ImageUser& user) {
  const ContainerSecurity& sec = in.container->security;
  std::vector<uint32_t> gids = {user.gid};
  if (!sec.supplemental_groups_strict) {
    auto member = BERTH_TRY(image_member_groups(in.rootfs, user.name));
    gids.insert(gids.end(), member.begin(), member.end());
  }
  for (auto* list : {&in.pod->supplemental_groups, &sec.supplemental_groups})
    for (int64_t g : *list) {
      if (g < 0 || g > kMaxId) return invalid("supplemental group " + std::to_string(g) + " is out of range");
      gids.push_back(static_cast<uint32_t>(g));
    }
  std::sort(gids.begin(), gids.end());
  gids.erase(std::unique(gids.begin(), gids.end()), gids.end());
  return gids;
}

struct NamedSignal {
  std::string_view name;
  int number;
};

constexpr NamedSignal kSignals[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},     {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT},   {"IOT", SIGIOT},       {"BUS", SIGBUS},     {"FPE", SIGFPE},     {"KILL", SIGKILL},
    {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
    {"TERM", SIGTERM},   {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},    {"CONT", SIGCONT},
    {"STOP", SIGSTOP},   {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},       {"POLL", SIGPOLL},     {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

// Real-time signals as Go runtimes and docker name them (glibc reserves 32 and 33).
constexpr int kRtMin = 34;
constexpr int kRtMax = 64;

}  // namespace

bool memory_swap_controller_available() { return swap_controller_available(); }

const std::vector<std::string>& default_container_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
      "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE",
  };
  return caps;
}

Result<int> parse_stop_signal(const std::string& text) {
  std::string s(trim(text));
  if (s.empty()) return invalid("stop signal: empty");
  if (s.find_first_not_of("0123456789") == std::string::npos) {
    if (s.size() > 3 || std::stoi(s) < 1 || std::stoi(s) > kRtMax)
      return invalid("stop signal " + text + ": not a signal number (1.." + std::to_string(kRtMax) + ")");
    return std::stoi(s);
  }
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  if (s.starts_with("SIG")) s.erase(0, 3);
  for (auto& sig : kSignals)
    if (sig.name == s) return sig.number;
  auto offset = [&](std::string_view base, int origin, int sign) -> std::optional<int> {
    if (!s.starts_with(base)) return std::nullopt;
    std::string rest = s.substr(base.size());
    if (rest.empty()) return origin;
    char op = sign > 0 ? '+' : '-';
    if (rest[0] != op || rest.size() < 2 || rest.size() > 3 || rest.find_first_not_of("0123456789", 1) != std::string::npos)
      return std::nullopt;
    int n = origin + sign * std::stoi(rest.substr(1));
    if (n < kRtMin || n > kRtMax) return std::nullopt;
    return n;
  };
  if (auto n = offset("RTMIN", kRtMin, +1)) return *n;
  if (auto n = offset("RTMAX", kRtMax, -1)) return *n;
  return invalid("stop signal \"" + text + "\" is not a known signal");
}

Result<BuiltSpec> build_container_spec(const ContainerSpecInputs& in) {
  if (!in.pod || !in.sandbox || !in.container || !in.image)
    return invalid("build container spec: pod, sandbox, container and image are all required");
  if (in.rootfs.empty()) return invalid("build container spec: rootfs is required");
  const ContainerSpec& c = *in.container;
  const ContainerSecurity& sec = c.security;
  const storage::ContainerDefaults& image = *in.image;
  if (sec.privileged && !in.pod->privileged)
    return invalid("container " + c.name + " is privileged, but its pod is not");

  BuiltSpec built;
  built.argv = storage::effective_argv(image, c.command, c.args);
  if (built.argv.empty()) return invalid("no command specified");

  std::string cwd = !c.working_dir.empty() ? c.working_dir : !image.working_dir.empty() ? image.working_dir : "/";
  if (cwd[0] != '/') return invalid("working directory \"" + cwd + "\" must be an absolute path");

  built.stop_signal = SIGTERM;
  if (!c.stop_signal.empty()) {
    built.stop_signal = BERTH_TRY(parse_stop_signal(c.stop_signal));
  } else if (!image.stop_signal.empty()) {
    auto sig = parse_stop_signal(image.stop_signal);
    if (!sig) return std::unexpected(sig.error().wrap("image StopSignal"));
    built.stop_signal = *sig;
  }

  // Who runs, resolved in the image's own files.
  std::string user_spec = BERTH_TRY(requested_user(sec, image.user));
  ImageUser user = BERTH_TRY(resolve_image_user(in.rootfs, user_spec));
  built.uid = user.uid;
  built.gid = user.gid;
  auto gids = BERTH_TRY(plan_additional_gids(in, user));

  // Environment: PATH default and HOSTNAME first, the image's env over them, the
  // request's over that (containerd's order), HOME from passwd when still unset.
  std::vector<std::string> request_env;
  for (auto& kv : c.envs) {
    if (kv.key.empty()) return invalid("env: an entry has an empty name");
    request_env.push_back(kv.key + "=" + kv.value);
  }
  std::vector<std::string> env =
      storage::merge_env({kDefaultPathEnv, "HOSTNAME=" + pod_hostname(in)}, storage::merge_env(image.env, request_env));
  if (!has_env(env, "HOME")) env.push_back("HOME=" + (user.home.empty() ? std::string("/") : user.home));

  CapabilityPlan caps = BERTH_TRY(plan_capabilities(sec));
  std::vector<std::string> cap_set = capability_names(caps.set);
  std::vector<std::string> ambient = capability_names(caps.ambient);
  auto seccomp = BERTH_TRY(plan_seccomp(sec, *in.pod, cap_set));
  std::string apparmor = BERTH_TRY(apparmor_record(sec.apparmor));
  auto oom_score_adj = BERTH_TRY(plan_oom_score_adj(c, in.restrict_oom_score_adj));

  MountPlan mounts = BERTH_TRY(plan_mounts(c, *in.sandbox, sec.privileged));
  DevicePlan devices = BERTH_TRY(plan_devices(c, sec.privileged));
  json resources = BERTH_TRY(plan_resources(c, std::move(devices.rules)));
  json namespaces = BERTH_TRY(plan_namespaces(in));

  json process = {
      {"terminal", c.tty},
      {"user", {{"uid", user.uid}, {"gid", user.gid}, {"additionalGids", gids}}},
      {"args", built.argv},
      {"env", env},
      {"cwd", cwd},
      // bounding = permitted = effective whatever the uid, as containerd writes it:
      // for a non-root user the kernel clears permitted and effective at exec
      // unless the capability is also ambient.
      {"capabilities",
       {{"bounding", cap_set}, {"effective", cap_set}, {"permitted", cap_set}, {"inheritable", ambient}, {"ambient", ambient}}},
      {"noNewPrivileges", sec.no_new_privs},
  };
  if (oom_score_adj) process["oomScoreAdj"] = *oom_score_adj;

  json linux = {
      {"namespaces", std::move(namespaces)},
      {"devices", std::move(devices.devices)},
      {"resources", std::move(resources)},
      {"cgroupsPath", in.cgroups_path},
      {"maskedPaths", json::array()},
      {"readonlyPaths", json::array()},
  };
  if (!sec.privileged) {
    linux["maskedPaths"] = sec.masked_paths_set ? sec.masked_paths : kDefaultMaskedPaths;
    linux["readonlyPaths"] = sec.readonly_paths_set ? sec.readonly_paths : kDefaultReadonlyPaths;
  }
  for (auto* list : {&linux["maskedPaths"], &linux["readonlyPaths"]})
    for (auto& p : *list)
      if (p.get<std::string>().empty() || p.get<std::string>()[0] != '/')
        return invalid("masked/readonly path \"" + p.get<std::string>() + "\" must be absolute");
  if (!mounts.rootfs_propagation.empty()) linux["rootfsPropagation"] = mounts.rootfs_propagation;
  if (seccomp) linux["seccomp"] = seccomp_json(*seccomp);

  json annotations = json::object();
  for (auto& [k, v] : c.annotations) annotations[k] = v;
  annotations["io.kubernetes.cri.container-type"] = "container";
  annotations["io.kubernetes.cri.sandbox-id"] = in.sandbox->id;
  annotations["io.kubernetes.cri.sandbox-namespace"] = in.pod->namespace_;
  annotations["io.kubernetes.cri.sandbox-uid"] = in.pod->uid;
  annotations["io.kubernetes.cri.sandbox-name"] = in.pod->name;
  annotations["io.kubernetes.cri.container-name"] = c.name;
  annotations["io.kubernetes.cri.image-name"] = in.image_name;
  if (!apparmor.empty()) annotations["io.berth.apparmor-profile"] = apparmor;

  built.config = {
      {"ociVersion", kOciVersion},
      {"process", std::move(process)},
      {"root", {{"path", in.rootfs}, {"readonly", sec.readonly_rootfs}}},
      {"mounts", std::move(mounts.mounts)},
      {"annotations", std::move(annotations)},
      {"linux", std::move(linux)},
  };
  return built;
}

}  // namespace berth::pod

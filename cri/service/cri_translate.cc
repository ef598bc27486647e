#include "cri/service/cri_translate.h"

#include <cerrno>
#include <set>
#include <vector>

#include "cri/service/signal_names.h"

namespace berth::cri {

namespace {

constexpr std::string_view kLocalhostPrefix = "localhost/";

template <typename Map>
std::map<std::string, std::string> to_std_map(const Map& m) {
  return {m.begin(), m.end()};
}

template <typename Map>
void fill_map(const std::map<std::string, std::string>& from, Map& to) {
  for (const auto& [k, v] : from) to[k] = v;
}

template <typename Repeated>
std::vector<std::string> to_strings(const Repeated& r) {
  return {r.begin(), r.end()};
}

template <typename Repeated>
void fill_strings(const std::vector<std::string>& from, Repeated& to) {
  for (const auto& s : from) to.Add(std::string(s));
}

// The deprecated string forms are still what older kubelets send.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
std::string_view legacy_seccomp(const v1::LinuxContainerSecurityContext& sc) { return sc.seccomp_profile_path(); }
std::string_view legacy_apparmor(const v1::LinuxContainerSecurityContext& sc) { return sc.apparmor_profile(); }
std::string_view legacy_seccomp(const v1::LinuxSandboxSecurityContext& sc) { return sc.seccomp_profile_path(); }
#pragma GCC diagnostic pop

std::unexpected<Error> bad(std::string_view where, std::string message) {
  return invalid(std::string(where) + ": " + message);
}

// A user namespace is something berth cannot give yet; say so rather than run the
// pod as host root without one. NODE (hostUsers: true) is what berth does anyway.
Result<> check_user_namespace(const v1::NamespaceOption& ns, std::string_view where) {
  if (!ns.has_userns_options()) return {};
  switch (ns.userns_options().mode()) {
    case v1::NODE:
      return {};
    case v1::POD:
      return fail(EOPNOTSUPP, std::string(where) + ": user namespaces (hostUsers: false) are not supported by berth");
    default:
      return bad(where, "userns_options.mode must be POD or NODE");
  }
}

// Only for a NamespaceOption that is present: its zero values mean POD. An absent
// one keeps pod_spec's defaults, which are Kubernetes' (a pid namespace per
// container) rather than CRI's POD; kubelet always sends the message anyway.
Result<pod::NamespaceOptions> to_namespaces(const v1::NamespaceOption& ns, bool pod_level, std::string_view where) {
  for (int mode : {static_cast<int>(ns.network()), static_cast<int>(ns.pid()), static_cast<int>(ns.ipc())})
    if (!v1::NamespaceMode_IsValid(mode)) return bad(where, "unknown namespace mode " + std::to_string(mode));
  if (ns.network() == v1::TARGET || ns.ipc() == v1::TARGET)
    return bad(where, "only the pid namespace can target another container");
  if (ns.pid() == v1::TARGET) {
    if (pod_level) return bad(where, "a pod sandbox cannot target a container's pid namespace");
    if (ns.target_id().empty()) return bad(where, "pid mode TARGET needs target_id");
  }
  BERTH_TRY_VOID(check_user_namespace(ns, where));
  pod::NamespaceOptions out;
  out.network = to_namespace_mode(ns.network());
  out.pid = to_namespace_mode(ns.pid());
  out.ipc = to_namespace_mode(ns.ipc());
  if (ns.pid() == v1::TARGET) out.target_id = ns.target_id();
  return out;
}

// run_as_group alone has no user to belong to: CRI says the runtime must refuse it.
Result<> check_user_group(bool has_user, bool has_group, std::string_view where) {
  if (has_group && !has_user) return bad(where, "run_as_group needs run_as_user or run_as_username");
  return {};
}

Result<std::string> to_protocol(int protocol) {
  switch (protocol) {
    case v1::TCP: return std::string("tcp");
    case v1::UDP: return std::string("udp");
    case v1::SCTP: return std::string("sctp");
    default: return invalid("unknown port mapping protocol " + std::to_string(protocol));
  }
}

v1::Protocol to_cri_protocol(const std::string& protocol) {
  if (protocol == "udp") return v1::UDP;
  if (protocol == "sctp") return v1::SCTP;
  return v1::TCP;
}

Result<pod::PortMapping> to_port_mapping(const v1::PortMapping& pm) {
  constexpr std::string_view where = "pod sandbox config: port_mappings";
  pod::PortMapping out;
  auto protocol = to_protocol(pm.protocol());
  if (!protocol) return bad(where, protocol.error().message);
  out.protocol = *protocol;
  if (pm.container_port() < 0 || pm.container_port() > 65535)
    return bad(where, "container_port " + std::to_string(pm.container_port()) + " is out of range");
  if (pm.host_port() < 0 || pm.host_port() > 65535)
    return bad(where, "host_port " + std::to_string(pm.host_port()) + " is out of range");
  out.container_port = pm.container_port();
  out.host_port = pm.host_port();
  out.host_ip = pm.host_ip();
  return out;
}

Result<pod::Device> to_device(const v1::Device& d) {
  constexpr std::string_view where = "container config: devices";
  if (d.container_path().empty()) return bad(where, "container_path is required");
  if (d.host_path().empty()) return bad(where, "host_path is required for " + d.container_path());
  pod::Device out{d.container_path(), d.host_path(), d.permissions().empty() ? "rwm" : d.permissions()};
  std::set<char> seen;
  for (char c : out.permissions)
    if ((c != 'r' && c != 'w' && c != 'm') || !seen.insert(c).second)
      return bad(where, "permissions \"" + d.permissions() + "\" of " + d.host_path() + " must be made of r, w and m");
  return out;
}

Result<pod::ContainerSecurity> to_container_security(const v1::LinuxContainerSecurityContext& sc) {
  constexpr std::string_view where = "container config: linux.security_context";
  pod::ContainerSecurity out;
  out.privileged = sc.privileged();
  out.add_capabilities = to_strings(sc.capabilities().add_capabilities());
  out.drop_capabilities = to_strings(sc.capabilities().drop_capabilities());
  out.add_ambient_capabilities = to_strings(sc.capabilities().add_ambient_capabilities());

  if (sc.has_run_as_user() && !sc.run_as_username().empty())
    return bad(where, "run_as_user and run_as_username are mutually exclusive");
  BERTH_TRY_VOID(check_user_group(sc.has_run_as_user() || !sc.run_as_username().empty(), sc.has_run_as_group(), where));
  if (sc.has_run_as_user()) {
    if (sc.run_as_user().value() < 0) return bad(where, "run_as_user must not be negative");
    out.run_as_user = sc.run_as_user().value();
  }
  if (sc.has_run_as_group()) {
    if (sc.run_as_group().value() < 0) return bad(where, "run_as_group must not be negative");
    out.run_as_group = sc.run_as_group().value();
  }
  out.run_as_username = sc.run_as_username();
  out.supplemental_groups.assign(sc.supplemental_groups().begin(), sc.supplemental_groups().end());
  if (!v1::SupplementalGroupsPolicy_IsValid(sc.supplemental_groups_policy()))
    return bad(where, "unknown supplemental_groups_policy " + std::to_string(sc.supplemental_groups_policy()));
  out.supplemental_groups_strict = sc.supplemental_groups_policy() == v1::Strict;
  out.readonly_rootfs = sc.readonly_rootfs();
  // Copied as sent: kubelet sets it only for allowPrivilegeEscalation: false, and
  // setuid programs in ordinary pods rely on it being off otherwise (containerd alike).
  out.no_new_privs = sc.no_new_privs();

  // kubelet always sends both lists: its defaults for procMount Default and empty
  // lists for Unmasked. The wire cannot tell an empty list from none, so once a
  // security context is present its lists are taken as the whole truth, which is
  // what containerd does (it starts from empty lists, not its own defaults).
  out.masked_paths = to_strings(sc.masked_paths());
  out.readonly_paths = to_strings(sc.readonly_paths());
  out.masked_paths_set = true;
  out.readonly_paths_set = true;

  auto seccomp = to_security_profile(sc.has_seccomp() ? &sc.seccomp() : nullptr, legacy_seccomp(sc),
                                     ProfileKind::seccomp);
  if (!seccomp) return std::unexpected(seccomp.error().wrap(where));
  out.seccomp = *seccomp;
  auto apparmor = to_security_profile(sc.has_apparmor() ? &sc.apparmor() : nullptr, legacy_apparmor(sc),
                                      ProfileKind::apparmor);
  if (!apparmor) return std::unexpected(apparmor.error().wrap(where));
  out.apparmor = *apparmor;

  if (sc.has_namespace_options()) {
    auto ns = to_namespaces(sc.namespace_options(), false, "container config: linux.security_context.namespace_options");
    if (!ns) return std::unexpected(ns.error());
    out.namespaces = *ns;
  }
  return out;
}

void to_cri_security(const pod::ContainerSecurity& s, v1::LinuxContainerSecurityContext& out) {
  auto* caps = out.mutable_capabilities();
  fill_strings(s.add_capabilities, *caps->mutable_add_capabilities());
  fill_strings(s.drop_capabilities, *caps->mutable_drop_capabilities());
  fill_strings(s.add_ambient_capabilities, *caps->mutable_add_ambient_capabilities());
  out.set_privileged(s.privileged);
  to_cri_namespaces(s.namespaces, *out.mutable_namespace_options());
  if (s.run_as_user) out.mutable_run_as_user()->set_value(*s.run_as_user);
  if (s.run_as_group) out.mutable_run_as_group()->set_value(*s.run_as_group);
  out.set_run_as_username(s.run_as_username);
  out.set_readonly_rootfs(s.readonly_rootfs);
  for (int64_t g : s.supplemental_groups) out.add_supplemental_groups(g);
  out.set_supplemental_groups_policy(s.supplemental_groups_strict ? v1::Strict : v1::Merge);
  out.set_no_new_privs(s.no_new_privs);
  fill_strings(s.masked_paths, *out.mutable_masked_paths());
  fill_strings(s.readonly_paths, *out.mutable_readonly_paths());
  v1::SecurityProfile profile;
  if (to_cri_security_profile(s.seccomp, profile)) *out.mutable_seccomp() = profile;
  profile.Clear();
  if (to_cri_security_profile(s.apparmor, profile)) *out.mutable_apparmor() = profile;
}

}  // namespace

// ---- pods ------------------------------------------------------------------------

Result<pod::PodSandboxSpec> to_pod_spec(const v1::PodSandboxConfig& config, const std::string& runtime_handler) {
  constexpr std::string_view where = "pod sandbox config";
  if (!config.has_metadata()) return bad(where, "metadata is required");
  const auto& meta = config.metadata();
  if (meta.name().empty()) return bad(where, "metadata.name is required");
  if (meta.namespace_().empty()) return bad(where, "metadata.namespace is required");
  if (meta.uid().empty()) return bad(where, "metadata.uid is required");

  pod::PodSandboxSpec spec;
  spec.name = meta.name();
  spec.uid = meta.uid();
  spec.namespace_ = meta.namespace_();
  spec.attempt = meta.attempt();
  spec.hostname = config.hostname();
  spec.log_directory = config.log_directory();
  spec.dns.servers = to_strings(config.dns_config().servers());
  spec.dns.searches = to_strings(config.dns_config().searches());
  spec.dns.options = to_strings(config.dns_config().options());
  for (const auto& pm : config.port_mappings()) spec.port_mappings.push_back(BERTH_TRY(to_port_mapping(pm)));
  spec.labels = to_std_map(config.labels());
  spec.annotations = to_std_map(config.annotations());

  const auto& linux = config.linux();
  spec.cgroup_parent = linux.cgroup_parent();
  spec.sysctls = to_std_map(linux.sysctls());
  const auto& sc = linux.security_context();
  constexpr std::string_view sc_where = "pod sandbox config: linux.security_context";
  if (sc.has_namespace_options()) {
    auto ns = to_namespaces(sc.namespace_options(), true, "pod sandbox config: linux.security_context.namespace_options");
    if (!ns) return std::unexpected(ns.error());
    spec.namespaces = *ns;
  }
  spec.privileged = sc.privileged();
  BERTH_TRY_VOID(check_user_group(sc.has_run_as_user(), sc.has_run_as_group(), sc_where));
  if (sc.has_run_as_user()) spec.run_as_user = sc.run_as_user().value();
  if (sc.has_run_as_group()) spec.run_as_group = sc.run_as_group().value();
  spec.supplemental_groups.assign(sc.supplemental_groups().begin(), sc.supplemental_groups().end());
  spec.readonly_rootfs = sc.readonly_rootfs();
  auto seccomp = to_security_profile(sc.has_seccomp() ? &sc.seccomp() : nullptr, legacy_seccomp(sc),
                                     ProfileKind::seccomp);
  if (!seccomp) return std::unexpected(seccomp.error().wrap(sc_where));
  spec.seccomp = *seccomp;
  // The sandbox has no AppArmor setting of its own in berth; a malformed one is
  // still refused so that the error shows at RunPodSandbox, not later.
  if (sc.has_apparmor()) {
    auto apparmor = to_security_profile(&sc.apparmor(), {}, ProfileKind::apparmor);
    if (!apparmor) return std::unexpected(apparmor.error().wrap(sc_where));
  }
  if (linux.has_overhead()) spec.overhead = to_resources(linux.overhead());
  if (linux.has_resources()) spec.resources = to_resources(linux.resources());
  spec.runtime_handler = runtime_handler;
  return spec;
}

void to_cri_config(const pod::PodSandboxSpec& spec, v1::PodSandboxConfig& out) {
  auto* meta = out.mutable_metadata();
  meta->set_name(spec.name);
  meta->set_uid(spec.uid);
  meta->set_namespace_(spec.namespace_);
  meta->set_attempt(spec.attempt);
  out.set_hostname(spec.hostname);
  out.set_log_directory(spec.log_directory);
  auto* dns = out.mutable_dns_config();
  fill_strings(spec.dns.servers, *dns->mutable_servers());
  fill_strings(spec.dns.searches, *dns->mutable_searches());
  fill_strings(spec.dns.options, *dns->mutable_options());
  for (const auto& pm : spec.port_mappings) {
    auto* m = out.add_port_mappings();
    m->set_protocol(to_cri_protocol(pm.protocol));
    m->set_container_port(pm.container_port);
    m->set_host_port(pm.host_port);
    m->set_host_ip(pm.host_ip);
  }
  fill_map(spec.labels, *out.mutable_labels());
  fill_map(spec.annotations, *out.mutable_annotations());
  auto* linux = out.mutable_linux();
  linux->set_cgroup_parent(spec.cgroup_parent);
  fill_map(spec.sysctls, *linux->mutable_sysctls());
  auto* sc = linux->mutable_security_context();
  to_cri_namespaces(spec.namespaces, *sc->mutable_namespace_options());
  sc->set_privileged(spec.privileged);
  if (spec.run_as_user) sc->mutable_run_as_user()->set_value(*spec.run_as_user);
  if (spec.run_as_group) sc->mutable_run_as_group()->set_value(*spec.run_as_group);
  for (int64_t g : spec.supplemental_groups) sc->add_supplemental_groups(g);
  sc->set_readonly_rootfs(spec.readonly_rootfs);
  v1::SecurityProfile profile;
  if (to_cri_security_profile(spec.seccomp, profile)) *sc->mutable_seccomp() = profile;
  if (spec.overhead) to_cri_resources(*spec.overhead, *linux->mutable_overhead());
  if (spec.resources) to_cri_resources(*spec.resources, *linux->mutable_resources());
}

// ---- containers ------------------------------------------------------------------

Result<pod::ContainerSpec> to_container_spec(const v1::ContainerConfig& config) {
  constexpr std::string_view where = "container config";
  if (!config.has_metadata()) return bad(where, "metadata is required");
  if (config.metadata().name().empty()) return bad(where, "metadata.name is required");
  if (config.image().image().empty()) return bad(where, "image.image is required");
  if (config.cdi_devices_size() > 0)
    return fail(EOPNOTSUPP, "container config: CDI devices (" + config.cdi_devices(0).name() +
                                ") are not supported by berth");

  pod::ContainerSpec spec;
  spec.name = config.metadata().name();
  spec.attempt = config.metadata().attempt();
  spec.image = config.image().image();
  spec.command = to_strings(config.command());
  spec.args = to_strings(config.args());
  spec.working_dir = config.working_dir();
  for (const auto& kv : config.envs()) {
    if (kv.key().empty()) return bad(where, "an environment variable has an empty name");
    spec.envs.push_back({kv.key(), kv.value()});
  }
  for (const auto& m : config.mounts()) {
    auto mount = to_mount(m);
    if (!mount) return std::unexpected(mount.error());
    spec.mounts.push_back(std::move(*mount));
  }
  for (const auto& d : config.devices()) spec.devices.push_back(BERTH_TRY(to_device(d)));
  spec.labels = to_std_map(config.labels());
  spec.annotations = to_std_map(config.annotations());
  spec.log_path = config.log_path();
  spec.stdin_open = config.stdin();
  spec.stdin_once = config.stdin_once();
  spec.tty = config.tty();
  if (config.linux().has_resources()) spec.resources = to_resources(config.linux().resources());
  if (config.linux().has_security_context()) {
    spec.security = BERTH_TRY(to_container_security(config.linux().security_context()));
  } else {
    // No security context at all is not kubelet (it always sends one): berth's
    // defaults stand, except no_new_privs, which CRI leaves off unless asked.
    spec.security.no_new_privs = false;
  }
  auto signal = stop_signal_name(config.stop_signal());
  if (!signal) return std::unexpected(signal.error().wrap(where));
  spec.stop_signal = *signal;
  return spec;
}

void to_cri_config(const pod::ContainerSpec& spec, v1::ContainerConfig& out) {
  out.mutable_metadata()->set_name(spec.name);
  out.mutable_metadata()->set_attempt(spec.attempt);
  out.mutable_image()->set_image(spec.image);
  fill_strings(spec.command, *out.mutable_command());
  fill_strings(spec.args, *out.mutable_args());
  out.set_working_dir(spec.working_dir);
  for (const auto& kv : spec.envs) {
    auto* e = out.add_envs();
    e->set_key(kv.key);
    e->set_value(kv.value);
  }
  for (const auto& m : spec.mounts) to_cri_mount(m, *out.add_mounts());
  for (const auto& d : spec.devices) {
    auto* dev = out.add_devices();
    dev->set_container_path(d.container_path);
    dev->set_host_path(d.host_path);
    dev->set_permissions(d.permissions);
  }
  fill_map(spec.labels, *out.mutable_labels());
  fill_map(spec.annotations, *out.mutable_annotations());
  out.set_log_path(spec.log_path);
  out.set_stdin(spec.stdin_open);
  out.set_stdin_once(spec.stdin_once);
  out.set_tty(spec.tty);
  if (spec.resources) to_cri_resources(*spec.resources, *out.mutable_linux()->mutable_resources());
  to_cri_security(spec.security, *out.mutable_linux()->mutable_security_context());
  out.set_stop_signal(static_cast<v1::Signal>(stop_signal_value(spec.stop_signal)));
}

// ---- resources -------------------------------------------------------------------

pod::Resources to_resources(const v1::LinuxContainerResources& r) {
  pod::Resources out;
  out.cpu_period = r.cpu_period();
  out.cpu_quota = r.cpu_quota();
  out.cpu_shares = r.cpu_shares();
  out.memory_limit_in_bytes = r.memory_limit_in_bytes();
  out.memory_swap_limit_in_bytes = r.memory_swap_limit_in_bytes();
  out.oom_score_adj = r.oom_score_adj();
  out.cpuset_cpus = r.cpuset_cpus();
  out.cpuset_mems = r.cpuset_mems();
  for (const auto& h : r.hugepage_limits()) out.hugepage_limits.push_back({h.page_size(), h.limit()});
  out.unified = to_std_map(r.unified());
  return out;
}

void to_cri_resources(const pod::Resources& r, v1::LinuxContainerResources& out) {
  out.set_cpu_period(r.cpu_period);
  out.set_cpu_quota(r.cpu_quota);
  out.set_cpu_shares(r.cpu_shares);
  out.set_memory_limit_in_bytes(r.memory_limit_in_bytes);
  out.set_memory_swap_limit_in_bytes(r.memory_swap_limit_in_bytes);
  out.set_oom_score_adj(r.oom_score_adj);
  out.set_cpuset_cpus(r.cpuset_cpus);
  out.set_cpuset_mems(r.cpuset_mems);
  for (const auto& h : r.hugepage_limits) {
    auto* limit = out.add_hugepage_limits();
    limit->set_page_size(h.page_size);
    limit->set_limit(h.limit);
  }
  fill_map(r.unified, *out.mutable_unified());
}

// ---- namespaces and mounts -------------------------------------------------------

pod::NamespaceMode to_namespace_mode(v1::NamespaceMode mode) {
  switch (mode) {
    case v1::CONTAINER: return pod::NamespaceMode::container;
    case v1::NODE: return pod::NamespaceMode::node;
    case v1::TARGET: return pod::NamespaceMode::target;
    default: return pod::NamespaceMode::pod;
  }
}

v1::NamespaceMode to_cri_namespace_mode(pod::NamespaceMode mode) {
  switch (mode) {
    case pod::NamespaceMode::container: return v1::CONTAINER;
    case pod::NamespaceMode::node: return v1::NODE;
    case pod::NamespaceMode::target: return v1::TARGET;
    case pod::NamespaceMode::pod: break;
  }
  return v1::POD;
}

void to_cri_namespaces(const pod::NamespaceOptions& options, v1::NamespaceOption& out) {
  out.set_network(to_cri_namespace_mode(options.network));
  out.set_pid(to_cri_namespace_mode(options.pid));
  out.set_ipc(to_cri_namespace_mode(options.ipc));
  out.set_target_id(options.target_id);
}

pod::MountPropagation to_propagation(v1::MountPropagation propagation) {
  switch (propagation) {
    case v1::PROPAGATION_HOST_TO_CONTAINER: return pod::MountPropagation::host_to_container;
    case v1::PROPAGATION_BIDIRECTIONAL: return pod::MountPropagation::bidirectional;
    default: return pod::MountPropagation::private_;
  }
}

v1::MountPropagation to_cri_propagation(pod::MountPropagation propagation) {
  switch (propagation) {
    case pod::MountPropagation::host_to_container: return v1::PROPAGATION_HOST_TO_CONTAINER;
    case pod::MountPropagation::bidirectional: return v1::PROPAGATION_BIDIRECTIONAL;
    case pod::MountPropagation::private_: break;
  }
  return v1::PROPAGATION_PRIVATE;
}

Result<pod::Mount> to_mount(const v1::Mount& m) {
  constexpr std::string_view where = "container config: mounts";
  if (m.container_path().empty()) return bad(where, "container_path is required");
  const std::string& dest = m.container_path();
  if (!m.image().image().empty())
    return fail(EOPNOTSUPP, std::string(where) + ": " + dest + ": image volume mounts are not supported by berth");
  if (m.host_path().empty()) return bad(where, dest + ": host_path is required");
  if (m.uidmappings_size() > 0 || m.gidmappings_size() > 0)
    return fail(EOPNOTSUPP, std::string(where) + ": " + dest + ": id-mapped mounts are not supported by berth");
  if (!v1::MountPropagation_IsValid(m.propagation()))
    return bad(where, dest + ": unknown propagation " + std::to_string(m.propagation()));
  if (m.recursive_read_only()) {
    if (!m.readonly()) return bad(where, dest + ": recursive_read_only needs readonly");
    if (m.propagation() != v1::PROPAGATION_PRIVATE)
      return bad(where, dest + ": recursive_read_only needs PROPAGATION_PRIVATE");
  }
  pod::Mount out;
  out.container_path = dest;
  out.host_path = m.host_path();
  out.readonly = m.readonly();
  out.recursive_readonly = m.recursive_read_only();
  out.selinux_relabel = m.selinux_relabel();
  out.propagation = to_propagation(m.propagation());
  return out;
}

void to_cri_mount(const pod::Mount& m, v1::Mount& out) {
  out.set_container_path(m.container_path);
  out.set_host_path(m.host_path);
  out.set_readonly(m.readonly);
  out.set_recursive_read_only(m.recursive_readonly);
  out.set_selinux_relabel(m.selinux_relabel);
  out.set_propagation(to_cri_propagation(m.propagation));
}

// ---- security profiles -----------------------------------------------------------

namespace {

std::string_view kind_name(ProfileKind kind) { return kind == ProfileKind::seccomp ? "seccomp" : "apparmor"; }

Result<pod::SecurityProfile> localhost_profile(std::string_view ref, ProfileKind kind) {
  if (ref.starts_with(kLocalhostPrefix)) ref.remove_prefix(kLocalhostPrefix.size());
  if (ref.empty()) return invalid(std::string(kind_name(kind)) + ": a Localhost profile needs localhost_ref");
  if (kind == ProfileKind::seccomp && !ref.starts_with('/'))
    return invalid("seccomp: localhost profile \"" + std::string(ref) + "\" is not an absolute path");
  return pod::SecurityProfile{pod::SecurityProfile::Type::localhost, std::string(ref)};
}

}  // namespace

Result<pod::SecurityProfile> parse_legacy_profile(std::string_view text, ProfileKind kind) {
  using Type = pod::SecurityProfile::Type;
  if (text.empty()) return pod::SecurityProfile{};
  if (text == "runtime/default" || text == "docker/default") return pod::SecurityProfile{Type::runtime_default, {}};
  if (text == "unconfined") return pod::SecurityProfile{Type::unconfined, {}};
  if (text.starts_with(kLocalhostPrefix)) return localhost_profile(text, kind);
  std::string want = kind == ProfileKind::seccomp ? "localhost/<absolute path>" : "localhost/<profile name>";
  return invalid(std::string(kind_name(kind)) + ": invalid profile \"" + std::string(text) +
                 "\": want runtime/default, docker/default, unconfined or " + want);
}

Result<pod::SecurityProfile> to_security_profile(const v1::SecurityProfile* structured, std::string_view legacy,
                                                 ProfileKind kind) {
  using Type = pod::SecurityProfile::Type;
  if (!structured) return parse_legacy_profile(legacy, kind);
  const std::string& ref = structured->localhost_ref();
  switch (structured->profile_type()) {
    case v1::SecurityProfile::RuntimeDefault:
    case v1::SecurityProfile::Unconfined:
      if (!ref.empty())
        return invalid(std::string(kind_name(kind)) + ": localhost_ref is only allowed with profile type Localhost");
      return pod::SecurityProfile{
          structured->profile_type() == v1::SecurityProfile::Unconfined ? Type::unconfined : Type::runtime_default, {}};
    case v1::SecurityProfile::Localhost:
      return localhost_profile(ref, kind);
    default:
      return invalid(std::string(kind_name(kind)) + ": unknown profile type " +
                     std::to_string(structured->profile_type()));
  }
}

bool to_cri_security_profile(const pod::SecurityProfile& profile, v1::SecurityProfile& out) {
  using Type = pod::SecurityProfile::Type;
  switch (profile.type) {
    case Type::unset: return false;
    case Type::runtime_default: out.set_profile_type(v1::SecurityProfile::RuntimeDefault); break;
    case Type::unconfined: out.set_profile_type(v1::SecurityProfile::Unconfined); break;
    case Type::localhost:
      out.set_profile_type(v1::SecurityProfile::Localhost);
      out.set_localhost_ref(profile.localhost_ref);
      break;
  }
  return true;
}

// ---- stop signals ----------------------------------------------------------------

namespace {

constexpr std::string_view kRtMinPlus = "SIGRTMINPLUS", kRtMaxMinus = "SIGRTMAXMINUS";

}  // namespace

Result<std::string> stop_signal_name(int cri_signal) {
  if (!v1::Signal_IsValid(cri_signal)) return invalid("unknown stop_signal " + std::to_string(cri_signal));
  if (cri_signal == v1::RUNTIME_DEFAULT) return std::string();
  std::string_view name = v1::Signal_Name(static_cast<v1::Signal>(cri_signal));
  if (name.starts_with(kRtMinPlus)) return "SIGRTMIN+" + std::string(name.substr(kRtMinPlus.size()));
  if (name.starts_with(kRtMaxMinus)) return "SIGRTMAX-" + std::string(name.substr(kRtMaxMinus.size()));
  if (name == "SIGCLD") return std::string("SIGCHLD");
  if (name == "SIGPOLL") return std::string("SIGIO");
  if (name == "SIGIOT") return std::string("SIGABRT");
  return std::string(name);
}

int stop_signal_value(std::string_view text) {
  std::string name = canonical_signal_name(text);
  if (name.empty()) return v1::RUNTIME_DEFAULT;
  if (name.starts_with("SIGRTMIN+")) name = std::string(kRtMinPlus) + name.substr(9);
  else if (name.starts_with("SIGRTMAX-")) name = std::string(kRtMaxMinus) + name.substr(9);
  v1::Signal value = v1::RUNTIME_DEFAULT;
  return v1::Signal_Parse(name, &value) ? static_cast<int>(value) : static_cast<int>(v1::RUNTIME_DEFAULT);
}

}  // namespace berth::cri

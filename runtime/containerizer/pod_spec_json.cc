#include "runtime/containerizer/pod_spec_json.h"

#include <nlohmann/json.hpp>

namespace nlohmann {
// Absent or null means "not set".
template <typename T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& v) {
    if (v) j = *v;
    else j = nullptr;
  }
  static void from_json(const json& j, std::optional<T>& v) {
    if (j.is_null()) v.reset();
    else v = j.get<T>();
  }
};
}  // namespace nlohmann

namespace berth::pod {

NLOHMANN_JSON_SERIALIZE_ENUM(NamespaceMode, {{NamespaceMode::pod, "pod"},
                                             {NamespaceMode::container, "container"},
                                             {NamespaceMode::node, "node"},
                                             {NamespaceMode::target, "target"}})
NLOHMANN_JSON_SERIALIZE_ENUM(MountPropagation, {{MountPropagation::private_, "private"},
                                                {MountPropagation::host_to_container, "host_to_container"},
                                                {MountPropagation::bidirectional, "bidirectional"}})
NLOHMANN_JSON_SERIALIZE_ENUM(SecurityProfile::Type, {{SecurityProfile::Type::unset, "unset"},
                                                     {SecurityProfile::Type::runtime_default, "runtime_default"},
                                                     {SecurityProfile::Type::unconfined, "unconfined"},
                                                     {SecurityProfile::Type::localhost, "localhost"}})

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NamespaceOptions, network, pid, ipc, target_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PortMapping, protocol, container_port, host_port, host_ip)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DnsConfig, servers, searches, options)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Mount, container_path, host_path, readonly, recursive_readonly,
                                                selinux_relabel, propagation)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Device, container_path, host_path, permissions)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HugepageLimit, page_size, limit)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Resources, cpu_period, cpu_quota, cpu_shares, memory_limit_in_bytes,
                                                memory_swap_limit_in_bytes, oom_score_adj, cpuset_cpus, cpuset_mems,
                                                hugepage_limits, unified)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SecurityProfile, type, localhost_ref)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ContainerSecurity, privileged, add_capabilities, drop_capabilities,
                                                add_ambient_capabilities, run_as_user, run_as_group, run_as_username,
                                                supplemental_groups, supplemental_groups_strict, readonly_rootfs,
                                                no_new_privs, seccomp, apparmor, masked_paths, readonly_paths,
                                                masked_paths_set, readonly_paths_set, namespaces)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PodSandboxSpec, name, uid, namespace_, attempt, hostname,
                                                log_directory, dns, port_mappings, labels, annotations,
                                                cgroup_parent, sysctls, namespaces, privileged, run_as_user,
                                                run_as_group, supplemental_groups, readonly_rootfs, seccomp,
                                                overhead, resources, runtime_handler)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(KeyValue, key, value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ContainerSpec, name, attempt, image, command, args, working_dir, envs,
                                                mounts, devices, labels, annotations, log_path, stdin_open, stdin_once,
                                                tty, resources, security, stop_signal)

namespace {
template <typename T>
Result<T> parse(const std::string& text, const char* what) {
  try {
    return nlohmann::json::parse(text).get<T>();
  } catch (const std::exception& e) {
    return invalid(std::string("stored ") + what + " spec: " + e.what());
  }
}
}  // namespace

std::string to_json(const PodSandboxSpec& spec) { return nlohmann::json(spec).dump(); }
std::string to_json(const ContainerSpec& spec) { return nlohmann::json(spec).dump(); }
std::string to_json(const Resources& resources) { return nlohmann::json(resources).dump(); }
Result<PodSandboxSpec> pod_spec_from_json(const std::string& text) { return parse<PodSandboxSpec>(text, "pod"); }
Result<ContainerSpec> container_spec_from_json(const std::string& text) {
  return parse<ContainerSpec>(text, "container");
}
Result<Resources> resources_from_json(const std::string& text) { return parse<Resources>(text, "resources"); }

}  // namespace berth::pod

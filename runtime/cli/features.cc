#include "runtime/cli/features.h"

#include <nlohmann/json.hpp>

#include "isolators/process/capabilities.h"
#include "isolators/seccomp/seccomp.h"
#include "runtime/linux/mount_options.h"
#include "runtime/linux/namespaces.h"
#include "runtime/linux/process_plan.h"

namespace berth::cli {

std::string features_json() {
  using nlohmann::json;
  json namespaces = json::array();
  size_t count = 0;
  const linux_ns::NamespaceKind* kinds = linux_ns::all_kinds(&count);
  for (size_t i = 0; i < count; ++i)
    if (linux_ns::kernel_has(kinds[i])) namespaces.push_back(kinds[i].oci_type);
  json j = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.1.0"},
      {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions", known_mount_options()},
      {"linux",
       {{"namespaces", namespaces},
        {"capabilities", process::known_capabilities()},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions", seccomp::known_actions()},
          {"operators", seccomp::known_operators()},
          {"archs", seccomp::known_architectures()},
          {"knownFlags", seccomp::known_flags()},
          {"supportedFlags", seccomp::supported_flags()}}},
        {"apparmor", {{"enabled", apparmor_enabled()}}},
        {"selinux", {{"enabled", selinux_enabled()}}},
        {"intelRdt", {{"enabled", false}}}}},
      {"annotations", {{"io.berth.version", "0.1.0"}}},
  };
  return j.dump(4) + "\n";
}

}  // namespace berth::cli

// The files every container of a pod sees at /etc/hostname, /etc/hosts and
// /etc/resolv.conf, written once per pod into its directory and bind-mounted.
#pragma once

#include <string>

#include "common/error.h"
#include "runtime/containerizer/pod_spec.h"

namespace berth::pod {

struct SandboxFiles {
  std::string hostname, hosts, resolv_conf;  // paths
};

// resolv.conf: the pod's DNS config when it sets anything, else the host's file
// (as containerd does). hosts: the host's for host-network pods, else localhost
// entries plus the hostname. `hostname` is what the pod's UTS namespace carries.
Result<SandboxFiles> write_sandbox_files(const std::string& dir, const PodSandboxSpec& spec,
                                         const std::string& hostname, bool host_network);

// The resolv.conf text for a DNS config; exposed for tests.
std::string resolv_conf_text(const DnsConfig& dns);

}  // namespace berth::pod

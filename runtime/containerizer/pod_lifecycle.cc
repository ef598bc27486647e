// RunPodSandbox, StopPodSandbox and RemovePodSandbox: a pod is a directory, pinned
// namespaces (no pause process), a shm mount, an optional pid-namespace holder, a
// cgroup and a CNI attachment. Each is recorded before it is made.
#include <sys/mount.h>
#include <unistd.h>

#include <thread>

#include "common/file_util.h"
#include "common/log.h"
#include "runtime/containerizer/containerizer_impl.h"
#include "runtime/containerizer/sandbox_files.h"
#include "runtime/linux/pinned_namespaces.h"

namespace berth::pod {

namespace {

bool is_ipc_sysctl(const std::string& name) {
  return starts_with(name, "kernel.shm") || starts_with(name, "kernel.msg") || name == "kernel.sem" ||
         starts_with(name, "fs.mqueue.");
}

std::string host_hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

Result<> validate_pod(const PodSandboxSpec& spec) {
  if (spec.name.empty() || spec.namespace_.empty() || spec.uid.empty())
    return invalid("pod sandbox metadata needs a name, a namespace and a uid");
  if (spec.hostname.size() > 64) return invalid("hostname '" + spec.hostname + "' is longer than 64 bytes");
  bool host_net = spec.namespaces.network == NamespaceMode::node;
  for (auto& [name, value] : spec.sysctls) {
    if (is_ipc_sysctl(name)) {
      if (spec.namespaces.ipc == NamespaceMode::node)
        return invalid("sysctl " + name + " needs the pod's own IPC namespace (the pod uses the host's)");
    } else if (starts_with(name, "net.")) {
      if (host_net) return invalid("sysctl " + name + " needs the pod's own network namespace (the pod uses the host's)");
    } else {
      return invalid("sysctl " + name + " is not namespaced: a pod cannot set it");
    }
  }
  for (auto& pm : spec.port_mappings)
    if (pm.container_port <= 0 || pm.container_port > 65535 || pm.host_port < 0 || pm.host_port > 65535)
      return invalid("port mapping " + std::to_string(pm.host_port) + ":" + std::to_string(pm.container_port) +
                     " is out of range");
  return {};
}

nlohmann::json port_mappings_json(const PodSandboxSpec& spec) {
  auto list = nlohmann::json::array();
  for (auto& pm : spec.port_mappings) {
    if (pm.host_port <= 0) continue;
    list.push_back({{"hostPort", pm.host_port},
                    {"containerPort", pm.container_port},
                    {"protocol", pm.protocol},
                    {"hostIP", pm.host_ip}});
  }
  return list;
}

}  // namespace

network::CniAttachment Containerizer::Impl::attachment_for(const PodRecord& r) const {
  network::CniAttachment a;
  a.container_id = r.id;
  a.netns_path = r.netns_path;
  a.ifname = "eth0";
  a.args = {{"IgnoreUnknown", "1"},
            {"K8S_POD_NAMESPACE", r.spec.namespace_},
            {"K8S_POD_NAME", r.spec.name},
            {"K8S_POD_INFRA_CONTAINER_ID", r.id},
            {"K8S_POD_UID", r.spec.uid}};
  auto ports = port_mappings_json(r.spec);
  if (!ports.empty()) a.capability_args["portMappings"] = ports;
  if (!r.spec.dns.servers.empty() || !r.spec.dns.searches.empty() || !r.spec.dns.options.empty())
    a.capability_args["dns"] = {
        {"servers", r.spec.dns.servers}, {"searches", r.spec.dns.searches}, {"options", r.spec.dns.options}};
  return a;
}

Result<std::string> Containerizer::Impl::run_pod(const PodSandboxSpec& spec) {
  BERTH_TRY_VOID(validate_pod(spec));
  bool host_net = spec.namespaces.network == NamespaceMode::node;
  bool host_ipc = spec.namespaces.ipc == NamespaceMode::node;

  // The network config is read before anything is made: a node without one cannot
  // run pods that need it.
  std::optional<network::CniNetworkConfig> net_config;
  if (!host_net) {
    for (auto& dir : options.cni_conf_dirs) {
      auto c = network::load_default_network(dir);
      if (c) {
        net_config = std::move(*c);
        break;
      }
      if (c.error().code != ENOENT) return std::unexpected(c.error().wrap("load CNI network config"));
    }
    if (!net_config) return fail(EAGAIN, "no CNI network config found in the CNI config dir: the network is not ready");
  }

  PodRecord rec;
  rec.id = random_id();
  rec.spec = spec;
  rec.phase = PodPhase::creating;
  rec.created_at_ns = now_ns();
  rec.dir = pods_dir() + "/" + rec.id;
  std::string ns_dir = rec.dir + "/ns";
  if (!host_net) rec.netns_path = ns_dir + "/net";
  if (!host_ipc) rec.ipc_ns_path = ns_dir + "/ipc";
  if (!host_net) rec.uts_ns_path = ns_dir + "/uts";
  if (spec.namespaces.pid == NamespaceMode::pod) rec.pid_ns_path = ns_dir + "/pid";
  if (!host_ipc) rec.shm_dir = rec.dir + "/shm";
  if (spec.cgroup_parent.empty()) {
    rec.cgroup_path = options.cgroup_root + "/" + rec.id;
    rec.cgroup_owned = true;
  } else {
    rec.cgroup_path = spec.cgroup_parent;
  }
  auto lock = op_lock(rec.id);
  std::lock_guard op(*lock);
  {
    std::lock_guard g(records_mu);
    BERTH_TRY_VOID(records->insert_pod(rec));
  }

  auto made = [&]() -> Result<> {
    BERTH_TRY_VOID(make_dirs(ns_dir, 0711));
    std::string hostname = host_net ? host_hostname() : (spec.hostname.empty() ? rec.id.substr(0, 12) : spec.hostname);
    BERTH_TRY_VOID(write_sandbox_files(rec.dir, spec, hostname, host_net));
    if (!rec.shm_dir.empty()) {
      BERTH_TRY_VOID(make_dirs(rec.shm_dir, 0755));
      std::string opts = "mode=1777,size=" + std::to_string(options.shm_size_bytes);
      if (::mount("shm", rec.shm_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts.c_str()) != 0)
        return sys_fail("mount the pod's shm on " + rec.shm_dir);
    }
    linux_ns::PinRequest pin;
    pin.net = !host_net;
    pin.ipc = !host_ipc;
    pin.uts = !host_net;
    pin.hostname = host_net ? "" : hostname;
    for (auto& [name, value] : spec.sysctls) {
      if (is_ipc_sysctl(name)) pin.ipc_sysctls[name] = value;
      else pin.net_sysctls[name] = value;
    }
    if (pin.net || pin.ipc || pin.uts) BERTH_TRY(linux_ns::pin_new_namespaces(ns_dir, pin));
    crash_point("run_pod.after_namespaces");
    if (!rec.pid_ns_path.empty()) {
      auto holder = BERTH_TRY(linux_ns::start_pid_namespace_holder(ns_dir, options.shim_binary, {"pause"}));
      rec.pid_holder = holder.pid;
      rec.pid_holder_start = holder.start_time;
      std::lock_guard g(records_mu);
      BERTH_TRY_VOID(records->update_pod(rec));
    }
    if (rec.cgroup_owned) {
      auto cg = BERTH_TRY(cgroups::CgroupManager::create(layout, rec.cgroup_path));
      (void)cg;
    }
    if (!host_net) {
      auto result = BERTH_TRY(cni->add(attachment_for(rec), *net_config));
      rec.ips = result.pod_ips();
      rec.cni_result = result.raw.dump();
      crash_point("run_pod.after_cni_add");
    }
    rec.phase = PodPhase::ready;
    std::lock_guard g(records_mu);
    return records->update_pod(rec);
  }();
  if (!made) {
    auto undone = teardown_pod(rec, false);
    if (!undone) {
      log::warn("pod " + rec.id + ": undo after a failed start: " + undone.error().message);
      // The row stays (phase creating) so the next start retries the cleanup.
      return std::unexpected(made.error());
    }
    std::lock_guard g(records_mu);
    (void)records->delete_pod(rec.id);
    return std::unexpected(made.error());
  }
  emit(EventType::container_created, rec.id, rec.id);
  emit(EventType::container_started, rec.id, rec.id);
  return rec.id;
}

Result<> Containerizer::Impl::teardown_pod(PodRecord& rec, bool keep_dir) {
  if (!rec.netns_path.empty() || rec.phase == PodPhase::creating) {
    Result<> del;
    for (int attempt = 0; attempt < 3; ++attempt) {
      del = cni->del(attachment_for(rec), nullptr);
      if (del) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    }
    if (!del) {
      // Bounded: the namespace goes anyway (its end of the veth with it); the cache
      // stays, and each daemon start retries DEL for cache entries without a pod.
      log::warn("pod " + rec.id + ": CNI DEL failed, removing the network namespace anyway: " + del.error().message);
      report.push_back("pod " + rec.id + ": CNI DEL failed (" + del.error().message + "); retried at next start");
    }
  }
  if (rec.pid_holder > 0) {
    (void)linux_ns::stop_pid_namespace_holder(rec.pid_holder, rec.pid_holder_start);
    rec.pid_holder = 0;
  }
  BERTH_TRY_VOID(linux_ns::release_pinned_namespaces(rec.dir + "/ns"));
  if (!rec.shm_dir.empty() && ::umount2(rec.shm_dir.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return sys_fail("unmount " + rec.shm_dir);
  if (keep_dir) return {};
  if (rec.cgroup_owned) {
    auto cg = cgroups::CgroupManager::open(layout, rec.cgroup_path);
    BERTH_TRY_VOID(cg.destroy());
  }
  return remove_tree(rec.dir);
}

Result<> Containerizer::Impl::stop_pod(const std::string& id) {
  auto lock = op_lock(id);
  std::lock_guard op(*lock);
  auto rec = BERTH_TRY(load_pod(id));
  if (!rec) return fail(ENOENT, "pod sandbox " + id + " not found");
  // Every container of the pod is killed first: CRI stops are not graceful here,
  // kubelet has already given them their grace period.
  std::vector<ContainerRecord> mine;
  {
    std::lock_guard g(records_mu);
    for (auto& c : BERTH_TRY(records->containers()))
      if (c.pod_id == id) mine.push_back(c);
  }
  for (auto& c : mine) BERTH_TRY_VOID(stop_container(c.id, std::chrono::seconds(0)));
  crash_point("stop_pod.after_containers");
  bool was_ready = rec->phase == PodPhase::ready;
  BERTH_TRY_VOID(teardown_pod(*rec, true));
  rec->phase = PodPhase::notready;
  {
    std::lock_guard g(records_mu);
    BERTH_TRY_VOID(records->update_pod(*rec));
  }
  if (was_ready) emit(EventType::container_stopped, id, id);
  return {};
}

Result<> Containerizer::Impl::remove_pod(const std::string& id) {
  auto rec = BERTH_TRY(load_pod(id));
  if (!rec) return {};  // removal is idempotent
  if (rec->phase == PodPhase::ready) BERTH_TRY_VOID(stop_pod(id));
  auto lock = op_lock(id);
  std::lock_guard op(*lock);
  std::vector<std::string> mine;
  {
    std::lock_guard g(records_mu);
    for (auto& c : BERTH_TRY(records->containers()))
      if (c.pod_id == id) mine.push_back(c.id);
    rec = BERTH_TRY(records->pod(id));
  }
  if (!rec) return {};
  for (auto& cid : mine) BERTH_TRY_VOID(remove_container(cid));
  BERTH_TRY_VOID(teardown_pod(*rec, false));
  {
    std::lock_guard g(records_mu);
    BERTH_TRY_VOID(records->delete_pod(id));
  }
  emit(EventType::container_deleted, id, id);
  return {};
}

}  // namespace berth::pod

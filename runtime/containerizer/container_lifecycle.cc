// CreateContainer to RemoveContainer. A container is an overlay rootfs on a
// snapshot, an OCI bundle, and a berth-shim that runs the launcher's create and
// then holds the container's stdio, log and exit status.
#include <signal.h>
#include <sys/mount.h>

#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/log.h"
#include "isolators/cgroups/cgroups.h"
#include "runtime/containerizer/container_spec_builder.h"
#include "runtime/containerizer/containerizer_impl.h"
#include "runtime/containerizer/resources_conversion.h"
#include "runtime/linux/container.h"
#include "runtime/shim/shim_client.h"
#include "runtime/shim/shim_protocol.h"

namespace berth::pod {

namespace {

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

// Under a systemd slice the launcher wants "slice:prefix:name"; under a cgroupfs
// parent, a plain child path.
std::string container_cgroups_path(const std::string& pod_cgroup, const std::string& id) {
  if (pod_cgroup.ends_with(".slice")) return pod_cgroup + ":berth:" + id;
  return pod_cgroup + "/" + id;
}

SandboxRuntimeInfo sandbox_info(const PodRecord& pod) {
  SandboxRuntimeInfo info;
  info.id = pod.id;
  info.netns_path = pod.netns_path;
  info.ipc_ns_path = pod.ipc_ns_path;
  info.uts_ns_path = pod.uts_ns_path;
  info.pid_ns_path = pod.pid_ns_path;
  info.hostname = read_file(pod.dir + "/hostname").value_or("");
  while (!info.hostname.empty() && info.hostname.back() == '\n') info.hostname.pop_back();
  info.hostname_file = pod.dir + "/hostname";
  info.hosts_file = pod.dir + "/hosts";
  info.resolv_conf_file = pod.dir + "/resolv.conf";
  info.shm_dir = pod.shm_dir;
  return info;
}

std::string exit_reason(const ExitState& e) {
  if (e.oom_killed) return "OOMKilled";
  return e.exit_code == 0 ? "Completed" : "Error";
}

}  // namespace

Result<std::string> Containerizer::Impl::container_cgroup(const ContainerRecord& rec) const {
  return cgroups::resolve_path(rec.cgroup_path, rec.id);
}

Result<std::string> Containerizer::Impl::create_container(const std::string& pod_id, const ContainerSpec& spec) {
  if (spec.name.empty()) return invalid("container metadata needs a name");
  if (spec.image.empty()) return invalid("container config names no image");
  auto pod_lock = op_lock(pod_id);
  std::lock_guard pod_op(*pod_lock);
  auto pod = BERTH_TRY(load_pod(pod_id));
  if (!pod) return fail(ENOENT, "pod sandbox " + pod_id + " not found");
  if (pod->phase != PodPhase::ready) return fail(EBUSY, "pod sandbox " + pod_id + " is not ready");
  auto image = images->get(spec.image);
  if (!image) {
    if (image.error().code == ENOENT) return fail(ENOENT, "image " + spec.image + " not found: pull it first");
    return std::unexpected(image.error().wrap("look up image " + spec.image));
  }

  ContainerRecord rec;
  rec.id = random_id();
  rec.pod_id = pod_id;
  rec.spec = spec;
  rec.phase = ContainerPhase::creating;
  rec.created_at_ns = now_ns();
  rec.image_ref = spec.image;
  rec.image_id = image->id;
  rec.snapshot_key = "container-" + rec.id;
  if (!pod->spec.log_directory.empty() && !spec.log_path.empty())
    rec.log_path = pod->spec.log_directory + "/" + spec.log_path;
  rec.cgroup_path = container_cgroups_path(pod->cgroup_path, rec.id);
  auto lock = op_lock(rec.id);
  std::lock_guard op(*lock);

  // The target of a TARGET pid namespace must be a live container of this pod.
  std::string target_pid_ns;
  if (spec.security.namespaces.pid == NamespaceMode::target) {
    auto target = BERTH_TRY(load_container(spec.security.namespaces.target_id));
    if (!target || target->pod_id != pod_id)
      return fail(ENOENT, "target container " + spec.security.namespaces.target_id + " not found in pod " + pod_id);
    auto st = read_shim_state(shim_dir(target->id));
    if (!st || target->phase == ContainerPhase::exited)
      return fail(EBUSY, "target container " + target->id + " is not running");
    target_pid_ns = "/proc/" + std::to_string(st->container_pid) + "/ns/pid";
  }

  {
    std::lock_guard g(records_mu);
    BERTH_TRY_VOID(records->insert_container(rec));
  }
  auto made = [&]() -> Result<> {
    BERTH_TRY_VOID(make_dirs(rootfs_dir(rec.id), 0700));
    auto mounts = BERTH_TRY(images->snapshotter().prepare(rec.snapshot_key, image->chain_id));
    BERTH_TRY_VOID(storage::mount_all(mounts, rootfs_dir(rec.id)));
    crash_point("create_container.after_rootfs");

    auto info = sandbox_info(*pod);
    ContainerSpecInputs in;
    in.pod = &pod->spec;
    in.sandbox = &info;
    in.container = &spec;
    in.image = &image->config.defaults;
    in.image_name = spec.image;
    in.container_id = rec.id;
    in.rootfs = rootfs_dir(rec.id);
    in.cgroups_path = rec.cgroup_path;
    in.target_pid_ns_path = target_pid_ns;
    in.cgroup_namespace = layout.mode == cgroups::Mode::v2;
    in.restrict_oom_score_adj = options.restrict_oom_score_adj;
    auto built = BERTH_TRY(build_container_spec(in));
    rec.stop_signal = built.stop_signal;
    BERTH_TRY_VOID(write_file_atomic(container_dir(rec.id) + "/config.json", built.config.dump(), 0600));
    if (!rec.log_path.empty()) BERTH_TRY_VOID(make_dirs(parent_dir(rec.log_path), 0755));

    ShimLaunch launch;
    launch.shim_binary = options.shim_binary;
    launch.id = rec.id;
    launch.bundle = container_dir(rec.id);
    launch.state_dir = shim_dir(rec.id);
    launch.runtime_binary = options.runtime_binary;
    launch.runtime_root = runtime_root();
    launch.log_path = rec.log_path;
    launch.tty = spec.tty;
    launch.stdin_open = spec.stdin_open;
    launch.stdin_once = spec.stdin_once;
    BERTH_TRY(launch_shim(launch));
    crash_point("create_container.after_shim");
    auto st = BERTH_TRY(read_shim_state(shim_dir(rec.id)));
    rec.phase = ContainerPhase::created;
    {
      std::lock_guard g(records_mu);
      BERTH_TRY_VOID(records->update_container(rec));
    }
    return monitor->watch(rec.id, st.shim_pid, st.shim_start_time);
  }();
  if (!made) {
    auto undone = teardown_container(rec);
    std::lock_guard g(records_mu);
    if (undone) (void)records->delete_container(rec.id);
    else log::warn("container " + rec.id + ": undo after a failed create: " + undone.error().message);
    return std::unexpected(made.error());
  }
  emit(EventType::container_created, rec.id, pod_id);
  return rec.id;
}

Result<> Containerizer::Impl::start_container(const std::string& id) {
  auto lock = op_lock(id);
  std::lock_guard op(*lock);
  auto rec = BERTH_TRY(load_container(id));
  if (!rec) return fail(ENOENT, "container " + id + " not found");
  if (rec->phase != ContainerPhase::created)
    return fail(EBUSY, "container " + id + " is " + phase_name(rec->phase) + ", not created");
  auto c = BERTH_TRY(Container::load(runtime_root(), id));
  {
    std::lock_guard g(records_mu);
    starting[id] = false;
  }
  // Taken before the start signal: a brief container may have exited (and its
  // exit time been recorded) by the time start returns.
  int64_t start_ns = now_ns();
  auto started = c.start();
  std::lock_guard g(records_mu);
  bool exited_meanwhile = starting[id];
  starting.erase(id);
  auto stopped_event = [&] {
    if (exited_meanwhile) emit(EventType::container_stopped, id, rec->pod_id);
  };
  if (!started) {
    stopped_event();
    return std::unexpected(started.error().wrap("start container " + id));
  }
  Result<> recorded = [&]() -> Result<> {
    auto now = BERTH_TRY(records->container(id));
    if (!now) return {};
    if (now->phase == ContainerPhase::created) {
      now->phase = ContainerPhase::running;
    } else if (now->started_at_ns != 0) {
      return {};
    }
    // Otherwise it already ran and exited before we got here; it did start.
    now->started_at_ns = start_ns;
    return records->update_container(*now);
  }();
  emit(EventType::container_started, id, rec->pod_id);
  stopped_event();
  return recorded;
}

Result<> Containerizer::Impl::kill_container(const std::string& id, int sig, bool all) {
  auto c = Container::load(runtime_root(), id);
  if (!c) return c.error().code == ENOENT ? Result<>{} : Result<>(std::unexpected(c.error()));
  auto r = c->kill(sig, all);
  if (!r && r.error().code != ESRCH && c->status() != Status::stopped) return r;
  return {};
}

bool Containerizer::Impl::wait_exited(const std::string& id, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock g(records_mu);
  for (;;) {
    auto rec = records->container(id);
    if (!rec || !*rec || (*rec)->phase == ContainerPhase::exited) return true;
    if (exit_cv.wait_until(g, deadline) == std::cv_status::timeout) {
      rec = records->container(id);
      return !rec || !*rec || (*rec)->phase == ContainerPhase::exited;
    }
  }
}

Result<> Containerizer::Impl::stop_container(const std::string& id, std::chrono::seconds timeout) {
  auto lock = op_lock(id);
  std::lock_guard op(*lock);
  auto rec = BERTH_TRY(load_container(id));
  if (!rec) return fail(ENOENT, "container " + id + " not found");
  if (rec->phase == ContainerPhase::exited) return {};
  if (timeout.count() > 0 && rec->phase == ContainerPhase::running) {
    BERTH_TRY_VOID(kill_container(id, rec->stop_signal, false));
    crash_point("stop_container.after_signal");
    if (wait_exited(id, timeout)) return {};
  }
  BERTH_TRY_VOID(kill_container(id, SIGKILL, true));
  if (!wait_exited(id, std::chrono::seconds(30)))
    return fail(ETIMEDOUT, "container " + id + " did not exit within 30s of SIGKILL");
  return {};
}

void Containerizer::Impl::on_shim_exit(const std::string& id) {
  {
    std::lock_guard g(records_mu);
    auto rec = records->container(id);
    if (rec && *rec && (*rec)->phase != ContainerPhase::exited && (*rec)->phase != ContainerPhase::creating) {
      auto& r = **rec;
      auto exit = read_exit_state(shim_dir(id));
      if (exit && *exit) {
        r.exit_code = (*exit)->exit_code;
        r.finished_at_ns = (*exit)->exited_at_ns;
        r.reason = exit_reason(**exit);
      } else {
        // The shim died without recording an exit (killed from outside): the status
        // is gone, and saying so beats inventing one.
        r.exit_code = 255;
        r.finished_at_ns = now_ns();
        r.reason = "Unknown";
        r.message = "berth-shim ended without recording the container's exit status";
        (void)kill_container(id, SIGKILL, true);
      }
      r.phase = ContainerPhase::exited;
      if (auto u = records->update_container(r); !u) log::error("record exit of " + id + ": " + u.error().message);
      exit_cv.notify_all();
      // Mid-start, the started event has not gone out yet; start_container sends
      // this one after it.
      if (auto s = starting.find(id); s != starting.end()) s->second = true;
      else emit(EventType::container_stopped, id, r.pod_id);
      return;
    }
  }
  exit_cv.notify_all();
}

Result<> Containerizer::Impl::teardown_container(const ContainerRecord& rec) {
  monitor->forget(rec.id);
  if (auto c = Container::load(runtime_root(), rec.id)) BERTH_TRY_VOID(c->remove(true));
  std::string rootfs = rootfs_dir(rec.id);
  if (::umount2(rootfs.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return sys_fail("unmount " + rootfs);
  BERTH_TRY_VOID(images->snapshotter().remove(rec.snapshot_key));
  return remove_tree(container_dir(rec.id));
}

Result<> Containerizer::Impl::remove_container(const std::string& id) {
  auto lock = op_lock(id);
  std::lock_guard op(*lock);
  auto rec = BERTH_TRY(load_container(id));
  if (!rec) return {};  // removal is idempotent
  if (rec->phase == ContainerPhase::running || rec->phase == ContainerPhase::created) {
    BERTH_TRY_VOID(kill_container(id, SIGKILL, true));
    if (!wait_exited(id, std::chrono::seconds(30))) return fail(ETIMEDOUT, "container " + id + " did not exit");
  }
  BERTH_TRY_VOID(teardown_container(*rec));
  {
    std::lock_guard g(records_mu);
    BERTH_TRY_VOID(records->delete_container(id));
  }
  emit(EventType::container_deleted, id, rec->pod_id);
  return {};
}

Result<ContainerStatus> Containerizer::Impl::status_of(const ContainerRecord& r) {
  ContainerStatus s;
  s.id = r.id;
  s.pod_id = r.pod_id;
  s.spec = r.spec;
  s.image_ref = r.image_ref;
  s.image_id = r.image_id;
  switch (r.phase) {
    case ContainerPhase::creating: s.state = ContainerState::unknown; break;
    case ContainerPhase::created: s.state = ContainerState::created; break;
    case ContainerPhase::running: s.state = ContainerState::running; break;
    case ContainerPhase::exited: s.state = ContainerState::exited; break;
  }
  s.created_at_ns = r.created_at_ns;
  s.started_at_ns = r.started_at_ns;
  s.finished_at_ns = r.finished_at_ns;
  s.exit_code = r.exit_code;
  s.reason = r.reason;
  s.message = r.message;
  s.log_path = r.log_path;
  s.cgroup_path = container_cgroup(r).value_or("");
  if (r.phase == ContainerPhase::running || r.phase == ContainerPhase::created)
    if (auto st = read_shim_state(shim_dir(r.id))) s.pid = st->container_pid;
  return s;
}

}  // namespace berth::pod

// What berthd does at start: finish or undo what a killed daemon left half-done,
// re-adopt every shim, record exits that happened while it was down, and sweep
// kernel objects that no record names. A record that cannot be read is reported
// and skipped; recovery never stops the daemon from starting.
#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <set>

#include "common/file_util.h"
#include "common/log.h"
#include "runtime/containerizer/containerizer_impl.h"
#include "runtime/linux/container.h"
#include "runtime/linux/pinned_namespaces.h"
#include "runtime/shim/shim_client.h"

namespace berth::pod {

namespace {

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// SIGKILLs every process in the pid namespace pinned at `pin` (its holder first of
// all, whose end takes the rest with it). The holder's pid lived only in the lost
// record, so the namespace is found by its nsfs inode.
void kill_pid_namespace(const std::string& pin) {
  struct stat ns;
  if (::stat(pin.c_str(), &ns) != 0) return;
  for (auto& entry : subdirs("/proc")) {
    pid_t pid = std::atoi(entry.c_str());
    struct stat st;
    if (pid > 0 && ::stat(("/proc/" + entry + "/ns/pid").c_str(), &st) == 0 && st.st_dev == ns.st_dev &&
        st.st_ino == ns.st_ino)
      ::kill(pid, SIGKILL);
  }
}

}  // namespace

void Containerizer::Impl::recover() {
  auto note = [this](std::string line) {
    log::warn("recovery: " + line);
    report.push_back(std::move(line));
  };

  std::vector<RuntimeRecords::Broken> broken;
  auto pods = records->pods(&broken);
  if (!pods) {
    note("cannot read pods: " + pods.error().message);
    pods = std::vector<PodRecord>{};
  }
  for (auto& b : broken) note("skipped pod " + b.id + ": " + b.reason);
  std::set<std::string> pod_ids;
  for (auto& b : broken) pod_ids.insert(b.id);

  for (auto& pod : *pods) {
    if (pod.phase == PodPhase::creating) {
      if (auto r = teardown_pod(pod, false); !r) {
        note("pod " + pod.id + ": undo of an unfinished RunPodSandbox failed: " + r.error().message);
        pod_ids.insert(pod.id);
        continue;
      }
      (void)records->delete_pod(pod.id);
      note("pod " + pod.id + ": RunPodSandbox did not finish; rolled back");
      continue;
    }
    pod_ids.insert(pod.id);
    if (pod.phase == PodPhase::ready && !pod.netns_path.empty() && !exists(pod.netns_path)) {
      // The pins are gone (the node rebooted): the pod cannot be ready again.
      (void)teardown_pod(pod, true);
      pod.phase = PodPhase::notready;
      (void)records->update_pod(pod);
      note("pod " + pod.id + ": network namespace is gone; marked not ready");
    }
  }

  broken.clear();
  auto containers = records->containers(&broken);
  if (!containers) {
    note("cannot read containers: " + containers.error().message);
    containers = std::vector<ContainerRecord>{};
  }
  std::set<std::string> container_ids;
  for (auto& b : broken) {
    note("skipped container " + b.id + ": " + b.reason);
    container_ids.insert(b.id);
  }
  for (auto& c : *containers) {
    if (c.phase == ContainerPhase::creating || !pod_ids.contains(c.pod_id)) {
      if (auto r = teardown_container(c); !r) {
        note("container " + c.id + ": undo of an unfinished CreateContainer failed: " + r.error().message);
        container_ids.insert(c.id);
        continue;
      }
      (void)records->delete_container(c.id);
      note("container " + c.id + ": CreateContainer did not finish; rolled back");
      continue;
    }
    container_ids.insert(c.id);
    if (c.phase == ContainerPhase::exited) continue;
    if (c.phase == ContainerPhase::created) {
      // StartContainer may have opened the fifo just before the daemon died.
      auto lc = Container::load(runtime_root(), c.id);
      if (lc && lc->status() == Status::running) {
        c.phase = ContainerPhase::running;
        c.started_at_ns = now_ns();
        (void)records->update_container(c);
      }
    }
    auto shim_state = read_shim_state(shim_dir(c.id));
    if (!shim_state) {
      on_shim_exit(c.id);
      continue;
    }
    if (auto w = monitor->watch(c.id, shim_state->shim_pid, shim_state->shim_start_time); !w)
      note("container " + c.id + ": " + w.error().message);
  }

  // Sweep: what exists on the node but has no record.
  std::vector<std::string> orphan_pods;
  for (auto& id : subdirs(pods_dir())) {
    if (pod_ids.contains(id)) continue;
    orphan_pods.push_back(id);
    std::string dir = pods_dir() + "/" + id;
    kill_pid_namespace(dir + "/ns/pid");
    (void)linux_ns::release_pinned_namespaces(dir + "/ns");
    ::umount2((dir + "/shm").c_str(), MNT_DETACH);
    (void)remove_tree(dir);
    note("removed orphan pod dir " + id);
  }
  for (auto& id : subdirs(containers_dir())) {
    if (container_ids.contains(id)) continue;
    ContainerRecord orphan;
    orphan.id = id;
    orphan.snapshot_key = "container-" + id;
    if (auto r = teardown_container(orphan); !r) note("orphan container " + id + ": " + r.error().message);
    else note("removed orphan container " + id);
  }
  for (auto& id : Container::list(runtime_root())) {
    if (container_ids.contains(id)) continue;
    if (auto c = Container::load(runtime_root(), id)) (void)c->remove(true);
  }
  // The cgroups berth made for those pods (named after them, under its root), now
  // that the sweep above has emptied them of containers.
  for (auto& id : orphan_pods) {
    auto cg = cgroups::CgroupManager::open(layout, options.cgroup_root + "/" + id);
    if (!cg.exists()) continue;
    if (auto r = cg.destroy(); !r) note("orphan pod cgroup " + id + ": " + r.error().message);
  }
  if (auto cached = cni->list_cached()) {
    for (auto& entry : *cached) {
      if (pod_ids.contains(entry.attachment.container_id)) continue;
      if (auto r = cni->del(entry.attachment, nullptr); !r)
        note("CNI attachment of removed pod " + entry.attachment.container_id + ": DEL failed: " + r.error().message);
      else
        note("released CNI attachment of removed pod " + entry.attachment.container_id);
    }
  }
}

}  // namespace berth::pod

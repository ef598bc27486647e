#include "runtime/containerizer/containerizer.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "common/file_util.h"
#include "common/log.h"
#include "isolators/cgroups/cgroup_stats.h"
#include "runtime/containerizer/container_spec_builder.h"
#include "runtime/containerizer/containerizer_impl.h"
#include "runtime/containerizer/resources_conversion.h"
#include "runtime/linux/container.h"
#include "runtime/shim/shim_client.h"

namespace berth::pod {

std::string random_id() {
  static thread_local std::random_device rd;
  std::string out;
  char buf[9];
  for (int i = 0; i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%08x", rd());
    out += buf;
  }
  return out;
}

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::shared_ptr<std::mutex> Containerizer::Impl::op_lock(const std::string& id) {
  std::lock_guard g(locks_mu);
  auto& weak = op_locks[id];
  auto lock = weak.lock();
  if (!lock) {
    lock = std::make_shared<std::mutex>();
    weak = lock;
  }
  // Drop entries nobody holds any more, so the map does not grow with churn.
  if (op_locks.size() > 256)
    std::erase_if(op_locks, [](auto& kv) { return kv.second.expired(); });
  return lock;
}

Result<std::optional<PodRecord>> Containerizer::Impl::load_pod(const std::string& id) {
  std::lock_guard g(records_mu);
  return records->pod(id);
}

Result<std::optional<ContainerRecord>> Containerizer::Impl::load_container(const std::string& id) {
  std::lock_guard g(records_mu);
  return records->container(id);
}

void Containerizer::Impl::crash_point(const char* name) const {
  for (auto& p : options.crash_points)
    if (p == name) {
      log::warn(std::string("crash point ") + name + ": killing berthd");
      ::kill(::getpid(), SIGKILL);
    }
}

void Containerizer::Impl::emit(EventType type, const std::string& container_id, const std::string& pod_id) {
  Event e{type, container_id, pod_id, now_ns()};
  std::lock_guard g(events_mu);
  for (auto& [handle, sink] : sinks) sink(e);
}

Result<std::unique_ptr<Containerizer>> Containerizer::open(ContainerizerOptions options,
                                                           std::shared_ptr<storage::ImageStore> images) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->images = std::move(images);
  for (auto& dir : {impl->pods_dir(), impl->containers_dir(), impl->runtime_root()})
    BERTH_TRY_VOID(make_dirs(dir, 0711));
  impl->records = std::make_unique<RuntimeRecords>(BERTH_TRY(RuntimeRecords::open(impl->images->database())));
  impl->layout = BERTH_TRY(cgroups::Layout::detect());
  impl->cni = std::make_unique<network::CniInvoker>(impl->options.cni_bin_dirs, impl->cni_cache_dir(),
                                                    impl->options.cni_timeout);
  Impl* raw = impl.get();
  impl->monitor = std::make_unique<ExitMonitor>([raw](const std::string& id) { raw->on_shim_exit(id); });
  BERTH_TRY_VOID(impl->monitor->start());
  impl->recover();
  return std::unique_ptr<Containerizer>(new Containerizer(std::move(impl)));
}

Containerizer::Containerizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Containerizer::~Containerizer() {
  // The monitor's thread calls into impl_: stop it before anything else goes.
  if (impl_) impl_->monitor.reset();
}

const std::vector<std::string>& Containerizer::recovery_report() const { return impl_->report; }

Result<> Containerizer::network_ready() const {
  Error last{ENOENT, "no CNI config dir configured"};
  for (auto& dir : impl_->options.cni_conf_dirs) {
    auto c = network::load_default_network(dir);
    if (c) return {};
    last = c.error();
    if (last.code != ENOENT) break;
  }
  return std::unexpected(last);
}

void Containerizer::set_pod_cidr(const std::string& cidr) {
  std::lock_guard g(impl_->records_mu);
  impl_->pod_cidr = cidr;
}

Result<std::string> Containerizer::run_pod(const PodSandboxSpec& spec) { return impl_->run_pod(spec); }
Result<> Containerizer::stop_pod(const std::string& id) { return impl_->stop_pod(id); }
Result<> Containerizer::remove_pod(const std::string& id) { return impl_->remove_pod(id); }

namespace {

PodStatus pod_status_of(const PodRecord& r) {
  PodStatus s;
  s.id = r.id;
  s.spec = r.spec;
  s.state = r.phase == PodPhase::ready ? PodState::ready : PodState::notready;
  s.created_at_ns = r.created_at_ns;
  s.ips = r.ips;
  s.netns_path = r.netns_path;
  s.cgroup_path = r.cgroup_path;
  s.cni_result_json = r.cni_result;
  s.pid_holder = r.pid_holder;
  return s;
}

CgroupStats to_stats(const cgroups::Stats& s) {
  CgroupStats out;
  out.timestamp_ns = now_ns();
  out.has_cpu = s.cpu_usage_ns.has_value();
  out.cpu_usage_ns = s.cpu_usage_ns.value_or(0);
  out.has_memory = s.memory_usage_bytes.has_value();
  out.memory_usage_bytes = s.memory_usage_bytes.value_or(0);
  out.memory_working_set_bytes = s.memory_working_set_bytes.value_or(0);
  out.memory_rss_bytes = s.memory_rss_bytes.value_or(0);
  if (s.memory_limit_bytes)
    out.memory_available_bytes = *s.memory_limit_bytes - std::min(*s.memory_limit_bytes, out.memory_working_set_bytes);
  out.page_faults = s.page_faults;
  out.major_page_faults = s.major_page_faults;
  out.pids = s.pids.value_or(0);
  return out;
}

}  // namespace

Result<PodStatus> Containerizer::pod_status(const std::string& id) {
  std::lock_guard g(impl_->records_mu);
  auto rec = BERTH_TRY(impl_->records->pod(id));
  if (!rec || rec->phase == PodPhase::creating) return fail(ENOENT, "pod sandbox " + id + " not found");
  return pod_status_of(*rec);
}

std::vector<PodStatus> Containerizer::list_pods() {
  std::lock_guard g(impl_->records_mu);
  std::vector<PodStatus> out;
  if (auto pods = impl_->records->pods())
    for (auto& r : *pods)
      if (r.phase != PodPhase::creating) out.push_back(pod_status_of(r));
  return out;
}

Result<ContainerStats> Containerizer::container_stats(const std::string& id) {
  auto rec = BERTH_TRY(impl_->load_container(id));
  if (!rec || rec->phase == ContainerPhase::creating) return fail(ENOENT, "container " + id + " not found");
  ContainerStats s;
  s.id = id;
  auto path = BERTH_TRY(impl_->container_cgroup(*rec));
  auto cg = cgroups::CgroupManager::open(impl_->layout, path);
  if (auto st = cgroups::read_stats(cg)) s.cgroup = to_stats(*st);
  else s.cgroup.timestamp_ns = now_ns();
  if (auto usage = impl_->images->snapshotter().usage(rec->snapshot_key)) {
    s.writable_layer_bytes = static_cast<uint64_t>(usage->bytes);
    s.writable_layer_inodes = static_cast<uint64_t>(usage->inodes);
  }
  s.filesystem_mountpoint = impl_->images->snapshotter().root();
  return s;
}

Result<PodStats> Containerizer::pod_stats(const std::string& id) {
  auto pod = BERTH_TRY(pod_status(id));
  PodStats s;
  s.id = id;
  auto path = BERTH_TRY(cgroups::resolve_path(pod.cgroup_path, id));
  if (auto st = cgroups::read_stats(cgroups::CgroupManager::open(impl_->layout, path))) s.cgroup = to_stats(*st);
  else s.cgroup.timestamp_ns = now_ns();
  for (auto& c : list_containers())
    if (c.pod_id == id && c.state != ContainerState::unknown)
      if (auto cs = container_stats(c.id)) s.containers.push_back(std::move(*cs));
  return s;
}

Result<std::string> Containerizer::create_container(const std::string& pod_id, const ContainerSpec& spec) {
  return impl_->create_container(pod_id, spec);
}
Result<> Containerizer::start_container(const std::string& id) { return impl_->start_container(id); }
Result<> Containerizer::stop_container(const std::string& id, std::chrono::seconds timeout) {
  return impl_->stop_container(id, timeout);
}
Result<> Containerizer::remove_container(const std::string& id) { return impl_->remove_container(id); }

Result<ContainerStatus> Containerizer::container_status(const std::string& id) {
  auto rec = BERTH_TRY(impl_->load_container(id));
  if (!rec || rec->phase == ContainerPhase::creating) return fail(ENOENT, "container " + id + " not found");
  return impl_->status_of(*rec);
}

std::vector<ContainerStatus> Containerizer::list_containers() {
  std::vector<ContainerRecord> recs;
  {
    std::lock_guard g(impl_->records_mu);
    if (auto all = impl_->records->containers()) recs = std::move(*all);
  }
  std::vector<ContainerStatus> out;
  for (auto& r : recs)
    if (r.phase != ContainerPhase::creating)
      if (auto s = impl_->status_of(r)) out.push_back(std::move(*s));
  return out;
}

Result<> Containerizer::update_container_resources(const std::string& id, const Resources& resources) {
  auto lock = impl_->op_lock(id);
  std::lock_guard op(*lock);
  auto rec = BERTH_TRY(impl_->load_container(id));
  if (!rec || rec->phase == ContainerPhase::creating) return fail(ENOENT, "container " + id + " not found");
  if (rec->phase == ContainerPhase::exited) return fail(EBUSY, "container " + id + " has exited");
  auto c = BERTH_TRY(Container::load(impl_->runtime_root(), id));
  auto oci = to_oci_resources(resources);
  // No swap unless asked, as at create: without this, v1 refuses to raise the limit
  // above the memory+swap limit create set.
  if (oci.memory && resources.memory_limit_in_bytes > 0 && resources.memory_swap_limit_in_bytes == 0 &&
      memory_swap_controller_available())
    oci.memory->swap = resources.memory_limit_in_bytes;
  BERTH_TRY_VOID(c.update(oci));
  std::lock_guard g(impl_->records_mu);
  auto now = BERTH_TRY(impl_->records->container(id));
  if (!now) return {};
  now->spec.resources = resources;
  return impl_->records->update_container(*now);
}

Result<> Containerizer::reopen_container_log(const std::string& id) {
  auto st = BERTH_TRY(container_status(id));
  if (st.state != ContainerState::running) return fail(EBUSY, "container " + id + " is not running");
  auto reply = BERTH_TRY(shim_request(impl_->shim_dir(id), "reopen", std::chrono::seconds(10)));
  if (reply != "ok") return fail(EIO, "reopen log of " + id + ": " + reply);
  return {};
}

uint64_t Containerizer::subscribe(EventSink sink) {
  std::lock_guard g(impl_->events_mu);
  uint64_t handle = impl_->next_sink++;
  impl_->sinks[handle] = std::move(sink);
  return handle;
}

void Containerizer::unsubscribe(uint64_t handle) {
  std::lock_guard g(impl_->events_mu);
  impl_->sinks.erase(handle);
}

}  // namespace berth::pod

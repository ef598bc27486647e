#include "runtime/containerizer/runtime_records.h"

#include <nlohmann/json.hpp>

#include "runtime/containerizer/pod_spec_json.h"
#include "storage/database.h"

namespace berth::pod {

namespace {

// Identity columns carry the uniqueness rules; everything else lives in one JSON
// document per row, so adding a field never needs a schema migration.
constexpr std::string_view kSchema = R"(
CREATE TABLE pods (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL, namespace TEXT NOT NULL, uid TEXT NOT NULL, attempt INTEGER NOT NULL,
  phase TEXT NOT NULL,
  data TEXT NOT NULL,
  UNIQUE (name, namespace, uid, attempt));
CREATE TABLE containers (
  id TEXT PRIMARY KEY,
  pod_id TEXT NOT NULL,
  name TEXT NOT NULL, attempt INTEGER NOT NULL,
  phase TEXT NOT NULL,
  data TEXT NOT NULL,
  UNIQUE (pod_id, name, attempt));
CREATE INDEX containers_by_pod ON containers (pod_id);
)";

template <typename E>
Result<E> phase_from(const std::string& text, std::initializer_list<E> all) {
  for (E e : all)
    if (text == phase_name(e)) return e;
  return invalid("unknown phase '" + text + "'");
}

std::string pod_data(const PodRecord& r) {
  nlohmann::json j = {{"spec", nlohmann::json::parse(to_json(r.spec))},
                      {"created_at_ns", r.created_at_ns},
                      {"dir", r.dir},
                      {"netns_path", r.netns_path},
                      {"ipc_ns_path", r.ipc_ns_path},
                      {"uts_ns_path", r.uts_ns_path},
                      {"pid_ns_path", r.pid_ns_path},
                      {"shm_dir", r.shm_dir},
                      {"cgroup_path", r.cgroup_path},
                      {"cgroup_owned", r.cgroup_owned},
                      {"pid_holder", r.pid_holder},
                      {"pid_holder_start", r.pid_holder_start},
                      {"cni_result", r.cni_result},
                      {"ips", r.ips}};
  return j.dump();
}

Result<PodRecord> pod_from(const std::string& id, const std::string& phase, const std::string& data) {
  PodRecord r;
  r.id = id;
  r.phase = BERTH_TRY(phase_from(phase, {PodPhase::creating, PodPhase::ready, PodPhase::notready}));
  try {
    auto j = nlohmann::json::parse(data);
    r.spec = BERTH_TRY(pod_spec_from_json(j.at("spec").dump()));
    r.created_at_ns = j.value("created_at_ns", int64_t{0});
    r.dir = j.value("dir", "");
    r.netns_path = j.value("netns_path", "");
    r.ipc_ns_path = j.value("ipc_ns_path", "");
    r.uts_ns_path = j.value("uts_ns_path", "");
    r.pid_ns_path = j.value("pid_ns_path", "");
    r.shm_dir = j.value("shm_dir", "");
    r.cgroup_path = j.value("cgroup_path", "");
    r.cgroup_owned = j.value("cgroup_owned", false);
    r.pid_holder = j.value("pid_holder", 0);
    r.pid_holder_start = j.value("pid_holder_start", 0ull);
    r.cni_result = j.value("cni_result", "");
    r.ips = j.value("ips", std::vector<std::string>{});
  } catch (const std::exception& e) {
    return invalid("pod " + id + ": " + e.what());
  }
  return r;
}

std::string container_data(const ContainerRecord& r) {
  nlohmann::json j = {{"spec", nlohmann::json::parse(to_json(r.spec))},
                      {"created_at_ns", r.created_at_ns},
                      {"started_at_ns", r.started_at_ns},
                      {"finished_at_ns", r.finished_at_ns},
                      {"exit_code", r.exit_code},
                      {"reason", r.reason},
                      {"message", r.message},
                      {"image_ref", r.image_ref},
                      {"image_id", r.image_id},
                      {"snapshot_key", r.snapshot_key},
                      {"log_path", r.log_path},
                      {"cgroup_path", r.cgroup_path},
                      {"stop_signal", r.stop_signal}};
  return j.dump();
}

Result<ContainerRecord> container_from(const std::string& id, const std::string& pod_id, const std::string& phase,
                                       const std::string& data) {
  ContainerRecord r;
  r.id = id;
  r.pod_id = pod_id;
  r.phase = BERTH_TRY(phase_from(
      phase, {ContainerPhase::creating, ContainerPhase::created, ContainerPhase::running, ContainerPhase::exited}));
  try {
    auto j = nlohmann::json::parse(data);
    r.spec = BERTH_TRY(container_spec_from_json(j.at("spec").dump()));
    r.created_at_ns = j.value("created_at_ns", int64_t{0});
    r.started_at_ns = j.value("started_at_ns", int64_t{0});
    r.finished_at_ns = j.value("finished_at_ns", int64_t{0});
    r.exit_code = j.value("exit_code", 0);
    r.reason = j.value("reason", "");
    r.message = j.value("message", "");
    r.image_ref = j.value("image_ref", "");
    r.image_id = j.value("image_id", "");
    r.snapshot_key = j.value("snapshot_key", "");
    r.log_path = j.value("log_path", "");
    r.cgroup_path = j.value("cgroup_path", "");
    r.stop_signal = j.value("stop_signal", 15);
  } catch (const std::exception& e) {
    return invalid("container " + id + ": " + e.what());
  }
  return r;
}

// SQLite reports a UNIQUE violation as a constraint error; callers want EEXIST.
Result<> as_exists(Result<> r, const std::string& what) {
  if (!r && r.error().message.find("UNIQUE") != std::string::npos) return fail(EEXIST, what);
  return r;
}

}  // namespace

const char* phase_name(PodPhase p) {
  switch (p) {
    case PodPhase::creating: return "creating";
    case PodPhase::ready: return "ready";
    case PodPhase::notready: return "notready";
  }
  return "?";
}

const char* phase_name(ContainerPhase p) {
  switch (p) {
    case ContainerPhase::creating: return "creating";
    case ContainerPhase::created: return "created";
    case ContainerPhase::running: return "running";
    case ContainerPhase::exited: return "exited";
  }
  return "?";
}

Result<RuntimeRecords> RuntimeRecords::open(std::shared_ptr<storage::Database> db) {
  BERTH_TRY_VOID(db->ensure_schema("runtime", 1, kSchema));
  return RuntimeRecords(std::move(db));
}

Result<> RuntimeRecords::insert_pod(const PodRecord& r) {
  auto st = BERTH_TRY(db_->prepare(
      "INSERT INTO pods (id, name, namespace, uid, attempt, phase, data) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, r.id).bind(2, r.spec.name).bind(3, r.spec.namespace_).bind(4, r.spec.uid);
  st.bind(5, int64_t{r.spec.attempt}).bind(6, phase_name(r.phase)).bind(7, pod_data(r));
  return as_exists(st.run(), "a pod sandbox named " + r.spec.name + " in namespace " + r.spec.namespace_ +
                                 " with uid " + r.spec.uid + " and attempt " + std::to_string(r.spec.attempt) +
                                 " already exists");
}

Result<> RuntimeRecords::update_pod(const PodRecord& r) {
  auto st = BERTH_TRY(db_->prepare("UPDATE pods SET phase = ?, data = ? WHERE id = ?"));
  st.bind(1, phase_name(r.phase)).bind(2, pod_data(r)).bind(3, r.id);
  return st.run();
}

Result<> RuntimeRecords::delete_pod(const std::string& id) {
  auto st = BERTH_TRY(db_->prepare("DELETE FROM pods WHERE id = ?"));
  st.bind(1, id);
  return st.run();
}

Result<std::optional<PodRecord>> RuntimeRecords::pod(const std::string& id) {
  auto st = BERTH_TRY(db_->prepare("SELECT phase, data FROM pods WHERE id = ?"));
  st.bind(1, id);
  if (!BERTH_TRY(st.step())) return std::optional<PodRecord>{};
  return BERTH_TRY(pod_from(id, st.text(0), st.text(1)));
}

Result<std::vector<PodRecord>> RuntimeRecords::pods(std::vector<Broken>* broken) {
  auto st = BERTH_TRY(db_->prepare("SELECT id, phase, data FROM pods ORDER BY rowid"));
  std::vector<PodRecord> out;
  while (BERTH_TRY(st.step())) {
    auto r = pod_from(st.text(0), st.text(1), st.text(2));
    if (r) out.push_back(std::move(*r));
    else if (broken) broken->push_back({st.text(0), r.error().message});
  }
  return out;
}

Result<> RuntimeRecords::insert_container(const ContainerRecord& r) {
  auto st = BERTH_TRY(
      db_->prepare("INSERT INTO containers (id, pod_id, name, attempt, phase, data) VALUES (?, ?, ?, ?, ?, ?)"));
  st.bind(1, r.id).bind(2, r.pod_id).bind(3, r.spec.name).bind(4, int64_t{r.spec.attempt});
  st.bind(5, phase_name(r.phase)).bind(6, container_data(r));
  return as_exists(st.run(), "pod " + r.pod_id + " already has a container named " + r.spec.name +
                                 " with attempt " + std::to_string(r.spec.attempt));
}

Result<> RuntimeRecords::update_container(const ContainerRecord& r) {
  auto st = BERTH_TRY(db_->prepare("UPDATE containers SET phase = ?, data = ? WHERE id = ?"));
  st.bind(1, phase_name(r.phase)).bind(2, container_data(r)).bind(3, r.id);
  return st.run();
}

Result<> RuntimeRecords::delete_container(const std::string& id) {
  auto st = BERTH_TRY(db_->prepare("DELETE FROM containers WHERE id = ?"));
  st.bind(1, id);
  return st.run();
}

Result<std::optional<ContainerRecord>> RuntimeRecords::container(const std::string& id) {
  auto st = BERTH_TRY(db_->prepare("SELECT pod_id, phase, data FROM containers WHERE id = ?"));
  st.bind(1, id);
  if (!BERTH_TRY(st.step())) return std::optional<ContainerRecord>{};
  return BERTH_TRY(container_from(id, st.text(0), st.text(1), st.text(2)));
}

Result<std::vector<ContainerRecord>> RuntimeRecords::containers(std::vector<Broken>* broken) {
  auto st = BERTH_TRY(db_->prepare("SELECT id, pod_id, phase, data FROM containers ORDER BY rowid"));
  std::vector<ContainerRecord> out;
  while (BERTH_TRY(st.step())) {
    auto r = container_from(st.text(0), st.text(1), st.text(2), st.text(3));
    if (r) out.push_back(std::move(*r));
    else if (broken) broken->push_back({st.text(0), r.error().message});
  }
  return out;
}

}  // namespace berth::pod

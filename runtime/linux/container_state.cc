#include "runtime/linux/container_state.h"

#include <time.h>

#include <nlohmann/json.hpp>

#include "common/file_util.h"

namespace berth {

const char* status_name(Status s) {
  switch (s) {
    case Status::creating: return "creating";
    case Status::created: return "created";
    case Status::running: return "running";
    case Status::paused: return "paused";
    case Status::stopped: return "stopped";
  }
  return "unknown";
}

std::string ContainerState::to_json() const {
  nlohmann::json j = {{"id", id},           {"pid", pid},       {"start_time", start_time},
                      {"bundle", bundle},   {"rootfs", rootfs}, {"created", created},
                      {"cgroup_path", cgroup_path}, {"annotations", annotations}, {"created_done", created_done}};
  return j.dump();
}

Result<ContainerState> ContainerState::from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(EIO, "state.json is corrupt");
  try {
    ContainerState s;
    s.id = j.value("id", "");
    s.pid = j.value("pid", 0);
    s.start_time = j.value("start_time", 0ULL);
    s.bundle = j.value("bundle", "");
    s.rootfs = j.value("rootfs", "");
    s.created = j.value("created", "");
    s.cgroup_path = j.value("cgroup_path", "");
    s.annotations = j.value("annotations", std::map<std::string, std::string>{});
    s.created_done = j.value("created_done", false);
    return s;
  } catch (const nlohmann::json::exception& e) {
    return fail(EIO, std::string("state.json is corrupt: ") + e.what());
  }
}

std::string oci_state_json(const ContainerState& s, Status status, bool pretty) {
  nlohmann::json j = {{"ociVersion", "1.1.0"}, {"id", s.id},         {"status", status_name(status)},
                      {"pid", status == Status::stopped ? 0 : s.pid}, {"bundle", s.bundle},
                      {"rootfs", s.rootfs},    {"created", s.created}, {"owner", ""}};
  j["annotations"] = s.annotations;
  return pretty ? j.dump(2) : j.dump();
}

unsigned long long process_start_time(pid_t pid) {
  if (pid <= 0) return 0;
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return 0;
  // comm may hold spaces and parens: fields start after the last ')'.
  auto close = text->rfind(')');
  if (close == std::string::npos) return 0;
  auto fields = split(std::string_view(*text).substr(close + 2), ' ');
  // fields[0] is field 3 (state); starttime is field 22.
  if (fields.size() < 20) return 0;
  if (fields[0] == "Z" || fields[0] == "X") return 0;
  return std::stoull(fields[19]);
}

bool process_matches(pid_t pid, unsigned long long start_time) {
  unsigned long long now = process_start_time(pid);
  return now != 0 && now == start_time;
}

std::string now_rfc3339() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

}  // namespace berth

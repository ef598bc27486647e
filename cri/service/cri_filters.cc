#include "cri/service/cri_filters.h"

#include <cerrno>

#include "cri/service/cri_report.h"

namespace berth::cri {

namespace {

// A filter id as a full id: the unique match, else the text itself so that an
// unknown or ambiguous id simply matches nothing (containerd behaves the same).
template <typename Items>
std::string full_id(const std::string& wanted, const Items& items) {
  if (wanted.empty()) return wanted;
  std::vector<std::string> ids;
  ids.reserve(items.size());
  for (const auto& item : items) ids.push_back(item.id);
  auto id = resolve_id(wanted, ids);
  return id ? *id : wanted;
}

struct Criteria {
  std::string id;
  std::string pod_id;
  const google::protobuf::Map<std::string, std::string>* labels = nullptr;
};

template <typename Item>
bool matches(const Item& item, const Criteria& c) {
  if (!c.id.empty() && item.id != c.id) return false;
  if (c.labels && !labels_match(*c.labels, item.spec.labels)) return false;
  return true;
}

std::vector<const pod::PodStatus*> select(const std::vector<pod::PodStatus>& pods, const Criteria& c,
                                          const v1::PodSandboxStateValue* state) {
  std::vector<const pod::PodStatus*> out;
  for (const auto& p : pods) {
    if (!matches(p, c)) continue;
    if (state && to_cri_state(p.state) != state->state()) continue;
    out.push_back(&p);
  }
  return out;
}

std::vector<const pod::ContainerStatus*> select(const std::vector<pod::ContainerStatus>& containers,
                                                const Criteria& c, const v1::ContainerStateValue* state) {
  std::vector<const pod::ContainerStatus*> out;
  for (const auto& ctr : containers) {
    if (!matches(ctr, c)) continue;
    if (!c.pod_id.empty() && ctr.pod_id != c.pod_id) continue;
    if (state && to_cri_state(ctr.state) != state->state()) continue;
    out.push_back(&ctr);
  }
  return out;
}

}  // namespace

Result<std::string> resolve_id(std::string_view wanted, const std::vector<std::string>& ids) {
  if (wanted.empty()) return invalid("an empty id names nothing");
  const std::string* found = nullptr;
  for (const auto& id : ids) {
    if (id == wanted) return id;
    if (id.starts_with(wanted)) {
      if (found) return invalid("id prefix \"" + std::string(wanted) + "\" is ambiguous");
      found = &id;
    }
  }
  if (!found) return fail(ENOENT, "\"" + std::string(wanted) + "\" not found");
  return *found;
}

bool labels_match(const google::protobuf::Map<std::string, std::string>& selector,
                  const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

std::vector<const pod::PodStatus*> select_pods(const std::vector<pod::PodStatus>& pods,
                                               const v1::PodSandboxFilter* filter) {
  if (!filter) return select(pods, {}, nullptr);
  Criteria c{full_id(filter->id(), pods), {}, &filter->label_selector()};
  return select(pods, c, filter->has_state() ? &filter->state() : nullptr);
}

std::vector<const pod::PodStatus*> select_pods(const std::vector<pod::PodStatus>& pods,
                                               const v1::PodSandboxStatsFilter* filter) {
  if (!filter) return select(pods, {}, nullptr);
  Criteria c{full_id(filter->id(), pods), {}, &filter->label_selector()};
  return select(pods, c, nullptr);
}

std::vector<const pod::ContainerStatus*> select_containers(const std::vector<pod::ContainerStatus>& containers,
                                                           const std::vector<pod::PodStatus>& pods,
                                                           const v1::ContainerFilter* filter) {
  if (!filter) return select(containers, {}, nullptr);
  Criteria c{full_id(filter->id(), containers), full_id(filter->pod_sandbox_id(), pods), &filter->label_selector()};
  return select(containers, c, filter->has_state() ? &filter->state() : nullptr);
}

std::vector<const pod::ContainerStatus*> select_containers(const std::vector<pod::ContainerStatus>& containers,
                                                           const std::vector<pod::PodStatus>& pods,
                                                           const v1::ContainerStatsFilter* filter) {
  if (!filter) return select(containers, {}, nullptr);
  Criteria c{full_id(filter->id(), containers), full_id(filter->pod_sandbox_id(), pods), &filter->label_selector()};
  return select(containers, c, nullptr);
}

}  // namespace berth::cri

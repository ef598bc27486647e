// The List* filters of CRI (id, state, pod, label selector; fields ANDed) and the
// short-id lookups containerd allows: an id may be given as any prefix that only one
// pod or container has.
#pragma once

#include "cri/proto/runtime_api.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "runtime/containerizer/containerizer.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// The one id in `ids` equal to `wanted`, else the one starting with it. ENOENT when
// none does, EINVAL when several do.
Result<std::string> resolve_id(std::string_view wanted, const std::vector<std::string>& ids);

// Every selector key present with the same value ("MatchLabels" only, as CRI says).
bool labels_match(const google::protobuf::Map<std::string, std::string>& selector,
                  const std::map<std::string, std::string>& labels);

// The pods / containers a filter selects, in the input's order. An id or pod id that
// resolves to nothing selects nothing. A null filter selects everything.
std::vector<const pod::PodStatus*> select_pods(const std::vector<pod::PodStatus>& pods,
                                               const v1::PodSandboxFilter* filter);
std::vector<const pod::PodStatus*> select_pods(const std::vector<pod::PodStatus>& pods,
                                               const v1::PodSandboxStatsFilter* filter);
std::vector<const pod::ContainerStatus*> select_containers(const std::vector<pod::ContainerStatus>& containers,
                                                           const std::vector<pod::PodStatus>& pods,
                                                           const v1::ContainerFilter* filter);
std::vector<const pod::ContainerStatus*> select_containers(const std::vector<pod::ContainerStatus>& containers,
                                                           const std::vector<pod::PodStatus>& pods,
                                                           const v1::ContainerStatsFilter* filter);

}  // namespace berth::cri

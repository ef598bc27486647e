#include "isolators/process/rlimits.h"

#include <sys/resource.h>

#include <algorithm>
#include <string>
#include <utility>

#include "common/log.h"

namespace berth::process {

namespace {

constexpr std::pair<std::string_view, int> kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

std::string_view name_of(int resource) {
  for (auto& [name, value] : kRlimits)
    if (value == resource) return name;
  return "RLIMIT_?";
}

}  // namespace

Result<int> rlimit_from_name(std::string_view name) {
  for (auto& [n, value] : kRlimits)
    if (n == name) return value;
  return invalid("unknown rlimit type \"" + std::string(name) + "\"");
}

Result<std::vector<ResolvedRlimit>> resolve_rlimits(const std::vector<oci::Rlimit>& rlimits) {
  std::vector<ResolvedRlimit> out;
  for (auto& r : rlimits) {
    int resource = BERTH_TRY(rlimit_from_name(r.type));
    if (r.soft > r.hard) return invalid("rlimit " + r.type + ": soft limit exceeds hard limit");
    for (auto& seen : out)
      if (seen.resource == resource) return invalid("rlimit " + r.type + " is listed twice");
    out.push_back({resource, r.soft, r.hard});
  }
  return out;
}

Result<> apply_rlimits(const std::vector<ResolvedRlimit>& rlimits) {
  for (auto& r : rlimits) {
    rlimit want{static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
    if (::setrlimit(r.resource, &want) == 0) continue;
    if (errno != EPERM) return sys_fail("set " + std::string(name_of(r.resource)));
    rlimit now{};
    ::getrlimit(r.resource, &now);
    rlimit capped{std::min<rlim_t>(want.rlim_cur, now.rlim_max), now.rlim_max};
    if (::setrlimit(r.resource, &capped) != 0) return sys_fail("set " + std::string(name_of(r.resource)));
    log::warn(std::string(name_of(r.resource)) + ": raising the hard limit needs CAP_SYS_RESOURCE; kept it at " +
              std::to_string(now.rlim_max));
  }
  return {};
}

}  // namespace berth::process

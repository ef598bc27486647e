#include "runtime/linux/mount_options.h"

#include <linux/mount.h>
#include <sys/mount.h>

#include <string_view>

namespace berth {

namespace {

struct FlagOption {
  std::string_view name;
  bool clear;
  unsigned long flag;
};

constexpr FlagOption kFlags[] = {
    {"async", true, MS_SYNCHRONOUS},   {"atime", true, MS_NOATIME},       {"bind", false, MS_BIND},
    {"defaults", false, 0},             {"dev", true, MS_NODEV},            {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},     {"exec", true, MS_NOEXEC},          {"iversion", false, MS_I_VERSION},
    {"lazytime", false, MS_LAZYTIME},   {"loud", true, MS_SILENT},          {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},     {"nodev", false, MS_NODEV},         {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},       {"noiversion", true, MS_I_VERSION}, {"nolazytime", true, MS_LAZYTIME},
    {"nomand", true, MS_MANDLOCK},      {"norelatime", true, MS_RELATIME},  {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},       {"nosymfollow", false, MS_NOSYMFOLLOW}, {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},   {"remount", false, MS_REMOUNT},     {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},            {"silent", false, MS_SILENT},       {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},          {"sync", false, MS_SYNCHRONOUS},    {"symfollow", true, MS_NOSYMFOLLOW},
};

struct PropagationOption {
  std::string_view name;
  unsigned long flags;
};

constexpr PropagationOption kPropagation[] = {
    {"private", MS_PRIVATE},   {"rprivate", MS_PRIVATE | MS_REC},       {"shared", MS_SHARED},
    {"rshared", MS_SHARED | MS_REC}, {"slave", MS_SLAVE},               {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

struct AttrOption {
  std::string_view name;
  bool clear;
  uint64_t attr;
};

constexpr AttrOption kAttrs[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},        {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},    {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},      {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},    {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME}, {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rrelatime", false, MOUNT_ATTR_RELATIME}, {"rnorelatime", true, MOUNT_ATTR_RELATIME},
    {"rnoatime", false, MOUNT_ATTR_NOATIME},  {"ratime", true, MOUNT_ATTR_NOATIME},
    {"rstrictatime", false, MOUNT_ATTR_STRICTATIME}, {"rnostrictatime", true, MOUNT_ATTR_STRICTATIME},
    {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW}, {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
};

}  // namespace

Result<unsigned long> parse_propagation(const std::string& value) {
  if (value.empty()) return 0UL;
  for (auto& p : kPropagation)
    if (p.name == value) return p.flags;
  return invalid("unknown propagation \"" + value + "\"");
}

Result<MountOptions> parse_mount_options(const std::vector<std::string>& options) {
  MountOptions out;
  for (auto& opt : options) {
    bool matched = false;
    for (auto& f : kFlags) {
      if (f.name != opt) continue;
      matched = true;
      if (f.clear) {
        out.flags &= ~f.flag;
        out.cleared |= f.flag;
      } else {
        out.flags |= f.flag;
        out.cleared &= ~f.flag;
      }
    }
    for (auto& p : kPropagation) {
      if (p.name != opt) continue;
      matched = true;
      out.propagation = p.flags;
    }
    for (auto& a : kAttrs) {
      if (a.name != opt) continue;
      matched = true;
      if (a.clear) {
        out.attr_clr |= a.attr;
        out.attr_set &= ~a.attr;
      } else {
        out.attr_set |= a.attr;
        out.attr_clr &= ~a.attr;
      }
    }
    if (opt == "idmap" || opt == "ridmap") return invalid("mount option \"" + opt + "\" is not supported");
    if (matched) continue;
    if (!out.data.empty()) out.data += ",";
    out.data += opt;
  }
  out.bind = (out.flags & MS_BIND) != 0;
  out.recursive = (out.flags & MS_REC) != 0;
  out.flags &= ~(MS_BIND | MS_REC);
  return out;
}

std::vector<std::string> known_mount_options() {
  std::vector<std::string> out;
  for (auto& f : kFlags) out.emplace_back(f.name);
  for (auto& p : kPropagation) out.emplace_back(p.name);
  for (auto& a : kAttrs) out.emplace_back(a.name);
  return out;
}

}  // namespace berth

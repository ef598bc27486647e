// Hierarchy detection from mountinfo and OCI cgroupsPath resolution.
#include <algorithm>
#include <string_view>

#include "common/file_util.h"
#include "isolators/cgroups/cgroups.h"

namespace berth::cgroups {
namespace {

const std::set<std::string, std::less<>> kV1Controllers = {
    "cpuset", "cpu",   "cpuacct", "blkio", "memory", "devices", "freezer",
    "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() &&
        std::all_of(s.begin() + i + 1, s.begin() + i + 4, [](char c) { return c >= '0' && c <= '7'; })) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

Result<Layout> Layout::detect(const std::string& mountinfo_path) {
  auto text = read_file(mountinfo_path);
  if (!text) return std::unexpected(text.error().wrap("detect cgroup layout"));
  return parse(*text);
}

Result<Layout> Layout::parse(const std::string& mountinfo_text) {
  Layout layout;
  // A hierarchy can be mounted more than once (bind mounts, nested containers);
  // prefer a mount of its root.
  std::map<std::string, bool> v1_is_root;
  bool unified_is_root = false;
  for (const auto& line : split(mountinfo_text, '\n')) {
    auto fields = split(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 3) continue;
    const std::string& fstype = *(dash + 1);
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    bool is_root = fields[3] == "/";
    std::string mountpoint = unescape(fields[4]);
    if (fstype == "cgroup2") {
      if (layout.unified_mount.empty() || (is_root && !unified_is_root)) {
        layout.unified_mount = mountpoint;
        unified_is_root = is_root;
      }
      continue;
    }
    // "- fstype source superopts": controllers are among the super options.
    const std::string super_opts = fields.end() - dash > 3 ? *(dash + 3) : "";
    for (const auto& opt : split(super_opts, ',')) {
      if (!kV1Controllers.contains(opt) && !starts_with(opt, "name=")) continue;
      auto it = layout.v1_mounts.find(opt);
      if (it == layout.v1_mounts.end() || (is_root && !v1_is_root[opt])) {
        layout.v1_mounts[opt] = mountpoint;
        v1_is_root[opt] = is_root;
      }
    }
  }
  bool any_v1 = std::any_of(layout.v1_mounts.begin(), layout.v1_mounts.end(),
                            [](const auto& kv) { return !starts_with(kv.first, "name="); });
  if (!layout.unified_mount.empty()) {
    // Missing file (a fake tree without it) means no controllers.
    if (auto controllers = read_file(layout.unified_mount + "/cgroup.controllers")) {
      for (auto& c : split(trim(*controllers), ' ')) layout.unified_controllers.insert(std::string(trim(c)));
    }
  }
  if (any_v1) {
    layout.mode = layout.unified_mount.empty() ? Mode::v1 : Mode::hybrid;
  } else if (!layout.unified_mount.empty()) {
    layout.mode = Mode::v2;
  } else {
    return fail(ENOENT, "detect cgroup layout: no cgroup hierarchy is mounted");
  }
  return layout;
}

bool Layout::has_v1(const std::string& controller) const {
  return !starts_with(controller, "name=") && v1_mounts.contains(controller);
}

bool Layout::has_unified(const std::string& controller) const {
  if (unified_mount.empty()) return false;
  if (controller == "cgroup" || controller == "freezer" || controller == "devices") return true;
  return unified_controllers.contains(controller);
}

namespace {

// Cleans an absolute path; ".." above the root is an error.
Result<std::string> clean_absolute(const std::string& p, const std::string& what) {
  std::vector<std::string> parts;
  for (auto& part : split(p, '/')) {
    if (part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return invalid("cgroupsPath " + what + ": \"..\" escapes its root");
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (auto& part : parts) out += "/" + part;
  return out.empty() ? std::string("/") : out;
}

bool valid_unit_part(const std::string& s) {
  return s.find('/') == std::string::npos && s != "." && s != "..";
}

// systemd: "a-b-c.slice" lives at "a.slice/a-b.slice/a-b-c.slice"; "-.slice" is root.
Result<std::string> expand_slice(const std::string& slice) {
  if (slice.empty() || slice == "-.slice") return std::string();
  constexpr std::string_view suffix = ".slice";
  if (slice.size() <= suffix.size() || !slice.ends_with(suffix) || !valid_unit_part(slice))
    return invalid("cgroupsPath: invalid systemd slice \"" + slice + "\"");
  std::string name = slice.substr(0, slice.size() - suffix.size());
  if (name.front() == '-' || name.back() == '-' || name.find("--") != std::string::npos)
    return invalid("cgroupsPath: invalid systemd slice \"" + slice + "\"");
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t dash = name.find('-', pos);
    out += "/" + name.substr(0, dash) + std::string(suffix);
    if (dash == std::string::npos) break;
    pos = dash + 1;
  }
  return out;
}

}  // namespace

Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& container_id) {
  std::string result;
  if (cgroups_path.empty()) {
    if (container_id.empty() || !valid_unit_part(container_id))
      return invalid("cgroupsPath: invalid container id \"" + container_id + "\"");
    result = "/berth/" + container_id;
  } else if (cgroups_path.front() != '/' && cgroups_path.find(':') != std::string::npos) {
    auto parts = split(cgroups_path, ':', /*skip_empty=*/false);
    if (parts.size() != 3)
      return invalid("cgroupsPath \"" + cgroups_path + "\": systemd form is slice:prefix:name");
    std::string name = parts[2].empty() ? container_id : parts[2];
    if (name.empty() || !valid_unit_part(name) || !valid_unit_part(parts[1]))
      return invalid("cgroupsPath \"" + cgroups_path + "\": invalid unit name");
    std::string slice = BERTH_TRY(expand_slice(parts[0]));
    std::string unit;
    if (name.ends_with(".slice")) {
      unit = name;  // systemd: a slice name is used as is
    } else {
      unit = (parts[1].empty() ? "" : parts[1] + "-") + name + ".scope";
    }
    result = slice + "/" + unit;
  } else if (cgroups_path.front() == '/') {
    auto cleaned = clean_absolute(cgroups_path, "\"" + cgroups_path + "\"");
    if (!cleaned) return std::unexpected(cleaned.error());
    result = *cleaned;
  } else {
    auto rel = clean_absolute("/" + cgroups_path, "\"" + cgroups_path + "\"");
    if (!rel) return std::unexpected(rel.error());
    result = *rel == "/" ? std::string("/berth") : "/berth" + *rel;
  }
  if (result == "/" || result.empty())
    return invalid("cgroupsPath \"" + cgroups_path + "\" resolves to the root cgroup");
  return result;
}

}  // namespace berth::cgroups

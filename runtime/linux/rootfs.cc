#include "runtime/linux/rootfs.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/log.h"
#include "common/safe_path.h"

namespace berth {

namespace {

int sys_mount_setattr(int dirfd, const char* path, unsigned int flags, mount_attr* attr) {
  return static_cast<int>(::syscall(SYS_mount_setattr, dirfd, path, flags, attr, sizeof *attr));
}

// The flags a bind remount must keep: the kernel refuses to drop nosuid/nodev/noexec
// or atime settings the source mount has when they are locked (user namespaces).
unsigned long inherited_flags(const std::string& target, unsigned long cleared) {
  struct statvfs st{};
  if (::statvfs(target.c_str(), &st) != 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags & ~cleared;
}

Result<> do_mount(const std::string& source, const std::string& target, const std::string& type,
                  unsigned long flags, const std::string& data, const std::string& shown) {
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) != 0)
    return sys_fail("mount " + (type.empty() ? source : type) + " on " + shown);
  return {};
}

Result<> apply_recursive_attrs(const std::string& target, const MountOptions& opts, const std::string& shown) {
  if (!opts.attr_set && !opts.attr_clr) return {};
  mount_attr attr{};
  attr.attr_set = opts.attr_set;
  attr.attr_clr = opts.attr_clr;
  if (sys_mount_setattr(AT_FDCWD, target.c_str(), AT_RECURSIVE, &attr) != 0)
    return sys_fail("set recursive mount attributes on " + shown);
  return {};
}

// Bind-mounts `source` (a host path) onto `target_fd` and applies flags.
Result<> bind_mount(const std::string& source, int root_fd, const std::string& dest, const MountOptions& opts,
                    bool source_is_dir) {
  auto target = BERTH_TRY(make_target_in_root(root_fd, dest, source_is_dir));
  BERTH_TRY_VOID(do_mount(source, fd_path(target.get()), "", MS_BIND | (opts.recursive ? MS_REC : 0), "", dest));
  // Re-resolve: the old fd still points at the covered directory, not the new mount.
  auto mounted = BERTH_TRY(open_in_root(root_fd, dest, O_PATH));
  std::string path = fd_path(mounted.get());
  unsigned long want = opts.flags & ~(MS_REMOUNT);
  if (want & ~(MS_REC)) {
    unsigned long flags = MS_BIND | MS_REMOUNT | want | inherited_flags(path, opts.cleared);
    BERTH_TRY_VOID(do_mount("", path, "", flags, "", dest + " (remount)"));
  }
  if (opts.propagation) BERTH_TRY_VOID(do_mount("", path, "", opts.propagation, "", dest + " (propagation)"));
  return apply_recursive_attrs(path, opts, dest);
}

Result<> mount_cgroups(const RootfsPlan& plan, int root_fd, const oci::Mount& m, const MountOptions& opts) {
  unsigned long flags = opts.flags & ~(MS_RDONLY | MS_REMOUNT);
  bool readonly = opts.flags & MS_RDONLY;
  auto dir = BERTH_TRY(make_target_in_root(root_fd, m.destination, true));
  bool single = plan.cgroups.size() == 1 && plan.cgroups[0].name.empty();
  if (single) {
    const CgroupView& v = plan.cgroups[0];
    if (plan.new_cgroup_ns)
      return do_mount("cgroup2", fd_path(dir.get()), "cgroup2", flags | (readonly ? MS_RDONLY : 0), "", m.destination);
    MountOptions bind = opts;
    bind.recursive = false;
    return bind_mount(v.host_dir, root_fd, m.destination, bind, true);
  }
  // v1 or hybrid: a tmpfs holding one mount per hierarchy, made read-only at the end.
  BERTH_TRY_VOID(do_mount("tmpfs", fd_path(dir.get()), "tmpfs", flags, "mode=755", m.destination));
  for (auto& v : plan.cgroups) {
    std::string sub = m.destination + "/" + v.name;
    if (plan.new_cgroup_ns) {
      auto subdir = BERTH_TRY(make_target_in_root(root_fd, sub, true));
      auto r = do_mount(v.fs_type, fd_path(subdir.get()), v.fs_type, flags | (readonly ? MS_RDONLY : 0), v.fs_options, sub);
      if (!r) return r;
    } else {
      MountOptions bind;
      bind.flags = flags | (readonly ? MS_RDONLY : 0);
      BERTH_TRY_VOID(bind_mount(v.host_dir, root_fd, sub, bind, true));
    }
    // Comounted hierarchies ("cpu,cpuacct") get a link per controller, as on hosts.
    if (v.name.find(',') != std::string::npos) {
      for (auto& part : split(v.name, ',')) {
        auto parent = BERTH_TRY(open_in_root(root_fd, m.destination, O_PATH | O_DIRECTORY));
        if (::symlinkat(v.name.c_str(), parent.get(), part.c_str()) != 0 && errno != EEXIST)
          return sys_fail("symlink " + m.destination + "/" + part);
      }
    }
  }
  if (readonly) {
    auto mounted = BERTH_TRY(open_in_root(root_fd, m.destination, O_PATH));
    BERTH_TRY_VOID(do_mount("", fd_path(mounted.get()), "", MS_REMOUNT | MS_RDONLY | flags, "mode=755",
                            m.destination + " (read-only)"));
  }
  return {};
}

Result<> mount_one(const RootfsPlan& plan, int root_fd, const oci::Mount& m, const MountOptions& opts) {
  if (m.type == "cgroup" && !opts.bind) return mount_cgroups(plan, root_fd, m, opts);
  if (opts.bind || m.type == "bind") {
    std::string source = m.source;
    if (!source.empty() && source[0] != '/') source = plan.bundle + "/" + source;
    struct stat st{};
    if (::stat(source.c_str(), &st) != 0) return sys_fail("bind mount source " + source);
    return bind_mount(source, root_fd, m.destination, opts, S_ISDIR(st.st_mode));
  }
  auto target = BERTH_TRY(make_target_in_root(root_fd, m.destination, true));
  auto mounted = do_mount(m.source, fd_path(target.get()), m.type, opts.flags & ~MS_REMOUNT, opts.data, m.destination);
  if (!mounted && m.type == "sysfs" && mounted.error().code == EPERM) {
    // sysfs needs a network namespace owned by the caller's user namespace; with a
    // shared host netns inside a user namespace, show the host's /sys read-only.
    MountOptions ro = opts;
    ro.recursive = true;
    ro.flags |= MS_RDONLY;
    return bind_mount("/sys", root_fd, m.destination, ro, true);
  }
  if (!mounted) return mounted;
  if (opts.propagation) {
    auto again = BERTH_TRY(open_in_root(root_fd, m.destination, O_PATH));
    BERTH_TRY_VOID(do_mount("", fd_path(again.get()), "", opts.propagation, "", m.destination + " (propagation)"));
  }
  if (opts.attr_set || opts.attr_clr) {
    auto again = BERTH_TRY(open_in_root(root_fd, m.destination, O_PATH));
    BERTH_TRY_VOID(apply_recursive_attrs(fd_path(again.get()), opts, m.destination));
  }
  return {};
}

struct DeviceNode {
  std::string path;
  char type;
  int64_t major, minor;
  uint32_t mode;
  uint32_t uid, gid;
};

std::vector<DeviceNode> device_nodes(const oci::Spec& spec) {
  std::vector<DeviceNode> nodes = {
      {"/dev/null", 'c', 1, 3, 0666, 0, 0},    {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
      {"/dev/full", 'c', 1, 7, 0666, 0, 0},    {"/dev/random", 'c', 1, 8, 0666, 0, 0},
      {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
  };
  if (!spec.linux) return nodes;
  for (auto& d : spec.linux->devices) {
    DeviceNode node{clean_path(d.path), d.type == "u" ? 'c' : d.type[0], d.major, d.minor, d.file_mode.value_or(0666),
                    d.uid.value_or(0), d.gid.value_or(0)};
    bool replaced = false;
    for (auto& existing : nodes)
      if (existing.path == node.path) existing = node, replaced = true;
    if (!replaced) nodes.push_back(node);
  }
  return nodes;
}

Result<> create_device(int root_fd, const DeviceNode& d, bool use_bind) {
  std::string parent = d.path.substr(0, d.path.rfind('/'));
  std::string name = d.path.substr(d.path.rfind('/') + 1);
  auto dir = BERTH_TRY(make_dirs_in_root(root_fd, parent.empty() ? "/" : parent));
  if (use_bind) {
    // No mknod in a user namespace: bind the host's node over an empty file.
    MountOptions opts;
    return bind_mount(d.path, root_fd, d.path, opts, false);
  }
  ::unlinkat(dir.get(), name.c_str(), 0);
  mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  dev_t dev = d.type == 'p' ? 0 : makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
  if (::mknodat(dir.get(), name.c_str(), type | (d.mode & 07777), dev) != 0) return sys_fail("mknod " + d.path);
  if (::fchownat(dir.get(), name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) != 0) return sys_fail("chown " + d.path);
  return {};
}

Result<> setup_dev(const RootfsPlan& plan, int root_fd) {
  for (auto& d : device_nodes(*plan.spec)) BERTH_TRY_VOID(create_device(root_fd, d, plan.new_user_ns));
  auto dev = BERTH_TRY(make_dirs_in_root(root_fd, "/dev"));
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
  };
  for (auto& [target, name] : links) {
    if (std::string_view(name) == "ptmx") ::unlinkat(dev.get(), name, 0);
    if (::symlinkat(target, dev.get(), name) != 0 && errno != EEXIST) return sys_fail(std::string("symlink /dev/") + name);
  }
  // runc's /dev/core, where the kernel has a /proc/kcore for it to point at.
  if (::access("/proc/kcore", F_OK) == 0 && ::symlinkat("/proc/kcore", dev.get(), "core") != 0 && errno != EEXIST)
    return sys_fail("symlink /dev/core");
  return {};
}

bool binds_dev(const oci::Spec& spec, const std::vector<MountOptions>& opts) {
  for (size_t i = 0; i < spec.mounts.size(); ++i)
    if (clean_path(spec.mounts[i].destination) == "/dev" && (opts[i].bind || spec.mounts[i].type == "bind")) return true;
  return false;
}

}  // namespace

Result<RootfsPlan> plan_rootfs(const oci::Spec& spec, const std::string& bundle) {
  RootfsPlan plan;
  plan.spec = &spec;
  plan.bundle = bundle;
  plan.rootfs = spec.root.path.starts_with("/") ? clean_path(spec.root.path) : clean_path(bundle + "/" + spec.root.path);
  for (auto& m : spec.mounts) {
    auto opts = parse_mount_options(m.options);
    if (!opts) return std::unexpected(opts.error().wrap("mount " + m.destination));
    plan.mount_options.push_back(*opts);
  }
  std::string prop = spec.linux ? spec.linux->rootfs_propagation : "";
  plan.root_propagation = prop.empty() ? (MS_SLAVE | MS_REC) : BERTH_TRY(parse_propagation(prop));
  auto* user = spec.find_namespace("user");
  plan.new_user_ns = user != nullptr;
  auto* cg = spec.find_namespace("cgroup");
  plan.new_cgroup_ns = cg && cg->path.empty();
  return plan;
}

// With a shared rootfs propagation, the mount holding the rootfs is shared too, and
// pivot_root refuses a new root whose parent mount is shared (EINVAL). Making just
// that mount private (as runc does) lets the rootfs bind below start out private.
Result<> make_rootfs_parent_private(const std::string& rootfs) {
  auto text = BERTH_TRY(read_file("/proc/self/mountinfo"));
  std::string best;
  bool shared = false;
  for (auto line : split(text, '\n')) {
    auto fields = split(line, ' ');
    if (fields.size() < 7) continue;
    const std::string& mp = fields[4];
    bool contains = rootfs == mp || mp == "/" || starts_with(rootfs, mp + "/");
    if (!contains || mp.size() < best.size()) continue;
    best = mp;
    shared = false;
    for (size_t i = 6; i < fields.size() && fields[i] != "-"; ++i)
      if (starts_with(fields[i], "shared:")) shared = true;
  }
  if (shared) BERTH_TRY_VOID(do_mount("", best, "", MS_PRIVATE, "", best + " (private for pivot_root)"));
  return {};
}

Result<UniqueFd> mount_rootfs(const RootfsPlan& plan) {
  // Nothing we mount may propagate back to the host.
  BERTH_TRY_VOID(do_mount("", "/", "", plan.root_propagation, "", "/ (propagation)"));
  if (plan.root_propagation & MS_SHARED) BERTH_TRY_VOID(make_rootfs_parent_private(plan.rootfs));
  // pivot_root needs the rootfs to be a mount point whose parent is not shared.
  BERTH_TRY_VOID(do_mount(plan.rootfs, plan.rootfs, "", MS_BIND | MS_REC, "", plan.rootfs));
  UniqueFd root(::open(plan.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_fail("open rootfs " + plan.rootfs);
  for (size_t i = 0; i < plan.spec->mounts.size(); ++i) {
    auto r = mount_one(plan, root.get(), plan.spec->mounts[i], plan.mount_options[i]);
    if (!r) return std::unexpected(r.error());
  }
  if (!binds_dev(*plan.spec, plan.mount_options)) BERTH_TRY_VOID(setup_dev(plan, root.get()));
  if (plan.spec->process && plan.spec->process->cwd != "/")
    BERTH_TRY_VOID(make_dirs_in_root(root.get(), plan.spec->process->cwd, 0755));
  return root;
}

Result<> enter_rootfs(int rootfs_fd, bool no_pivot) {
  if (::fchdir(rootfs_fd) != 0) return sys_fail("chdir to rootfs");
  if (no_pivot) {
    if (::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) return sys_fail("move rootfs to /");
    if (::chroot(".") != 0) return sys_fail("chroot");
  } else {
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it
    // then leaves only the rootfs, with no put_old directory needed. The rslave
    // and the detach must name the old root (through its fd), not the new tree,
    // whose bidirectional mounts have to stay shared with the host.
    UniqueFd old_root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!old_root) return sys_fail("open old root");
    if (::syscall(SYS_pivot_root, ".", ".") != 0) return sys_fail("pivot_root");
    if (::fchdir(old_root.get()) != 0) return sys_fail("chdir to old root");
    if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) return sys_fail("make old root slave");
    if (::umount2(".", MNT_DETACH) != 0) return sys_fail("detach old root");
  }
  if (::chdir("/") != 0) return sys_fail("chdir /");
  return {};
}

Result<> finish_rootfs(const RootfsPlan& plan) {
  const oci::Spec& spec = *plan.spec;
  UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_fail("open /");
  if (spec.linux) {
    for (auto& [key, value] : spec.linux->sysctl) {
      std::string path = "/proc/sys/" + key;
      for (size_t i = 10; i < path.size(); ++i)
        if (path[i] == '.') path[i] = '/';
      auto r = write_existing(path, value);
      if (!r) return std::unexpected(r.error().wrap("sysctl " + key));
    }
    for (auto& p : spec.linux->readonly_paths) {
      auto fd = open_in_root(root.get(), p, O_PATH);
      if (!fd) {
        if (fd.error().code == ENOENT) continue;
        return std::unexpected(fd.error());
      }
      std::string path = fd_path(fd->get());
      BERTH_TRY_VOID(do_mount(path, path, "", MS_BIND | MS_REC, "", p));
      auto again = BERTH_TRY(open_in_root(root.get(), p, O_PATH));
      std::string mounted = fd_path(again.get());
      BERTH_TRY_VOID(do_mount("", mounted, "", MS_BIND | MS_REMOUNT | MS_RDONLY | inherited_flags(mounted, 0), "",
                              p + " (read-only)"));
    }
    for (auto& p : spec.linux->masked_paths) {
      auto fd = open_in_root(root.get(), p, O_PATH);
      if (!fd) {
        if (fd.error().code == ENOENT) continue;
        return std::unexpected(fd.error());
      }
      struct stat st{};
      if (::fstat(fd->get(), &st) != 0) return sys_fail("stat " + p);
      if (S_ISDIR(st.st_mode)) {
        BERTH_TRY_VOID(do_mount("tmpfs", fd_path(fd->get()), "tmpfs", MS_RDONLY, "size=0", p + " (mask)"));
      } else {
        BERTH_TRY_VOID(do_mount("/dev/null", fd_path(fd->get()), "", MS_BIND, "", p + " (mask)"));
      }
    }
  }
  if (spec.root.readonly) {
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | inherited_flags("/", 0);
    BERTH_TRY_VOID(do_mount("", "/", "", flags, "", "/ (read-only root)"));
  }
  return {};
}

}  // namespace berth

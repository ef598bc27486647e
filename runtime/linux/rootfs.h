// Builds the container's filesystem view inside its new mount namespace: rootfs
// propagation, config mounts (resolved inside the rootfs, never through a symlink
// out of it), /sys/fs/cgroup, device nodes, pivot_root, then masked and read-only
// paths. Runs in the container init before exec.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "runtime/linux/mount_options.h"
#include "runtime/oci/spec.h"

namespace berth {

// One cgroup hierarchy as the container should see it under /sys/fs/cgroup.
struct CgroupView {
  std::string name;        // directory under /sys/fs/cgroup ("memory", "cpu,cpuacct", "unified"; "" = the mount itself, pure v2)
  std::string fs_type;     // "cgroup" or "cgroup2"
  std::string fs_options;  // "memory", "none,name=systemd", ""
  std::string host_dir;    // the container's cgroup directory on the host (bind source without a cgroup ns)
};

struct RootfsPlan {
  const oci::Spec* spec = nullptr;
  std::string rootfs;  // absolute host path
  std::string bundle;
  std::vector<MountOptions> mount_options;  // parsed spec->mounts options, same order
  unsigned long root_propagation = 0;
  bool no_pivot = false;
  bool new_user_ns = false;    // mknod is not allowed: bind-mount host devices instead
  bool new_cgroup_ns = false;  // mount cgroupfs fresh instead of bind-mounting host dirs
  std::vector<CgroupView> cgroups;
};

// Parses and checks everything the rootfs step will need (done in the parent, so
// bad mounts fail before anything is created).
Result<RootfsPlan> plan_rootfs(const oci::Spec& spec, const std::string& bundle);

// Child side, before pivot_root. Returns an O_PATH fd on the (bind-mounted) rootfs.
Result<UniqueFd> mount_rootfs(const RootfsPlan& plan);
// Child side: make the rootfs "/" (pivot_root, or MS_MOVE + chroot with no_pivot).
Result<> enter_rootfs(int rootfs_fd, bool no_pivot);
// Child side, after entering: sysctls, read-only and masked paths, read-only root.
Result<> finish_rootfs(const RootfsPlan& plan);

}  // namespace berth

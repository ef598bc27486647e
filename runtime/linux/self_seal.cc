#include "runtime/linux/self_seal.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/unique_fd.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

extern char** environ;

namespace berth {

namespace {

constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

// A private, detached, read-only mount of the binary file itself: it belongs to no
// mount namespace a container can see, and writing through it fails with EROFS.
UniqueFd read_only_view() {
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!tree) return {};
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) return {};
  return tree;
}

Result<UniqueFd> sealed_memfd() {
  UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!self) return sys_fail("open /proc/self/exe");
  struct stat st{};
  if (::fstat(self.get(), &st) != 0) return sys_fail("stat /proc/self/exe");
  // MFD_EXEC is needed where vm.memfd_noexec forbids executable memfds by default;
  // older kernels reject the flag, so fall back to plain.
  UniqueFd copy(::memfd_create("berth", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
  if (!copy && errno == EINVAL) copy = UniqueFd(::memfd_create("berth", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!copy) return sys_fail("memfd_create");
  off_t offset = 0;
  while (offset < st.st_size) {
    ssize_t n = ::sendfile(copy.get(), self.get(), &offset, static_cast<size_t>(st.st_size - offset));
    if (n < 0 && errno != EINTR) return sys_fail("copy berth binary into memfd");
    if (n == 0) break;
  }
  if (::fcntl(copy.get(), F_ADD_SEALS, kSeals) != 0) return sys_fail("seal memfd");
  return copy;
}

}  // namespace

bool running_from_sealed_copy() {
  UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!self) return false;
  int seals = ::fcntl(self.get(), F_GET_SEALS);
  if (seals >= 0 && (seals & kSeals) == kSeals) return true;
  struct statvfs st{};
  return ::fstatvfs(self.get(), &st) == 0 && (st.f_flag & ST_RDONLY);
}

Result<> reexec_from_sealed_copy(char** argv) {
  if (UniqueFd view = read_only_view()) {
    ::syscall(SYS_execveat, view.get(), "", argv, environ, AT_EMPTY_PATH);
  }
  auto copy = BERTH_TRY(sealed_memfd());
  ::fexecve(copy.get(), argv, environ);
  return sys_fail("re-execute sealed copy");
}

}  // namespace berth

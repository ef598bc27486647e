#include "runtime/linux/console.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "common/safe_path.h"

namespace berth {

Result<UniqueFd> connect_console_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return invalid("console socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return sys_fail("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return sys_fail("connect to console socket " + path);
  return fd;
}

Result<> send_fd(int socket_fd, int fd, const std::string& name) {
  msghdr msg{};
  iovec iov{const_cast<char*>(name.data()), name.size()};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  if (::sendmsg(socket_fd, &msg, MSG_NOSIGNAL) < 0) return sys_fail("send " + name + " fd");
  return {};
}

Result<UniqueFd> receive_fd(int socket_fd) {
  char buf[256];
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return sys_fail("receive fd");
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS) return fail(EPROTO, "no fd in message");
  int fd;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  return UniqueFd(fd);
}

Result<> setup_terminal(int socket_fd, const std::optional<oci::ConsoleSize>& size, bool mount_console) {
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return sys_fail("open /dev/ptmx");
  if (::unlockpt(master.get()) != 0) return sys_fail("unlockpt");
  char name[64];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) return sys_fail("ptsname");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return sys_fail(std::string("open ") + name);
  if (size && size->width && size->height) {
    winsize ws{static_cast<unsigned short>(size->height), static_cast<unsigned short>(size->width), 0, 0};
    ::ioctl(slave.get(), TIOCSWINSZ, &ws);
  }
  if (mount_console) {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    auto target = make_target_in_root(root.get(), "/dev/console", false);
    if (!target) return std::unexpected(target.error().wrap("create /dev/console"));
    if (::mount(name, fd_path(target->get()).c_str(), nullptr, MS_BIND, nullptr) != 0)
      return sys_fail("bind-mount the pty on /dev/console");
  }
  BERTH_TRY_VOID(send_fd(socket_fd, master.get(), "/dev/ptmx"));
  if (::setsid() < 0) return sys_fail("setsid");
  if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0) return sys_fail("make the pty the controlling terminal");
  for (int fd = 0; fd < 3; ++fd)
    if (::dup2(slave.get(), fd) < 0) return sys_fail("dup pty onto stdio");
  return {};
}

}  // namespace berth

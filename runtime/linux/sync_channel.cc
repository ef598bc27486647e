#include "runtime/linux/sync_channel.h"

#include <sys/socket.h>

namespace berth {

Result<std::pair<SyncChannel, SyncChannel>> SyncChannel::make_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return sys_fail("socketpair");
  return std::pair{SyncChannel(UniqueFd(fds[0])), SyncChannel(UniqueFd(fds[1]))};
}

Result<> SyncChannel::send(SyncMsg type, const std::string& payload) {
  std::string msg(1, static_cast<char>(type));
  msg += payload;
  for (;;) {
    ssize_t n = ::send(fd_.get(), msg.data(), msg.size(), MSG_NOSIGNAL);
    if (n >= 0) return {};
    if (errno != EINTR) return sys_fail("sync send");
  }
}

Result<std::pair<SyncMsg, std::string>> SyncChannel::receive() {
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_fail("sync receive");
    }
    if (n == 0) return fail(EPIPE, "peer exited before finishing");
    return std::pair{static_cast<SyncMsg>(buf[0]), std::string(buf + 1, static_cast<size_t>(n - 1))};
  }
}

Result<std::string> SyncChannel::expect(SyncMsg type) {
  auto [got, payload] = BERTH_TRY(receive());
  if (got == SyncMsg::error) return fail(EIO, payload);
  if (got != type)
    return fail(EPROTO, std::string("unexpected sync message '") + static_cast<char>(got) + "' (want '" +
                            static_cast<char>(type) + "')");
  return payload;
}

}  // namespace berth

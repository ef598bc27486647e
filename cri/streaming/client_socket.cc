#include "cri/streaming/client_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace berth::streaming {

ClientSocket::ClientSocket(UniqueFd fd, std::chrono::milliseconds idle_timeout)
    : fd_(std::move(fd)), idle_timeout_(idle_timeout) {
  touch();
}

Result<size_t> ClientSocket::read_some(char* buf, size_t size) {
  for (;;) {
    if (shut_down_) return fail(ECANCELED, "connection shut down");
    auto now = Clock::now().time_since_epoch().count();
    auto idle_end = last_activity_.load() + std::chrono::duration_cast<Clock::duration>(idle_timeout_).count();
    auto end = idle_end;
    if (auto linger = linger_deadline_.load(); linger != 0) end = std::min(end, linger);
    if (now >= end) return fail(ETIMEDOUT, now >= idle_end ? "idle timeout" : "client did not close in time");
    auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration(end - now)).count() + 1;
    // Wake at least every second: shutdown() from another thread must be noticed even
    // if the kernel does not wake the poll for it.
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (n < 0 && errno != EINTR) return sys_fail("poll client");
    if (n <= 0) continue;
    ssize_t got = ::recv(fd_.get(), buf, size, 0);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (shut_down_) return fail(ECANCELED, "connection shut down");
      return sys_fail("read from client");
    }
    if (got > 0) touch();
    return static_cast<size_t>(got);
  }
}

Result<> ClientSocket::write_all(std::string_view data) {
  iovec part{const_cast<char*>(data.data()), data.size()};
  return write_all(&part, 1);
}

Result<> ClientSocket::write_all(const iovec* parts, size_t count) {
  std::vector<iovec> left(parts, parts + count);
  std::lock_guard g(write_mu_);
  size_t i = 0;
  while (i < left.size()) {
    if (shut_down_) return fail(ECANCELED, "connection shut down");
    msghdr msg{};
    msg.msg_iov = left.data() + i;
    msg.msg_iovlen = left.size() - i;
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_fail("write to client");
    }
    touch();
    auto done = static_cast<size_t>(n);
    while (i < left.size() && done >= left[i].iov_len) done -= left[i++].iov_len;
    if (i < left.size()) {
      left[i].iov_base = static_cast<char*>(left[i].iov_base) + done;
      left[i].iov_len -= done;
    }
  }
  return {};
}

void ClientSocket::finish(std::chrono::milliseconds linger) {
  {
    std::lock_guard g(write_mu_);
    ::shutdown(fd_.get(), SHUT_WR);
  }
  linger_deadline_.store((Clock::now() + linger).time_since_epoch().count());
}

void ClientSocket::shutdown() {
  shut_down_.store(true);
  ::shutdown(fd_.get(), SHUT_RDWR);
}

}  // namespace berth::streaming

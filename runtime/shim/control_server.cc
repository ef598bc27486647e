#include "runtime/shim/control_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace berth::shim {

ControlServer::~ControlServer() { close(); }

int listen_private_socket(const char* name, int& fd_out) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(name) >= sizeof addr.sun_path) return ENAMETOOLONG;
  std::strcpy(addr.sun_path, name);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  ::unlink(name);
  // The socket file gets its mode at bind: no window in which others may connect.
  mode_t old_mask = ::umask(0177);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old_mask);
  if (rc != 0 || ::listen(fd, 16) != 0) {
    if (rc == 0) err = errno;
    ::close(fd);
    return err;
  }
  fd_out = fd;
  return 0;
}

int ControlServer::listen(const char* name) {
  if (int err = listen_private_socket(name, listen_fd_)) return err;
  name_ = name;
  return 0;
}

void ControlServer::close() {
  while (client_count_ > 0) drop_client(client_count_ - 1);
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(name_);
    listen_fd_ = -1;
  }
}

size_t ControlServer::fill_pollfds(pollfd* fds, size_t room) const {
  if (listen_fd_ < 0 || room < 1 + client_count_) return 0;
  fds[0] = {listen_fd_, POLLIN, 0};
  for (size_t i = 0; i < client_count_; ++i) fds[1 + i] = {clients_[i].fd, POLLIN, 0};
  return 1 + client_count_;
}

void ControlServer::on_poll(const pollfd* fds, size_t count) {
  if (count == 0) return;
  // Clients first, from the back: dropping one shifts only those after it.
  for (size_t i = count - 1; i >= 1; --i) {
    if (fds[i].revents == 0) continue;
    for (size_t c = 0; c < client_count_; ++c)
      if (clients_[c].fd == fds[i].fd) {
        read_client(clients_[c]);
        if (clients_[c].fd < 0) drop_client(c);
        break;
      }
  }
  if (fds[0].revents & POLLIN) accept_client();
}

void ControlServer::accept_client() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a client that already left
    // Out of slots: the longest-waiting client loses its place.
    if (client_count_ == kMaxClients) drop_client(0);
    Client& c = clients_[client_count_++];
    c.fd = fd;
    c.size = 0;
  }
}

// Reads what the client sent; answers and marks it done (fd -1) after a full line.
void ControlServer::read_client(Client& c) {
  ssize_t n = ::recv(c.fd, c.buf + c.size, sizeof c.buf - c.size, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  char reply[512];
  if (n <= 0) {
    ::close(c.fd);
    c.fd = -1;
    return;
  }
  c.size += static_cast<size_t>(n);
  char* newline = static_cast<char*>(std::memchr(c.buf, '\n', c.size));
  if (!newline && c.size < sizeof c.buf) return;
  if (!newline) {
    std::snprintf(reply, sizeof reply, "%.*s request too long", static_cast<int>(kReplyError.size()),
                  kReplyError.data());
  } else {
    reply[0] = '\0';
    handler_.handle_request(std::string_view(c.buf, static_cast<size_t>(newline - c.buf)), reply, sizeof reply - 1);
  }
  size_t len = strnlen(reply, sizeof reply - 1);
  reply[len++] = '\n';
  // Replies are tiny and the socket buffer empty: one send does it.
  ssize_t sent = ::send(c.fd, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)sent;
  ::close(c.fd);
  c.fd = -1;
}

void ControlServer::drop_client(size_t index) {
  if (clients_[index].fd >= 0) ::close(clients_[index].fd);
  for (size_t i = index; i + 1 < client_count_; ++i) clients_[i] = clients_[i + 1];
  --client_count_;
}

}  // namespace berth::shim

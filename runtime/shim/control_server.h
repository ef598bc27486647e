// The shim's control socket (protocol in shim_protocol.h): one request line per
// connection, one reply line, then close. Non-blocking throughout, driven by the
// shim's poll loop, so a stuck client never stalls log copying.
#pragma once

#include <poll.h>

#include <cstddef>
#include <string_view>

#include "runtime/shim/shim_protocol.h"

namespace berth::shim {

// Binds and listens on `name` (relative to the working directory), mode 0600 from the
// bind on, non-blocking. Returns 0 and sets `fd`, or an errno value.
int listen_private_socket(const char* name, int& fd);

class ControlHandler {
 public:
  // Fills `reply` (NUL-terminated, without the newline).
  virtual void handle_request(std::string_view request, char* reply, size_t reply_size) = 0;

 protected:
  ~ControlHandler() = default;
};

class ControlServer {
 public:
  static constexpr size_t kMaxClients = 8;

  explicit ControlServer(ControlHandler& handler) : handler_(handler) {}
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `name` (relative to the working directory, mode 0600). Returns 0 or an errno value.
  int listen(const char* name);
  // Stops listening and removes the socket file.
  void close();

  // Adds the listener and clients to a poll set; returns how many were added.
  size_t fill_pollfds(pollfd* fds, size_t room) const;
  // Handles the entries fill_pollfds added (same order).
  void on_poll(const pollfd* fds, size_t count);

 private:
  struct Client {
    int fd = -1;
    size_t size = 0;
    char buf[kMaxRequestLine];
  };

  void accept_client();
  void read_client(Client& c);
  void drop_client(size_t index);

  ControlHandler& handler_;
  int listen_fd_ = -1;
  const char* name_ = nullptr;
  Client clients_[kMaxClients];
  size_t client_count_ = 0;
};

}  // namespace berth::shim

// The shim's attach socket (protocol in shim_protocol.h): up to kMaxAttachClients
// connections that receive the container's output as frames and may write to its
// stdin. Non-blocking throughout, driven by the shim's poll loop. Memory is fixed:
// the output frame being sent is the caller's buffer (not copied; each client keeps
// only how much of it it has taken), and each client's unprocessed input sits in one
// static read buffer per slot.
#pragma once

#include <poll.h>

#include <cstddef>

#include "runtime/shim/shim_protocol.h"

namespace berth::shim {

class AttachHandler {
 public:
  // The container's stdin is to be closed (--stdin-once, or writing to it failed).
  // The server has stopped using the fd already.
  virtual void close_stdin() = 0;

 protected:
  ~AttachHandler() = default;
};

class AttachServer {
 public:
  static constexpr size_t kMaxClients = kMaxAttachClients;
  // Entries fill_pollfds may add.
  static constexpr size_t kMaxPollFds = 2 + kMaxClients;

  explicit AttachServer(AttachHandler& handler) : handler_(handler) {}
  ~AttachServer();
  AttachServer(const AttachServer&) = delete;
  AttachServer& operator=(const AttachServer&) = delete;

  // Binds `name` (relative to the working directory, mode 0600). Returns 0 or an errno value.
  int listen(const char* name);
  // Stops listening, removes the socket file, then closes every connection.
  void close();

  // Where 'i' goes (the pipe writer or the pty master, non-blocking; -1: discard) and
  // whether the first client to finish with stdin closes it.
  void set_stdin(int fd, bool once);
  // The pty master for 'r'; -1: no tty, resizes are ignored.
  void set_pty(int fd) { pty_fd_ = fd; }
  // The fds given above are going away (the pty hung up): stop using them.
  void forget_container_fds();

  // Sends one whole frame (header included, at most kAttachHeaderSize +
  // kMaxAttachPayload bytes) to every client. `frame` must stay untouched while
  // output_blocked(): clients that could not take all of it send the rest from there.
  void broadcast(const char* frame, size_t size);
  // Some client has not taken the last frame yet: read no more output until it has.
  bool output_blocked() const { return blocked_clients_ > 0; }

  // Adds the listener, the stdin fd (while a write to it is pending) and the clients
  // to a poll set; returns how many were added (at most kMaxPollFds).
  size_t fill_pollfds(pollfd* fds, size_t room) const;
  // Handles the entries fill_pollfds added (same order).
  void on_poll(const pollfd* fds, size_t count);

 private:
  struct Client {
    int fd = -1;
    AttachDecoder decoder;
    bool output_pending = false;  // has taken only `output_sent` bytes of the frame
    size_t output_sent = 0;
    // Unprocessed input is g_input[slot][input_pos, input_size); while stdin_size > 0
    // the bytes at stdin_data (in that buffer, or the decoder's) wait for the
    // container's stdin, and the client's socket is not read.
    size_t input_pos = 0;
    size_t input_size = 0;
    const char* stdin_data = nullptr;
    size_t stdin_size = 0;
    bool sent_stdin = false;
    bool closed_stdin = false;
  };

  void accept_clients();
  void send_output(Client& c);
  void read_client(Client& c);
  void process_input(Client& c);
  bool write_stdin(Client& c);  // false while bytes remain
  void flush_stdin();
  void finished_with_stdin();
  void stop_stdin(bool tell_handler);
  void drop_client(Client& c, bool shutting_down = false);
  size_t slot(const Client& c) const { return static_cast<size_t>(&c - clients_); }

  AttachHandler& handler_;
  int listen_fd_ = -1;
  const char* name_ = nullptr;
  int stdin_fd_ = -1;
  bool stdin_once_ = false;
  bool stdin_closed_ = false;
  int pty_fd_ = -1;
  size_t stdin_waiting_ = 0;  // clients with stdin bytes pending
  const char* frame_ = nullptr;
  size_t frame_size_ = 0;
  size_t blocked_clients_ = 0;
  Client clients_[kMaxClients];
};

}  // namespace berth::shim

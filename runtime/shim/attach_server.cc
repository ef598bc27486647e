#include "runtime/shim/attach_server.h"

#include "runtime/shim/control_server.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "runtime/shim/shim_log.h"

namespace berth::shim {

namespace {

// Per client slot, what one recv may bring; static so a slot costs memory only once
// its client has sent something.
constexpr size_t kInputSize = 4096;
char g_input[AttachServer::kMaxClients][kInputSize];

}  // namespace

AttachServer::~AttachServer() { close(); }

int AttachServer::listen(const char* name) {
  if (int err = listen_private_socket(name, listen_fd_)) return err;
  name_ = name;
  return 0;
}

void AttachServer::close() {
  // The socket goes first: a client that sees EOF finds no socket to come back to.
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(name_);
    listen_fd_ = -1;
  }
  for (auto& c : clients_)
    if (c.fd >= 0) drop_client(c, true);
}

void AttachServer::set_stdin(int fd, bool once) {
  stdin_fd_ = fd;
  stdin_once_ = once;
}

void AttachServer::forget_container_fds() {
  pty_fd_ = -1;
  stop_stdin(false);
}

void AttachServer::broadcast(const char* frame, size_t size) {
  frame_ = frame;
  frame_size_ = size;
  for (auto& c : clients_) {
    if (c.fd < 0 || c.output_pending) continue;  // (a caller that waited has none pending)
    c.output_pending = true;
    c.output_sent = 0;
    ++blocked_clients_;
    send_output(c);
  }
}

size_t AttachServer::fill_pollfds(pollfd* fds, size_t room) const {
  if (listen_fd_ < 0 || room < kMaxPollFds) return 0;
  size_t n = 0;
  fds[n++] = {listen_fd_, POLLIN, 0};
  fds[n++] = {stdin_waiting_ > 0 ? stdin_fd_ : -1, POLLOUT, 0};
  for (const auto& c : clients_) {
    if (c.fd < 0) continue;
    short events = static_cast<short>((c.stdin_size == 0 ? POLLIN : 0) | (c.output_pending ? POLLOUT : 0));
    // Nothing wanted (waiting for stdin): leave it out, or a hang-up would wake us
    // over and over. The negative fd keeps the slot's place; poll skips it.
    fds[n++] = {events ? c.fd : ~c.fd, events, 0};
  }
  return n;
}

void AttachServer::on_poll(const pollfd* fds, size_t count) {
  if (count < 2) return;
  if (fds[1].revents) flush_stdin();
  for (size_t i = 2; i < count; ++i) {
    short revents = fds[i].revents;
    if (revents == 0) continue;
    Client* c = nullptr;
    for (auto& candidate : clients_)
      if (candidate.fd == fds[i].fd) c = &candidate;
    if (!c) continue;
    if (c->output_pending && (revents & (POLLOUT | POLLERR | POLLHUP))) send_output(*c);
    if (c->fd >= 0 && c->stdin_size == 0 && (revents & (POLLIN | POLLERR | POLLHUP))) read_client(*c);
  }
  // Input left over when stdin went away (or was freed up) needs no new bytes to go on.
  for (auto& c : clients_)
    if (c.fd >= 0 && c.stdin_size == 0 && c.input_pos < c.input_size) process_input(c);
  if (fds[0].revents & POLLIN) accept_clients();
}

void AttachServer::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a client that already left
    Client* free_slot = nullptr;
    for (auto& c : clients_)
      if (c.fd < 0 && !free_slot) free_slot = &c;
    if (!free_slot) {
      ::close(fd);  // full: the newcomer reads EOF at once
      continue;
    }
    *free_slot = Client{};
    free_slot->fd = fd;
  }
}

void AttachServer::send_output(Client& c) {
  while (c.output_sent < frame_size_) {
    ssize_t n = ::send(c.fd, frame_ + c.output_sent, frame_size_ - c.output_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.output_sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    drop_client(c);
    return;
  }
  c.output_pending = false;
  --blocked_clients_;
}

void AttachServer::read_client(Client& c) {
  if (c.input_pos < c.input_size) {
    process_input(c);
    if (c.fd < 0 || c.stdin_size > 0 || c.input_pos < c.input_size) return;
  }
  ssize_t n = ::recv(c.fd, g_input[slot(c)], kInputSize, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    drop_client(c);
    return;
  }
  c.input_pos = 0;
  c.input_size = static_cast<size_t>(n);
  process_input(c);
}

void AttachServer::process_input(Client& c) {
  if (c.stdin_size > 0 && !write_stdin(c)) return;
  const char* base = g_input[slot(c)];
  std::string_view in(base + c.input_pos, c.input_size - c.input_pos);
  AttachPiece piece;
  while (c.decoder.next(in, piece)) {
    c.input_pos = c.input_size - in.size();
    switch (piece.type) {
      case kAttachStdin:
        c.sent_stdin = true;
        if (stdin_fd_ < 0 || piece.size == 0) break;
        c.stdin_data = piece.data;  // in g_input or the decoder: both untouched until it is written
        c.stdin_size = piece.size;
        // Behind bytes already waiting for stdin, queue; flush_stdin takes turns.
        if (stdin_waiting_++ > 0 || !write_stdin(c)) return;
        break;
      case kAttachCloseStdin:
        c.closed_stdin = true;
        finished_with_stdin();
        break;
      case kAttachResize: {
        uint16_t width = 0, height = 0;
        if (pty_fd_ < 0 || !decode_attach_resize(piece, width, height)) break;
        winsize size{};
        size.ws_col = width;
        size.ws_row = height;
        if (::ioctl(pty_fd_, TIOCSWINSZ, &size) != 0) shim_log("resize the pty: %s", std::strerror(errno));
        break;
      }
      default:
        break;  // unknown types are skipped
    }
  }
  c.input_pos = c.input_size - in.size();
  if (c.decoder.failed()) {
    shim_log("attach client sent a frame over %zu bytes; dropping it", kMaxAttachPayload);
    drop_client(c);
  }
}

bool AttachServer::write_stdin(Client& c) {
  while (c.stdin_size > 0) {
    ssize_t n = ::write(stdin_fd_, c.stdin_data, c.stdin_size);
    if (n > 0) {
      c.stdin_data += n;
      c.stdin_size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    // EPIPE: nobody reads the pipe any more; EIO: the pty hung up.
    shim_log("write to the container's stdin: %s; closing it", std::strerror(n < 0 ? errno : EIO));
    stop_stdin(true);  // drops every client's pending stdin
    return true;
  }
  --stdin_waiting_;
  return true;
}

void AttachServer::flush_stdin() {
  for (auto& c : clients_) {
    if (c.fd < 0 || c.stdin_size == 0) continue;
    if (!write_stdin(c)) return;  // full again
    process_input(c);             // what it sent after those bytes
  }
}

void AttachServer::finished_with_stdin() {
  if (stdin_once_ && stdin_fd_ >= 0) stop_stdin(true);
}

void AttachServer::stop_stdin(bool tell_handler) {
  bool had = stdin_fd_ >= 0;
  stdin_fd_ = -1;
  stdin_waiting_ = 0;
  for (auto& c : clients_) c.stdin_size = 0;
  if (had && tell_handler) handler_.close_stdin();
}

void AttachServer::drop_client(Client& c, bool shutting_down) {
  ::close(c.fd);
  if (c.output_pending) --blocked_clients_;
  if (c.stdin_size > 0) --stdin_waiting_;
  // A session that used stdin and ends without 'c' still ends its use of stdin.
  bool finished = c.sent_stdin && !c.closed_stdin;
  c = Client{};
  if (finished && !shutting_down) finished_with_stdin();
}

}  // namespace berth::shim

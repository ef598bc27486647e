#include "cri/streaming/attach_session.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <vector>

#include "runtime/shim/shim_protocol.h"

namespace berth::streaming {

AttachSession::AttachSession(pod::Containerizer& containerizer, AttachRequest request)
    : containerizer_(containerizer), request_(std::move(request)), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

int AttachSession::wait_connected() {
  std::unique_lock lock(mu_);
  connected_cv_.wait(lock, [&] { return settled_; });
  return shim_ ? shim_.get() : -1;
}

void AttachSession::stop() {
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
}

bool AttachSession::send_frame(char type, std::string_view payload) {
  int fd = wait_connected();
  if (fd < 0) return false;
  char header[shim::kAttachHeaderSize];
  shim::encode_attach_header(type, static_cast<uint32_t>(payload.size()), header);
  iovec parts[2] = {{header, sizeof header}, {const_cast<char*>(payload.data()), payload.size()}};
  size_t part = 0;
  while (part < 2) {
    msghdr msg{};
    msg.msg_iov = parts + part;
    msg.msg_iovlen = 2 - part;
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    auto done = static_cast<size_t>(n);
    while (part < 2 && done >= parts[part].iov_len) done -= parts[part++].iov_len;
    if (part < 2) {
      parts[part].iov_base = static_cast<char*>(parts[part].iov_base) + done;
      parts[part].iov_len -= done;
    }
  }
  return true;
}

void AttachSession::on_stdin(std::string_view data) {
  if (!request_.stdin || stdin_done_) return;
  while (!data.empty()) {
    auto chunk = data.substr(0, shim::kMaxAttachPayload);
    if (!send_frame(shim::kAttachStdin, chunk)) return;
    data.remove_prefix(chunk.size());
  }
}

void AttachSession::on_stdin_close() {
  if (!request_.stdin || stdin_done_.exchange(true)) return;
  send_frame(shim::kAttachCloseStdin, {});
  // Nothing left to relay for a client that only sends.
  if (!request_.stdout && !request_.stderr) stop();
}

void AttachSession::on_resize(uint16_t width, uint16_t height) {
  if (!request_.tty) return;
  char frame[shim::kAttachResizeFrameSize];
  shim::encode_attach_resize(width, height, frame);
  send_frame(frame[0], std::string_view(frame + shim::kAttachHeaderSize, shim::kAttachResizePayload));
}

void AttachSession::on_client_gone() {
  client_gone_ = true;
  stop();
}

std::optional<CommandOutcome> AttachSession::run(CommandChannels& channels) {
  auto target = containerizer_.attach(request_.container_id);
  {
    std::lock_guard g(mu_);
    if (target) shim_ = std::move(target->connection);
    settled_ = true;
  }
  connected_cv_.notify_all();
  if (!target) {
    if (client_gone_) return std::nullopt;
    return internal_error("error attaching to container: " + target.error().message);
  }

  shim::AttachDecoder decoder;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    pollfd fds[2] = {{shim_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    ssize_t n = ::recv(shim_.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the container exited and its output is drained
    std::string_view input(buf.data(), static_cast<size_t>(n));
    shim::AttachPiece piece;
    while (decoder.next(input, piece)) {
      Channel channel = piece.type == shim::kAttachStderr ? Channel::stderr : Channel::stdout;
      bool wanted = piece.type == shim::kAttachStderr ? request_.stderr : request_.stdout;
      if (piece.type != shim::kAttachStdout && piece.type != shim::kAttachStderr) continue;
      if (wanted && piece.size > 0 && !channels.write(channel, std::string_view(piece.data, piece.size)))
        return std::nullopt;
    }
    if (decoder.failed()) return internal_error("the container's shim sent a malformed attach frame");
  }
  // Leaving tells the shim this client is done (with --stdin-once it closes stdin).
  ::shutdown(shim_.get(), SHUT_RDWR);
  if (client_gone_) return std::nullopt;
  return success();
}

}  // namespace berth::streaming

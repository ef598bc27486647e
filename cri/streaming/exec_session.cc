#include "cri/streaming/exec_session.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <vector>

namespace berth::streaming {

namespace {

void set_nonblocking(int fd) {
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// "[sh -c exit 3]": how kubelet names the command in its exit message.
std::string command_line(const std::vector<std::string>& cmd) {
  std::string s = "[";
  for (size_t i = 0; i < cmd.size(); ++i) s += (i ? " " : "") + cmd[i];
  return s + "]";
}

}  // namespace

ExecSession::ExecSession(pod::Containerizer& containerizer, ExecRequest request)
    : containerizer_(containerizer), request_(std::move(request)), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ExecSession::~ExecSession() = default;

bool ExecSession::wait_started() {
  std::unique_lock lock(mu_);
  started_cv_.wait(lock, [&] { return start_settled_; });
  return process_ != nullptr && !client_gone_;
}

void ExecSession::on_stdin(std::string_view data) {
  if (!wait_started()) return;
  int fd = process_->stdin_fd();
  if (fd < 0 || stdin_closed_) return;
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      // The command is not reading: wait for room, or for the session to end.
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_fd_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      continue;
    }
    return;  // EPIPE: the command closed its stdin; the rest has nowhere to go
  }
}

void ExecSession::on_stdin_close() {
  if (!wait_started() || stdin_closed_) return;
  stdin_closed_ = true;
  process_->close_stdin();
}

void ExecSession::on_resize(uint16_t width, uint16_t height) {
  if (!wait_started()) return;
  (void)process_->resize(width, height);
}

void ExecSession::on_client_gone() {
  client_gone_ = true;
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  std::lock_guard g(mu_);
  // Still unreaped, so its pids cannot have been recycled.
  if (process_) process_->kill();
}

void ExecSession::pump(int fd, Channel channel, CommandChannels& channels) {
  std::vector<char> buf(256 * 1024);
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    // EOF; a pty master reports EIO once the command and its children closed the terminal.
    if (n <= 0) return;
    // A terminal nobody asked to see is still drained, or the command would block on it.
    bool wanted = channel == Channel::stdout ? request_.stdout : request_.stderr;
    if (wanted && !channels.write(channel, std::string_view(buf.data(), static_cast<size_t>(n)))) return;
  }
}

std::optional<CommandOutcome> ExecSession::run(CommandChannels& channels) {
  pod::ExecIo io{.stdin = request_.stdin, .stdout = request_.stdout, .stderr = request_.stderr, .tty = request_.tty};
  auto started = containerizer_.exec(request_.container_id, request_.cmd, io);
  {
    std::lock_guard g(mu_);
    if (started) process_ = std::move(*started);
    start_settled_ = true;
  }
  started_cv_.notify_all();
  if (!started) {
    if (client_gone_) return std::nullopt;
    return internal_error("error executing command in container: " + started.error().message);
  }
  if (client_gone_) {
    std::lock_guard g(mu_);
    process_->kill();
  }

  struct Pump {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::vector<std::unique_ptr<Pump>> pumps;
  std::mutex done_mu;
  std::condition_variable done_cv;
  auto start_pump = [&](int fd, Channel channel) {
    if (fd < 0) return;
    set_nonblocking(fd);
    auto p = std::make_unique<Pump>();
    Pump* raw = p.get();
    raw->thread = std::thread([this, fd, channel, &channels, raw, &done_mu, &done_cv] {
      pump(fd, channel, channels);
      std::lock_guard g(done_mu);
      raw->done = true;
      done_cv.notify_all();
    });
    pumps.push_back(std::move(p));
  };
  set_nonblocking(process_->stdin_fd());
  start_pump(process_->stdout_fd(), Channel::stdout);
  if (!request_.tty) start_pump(process_->stderr_fd(), Channel::stderr);

  // Until the command exits or the client leaves.
  for (;;) {
    pollfd fds[2] = {{process_->exit_fd(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents || fds[1].revents) break;
  }
  // Output written just before the exit is still in the pipes: let the pumps finish.
  {
    std::unique_lock lock(done_mu);
    done_cv.wait_for(lock, std::chrono::milliseconds(kDrainAfterExitMs), [&] {
      for (auto& p : pumps)
        if (!p->done) return client_gone_.load();
      return true;
    });
  }
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  for (auto& p : pumps) p->thread.join();

  pod::ExecExit exit;
  {
    std::lock_guard g(mu_);
    if (client_gone_) process_->kill();
    exit = process_->wait();
  }
  if (client_gone_) return std::nullopt;
  if (!exit.runtime_error.empty())
    return internal_error("error executing command in container: " + exit.runtime_error);
  if (exit.exit_code != 0) return exited_with(exit.exit_code, command_line(request_.cmd));
  return success();
}

}  // namespace berth::streaming

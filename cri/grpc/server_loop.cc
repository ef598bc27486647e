#include "cri/grpc/server_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>

#include "common/log.h"
#include "cri/grpc/handler_pool.h"
#include "cri/grpc/ready_queue.h"
#include "cri/grpc/server_call.h"

namespace berth::grpc {

ServerLoop::ServerLoop(UnixListener listener, std::shared_ptr<const MethodTable> methods, Settings settings)
    : listener_(std::move(listener)), methods_(std::move(methods)), settings_(settings) {}

Result<std::unique_ptr<ServerLoop>> ServerLoop::start(UnixListener listener,
                                                      std::shared_ptr<const MethodTable> methods,
                                                      Settings settings) {
  std::unique_ptr<ServerLoop> loop(new ServerLoop(std::move(listener), std::move(methods), settings));
  loop->epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_) return sys_fail("epoll_create1");
  loop->ready_ = BERTH_TRY(ReadyQueue::create());
  // Handler threads outlive nothing they do not own: they reach the loop through a
  // weak reference only.
  loop->pool_ = HandlerPool::create(settings.max_concurrent_calls,
                                    [ready = std::weak_ptr<ReadyQueue>(loop->ready_)] {
                                      if (auto q = ready.lock()) q->wake();
                                    });

  for (int fd : {loop->listener_.fd(), loop->ready_->fd()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return sys_fail("epoll_ctl add");
  }
  try {
    loop->thread_ = std::thread([raw = loop.get()] { raw->run(); });
  } catch (const std::system_error& e) {
    return fail(EAGAIN, std::string("start gRPC event loop thread: ") + e.what());
  }
  return loop;
}

ServerLoop::~ServerLoop() { stop(); }

void ServerLoop::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  ready_->wake();
  thread_.join();

  if (!pool_->wait_idle(settings_.stop_timeout)) {
    size_t left = pool_->detach_running();
    log::warn("gRPC server " + listener_.path() + ": " + std::to_string(left) +
              " handler(s) still running after " + std::to_string(settings_.stop_timeout.count()) +
              " ms; leaving them to finish on their own");
  }
  pool_->reap();
}

std::shared_ptr<const Method> ServerLoop::find_method(const std::string& path) const {
  auto it = methods_->find(path);
  return it == methods_->end() ? nullptr : it->second;
}

std::shared_ptr<ServerCall> ServerLoop::start_call(std::shared_ptr<const Method> method,
                                                   CallContext::Clock::time_point deadline,
                                                   CallContext::Metadata metadata, std::optional<ucred> peer,
                                                   std::string request) {
  if (stopping_.load(std::memory_order_acquire)) return nullptr;
  auto call = std::make_shared<ServerCall>(method->path, deadline, std::move(metadata), peer,
                                           settings_.max_send_bytes, ready_);
  bool started = pool_->spawn([call, method = std::move(method), request = std::move(request)] {
    CallStatus status;
    try {
      status = method->handler(call->context(), request, *call);
    } catch (const std::exception& e) {
      status = {StatusCode::unknown, std::string("handler failed: ") + e.what()};
    } catch (...) {
      status = {StatusCode::unknown, "handler failed"};
    }
    call->finish(std::move(status));
  });
  return started ? call : nullptr;
}

void ServerLoop::run() {
  epoll_event events[32];
  while (!stopping_.load(std::memory_order_acquire)) {
    int n = ::epoll_wait(epoll_.get(), events, static_cast<int>(std::size(events)), next_timeout_ms());
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error(std::string("gRPC server: epoll_wait: ") + std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener_.fd()) {
        accept_connections();
      } else if (fd == ready_->fd()) {
        drain_ready();
      } else if (auto it = connections_.find(fd); it != connections_.end()) {
        Http2Connection& conn = *it->second;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) conn.on_readable();
        if ((events[i].events & EPOLLOUT) && !conn.closed()) conn.on_writable();
      }
    }
    auto now = CallContext::Clock::now();
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (!it->second->closed()) it->second->expire_deadlines(now);
      // Connections are only destroyed here, never while an event may still name them.
      it = it->second->closed() ? connections_.erase(it) : std::next(it);
    }
  }

  listener_.close();
  for (auto& [fd, conn] : connections_) conn->shutdown();
  connections_.clear();  // cancels every call still bound to a connection
  ready_->drain();
}

void ServerLoop::accept_connections() {
  for (;;) {
    int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log::warn(std::string("gRPC server: accept: ") + std::strerror(errno));
      }
      return;
    }
    UniqueFd conn_fd(fd);
    std::optional<ucred> peer;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) peer = cred;

    Http2Connection::Limits limits{
        settings_.max_receive_bytes,
        static_cast<uint32_t>(std::min<size_t>(settings_.max_concurrent_calls, UINT32_MAX))};
    auto conn = std::make_unique<Http2Connection>(std::move(conn_fd), epoll_.get(), peer, limits, *this);
    if (auto started = conn->start(); !started) {
      log::warn("gRPC server: " + started.error().message);
      continue;
    }
    connections_.emplace(fd, std::move(conn));
  }
}

void ServerLoop::drain_ready() {
  for (auto& call : ready_->drain()) {
    call->clear_posted();
    if (Http2Connection* conn = call->connection()) conn->service(*call);
  }
  pool_->reap();
}

int ServerLoop::next_timeout_ms() const {
  std::optional<CallContext::Clock::time_point> next;
  for (const auto& [fd, conn] : connections_) {
    auto d = conn->next_deadline();
    if (d && (!next || *d < *next)) next = d;
  }
  if (!next) return -1;
  auto now = CallContext::Clock::now();
  if (*next <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

}  // namespace berth::grpc

// The running part of a GrpcServer: one epoll thread that accepts connections and
// owns every HTTP/2 session, plus the handler threads it starts.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "common/unique_fd.h"
#include "cri/grpc/http2_connection.h"
#include "cri/grpc/method.h"
#include "cri/grpc/unix_listener.h"

namespace berth::grpc {

class HandlerPool;
class ReadyQueue;

class ServerLoop final : public CallHost {
 public:
  struct Settings {
    size_t max_concurrent_calls;
    size_t max_receive_bytes;
    size_t max_send_bytes;
    std::chrono::milliseconds stop_timeout;
  };

  static Result<std::unique_ptr<ServerLoop>> start(UnixListener listener,
                                                   std::shared_ptr<const MethodTable> methods, Settings settings);
  ~ServerLoop();  // stop()

  // Stops accepting, closes every connection (cancelling its calls), then waits up
  // to stop_timeout for handlers to return. Idempotent.
  void stop();

  // CallHost, loop thread only.
  std::shared_ptr<const Method> find_method(const std::string& path) const override;
  std::shared_ptr<ServerCall> start_call(std::shared_ptr<const Method> method,
                                         CallContext::Clock::time_point deadline, CallContext::Metadata metadata,
                                         std::optional<ucred> peer, std::string request) override;

 private:
  ServerLoop(UnixListener listener, std::shared_ptr<const MethodTable> methods, Settings settings);
  void run();
  void accept_connections();
  void drain_ready();
  int next_timeout_ms() const;

  UnixListener listener_;
  const std::shared_ptr<const MethodTable> methods_;
  const Settings settings_;
  UniqueFd epoll_;
  std::shared_ptr<ReadyQueue> ready_;
  std::shared_ptr<HandlerPool> pool_;
  std::unordered_map<int, std::unique_ptr<Http2Connection>> connections_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace berth::grpc

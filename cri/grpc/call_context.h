// What a handler knows about its call: deadline, cancellation, metadata, peer.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::grpc {

class CallContext {
 public:
  using Clock = std::chrono::steady_clock;
  // Request headers that are not part of the gRPC framing, names in lower case.
  using Metadata = std::vector<std::pair<std::string, std::string>>;

  CallContext(std::string method, Clock::time_point deadline, Metadata metadata,
              std::optional<ucred> peer);
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;

  // "/runtime.v1.RuntimeService/Version".
  const std::string& method() const { return method_; }

  // True once the client cancelled or went away, the deadline passed, or the server
  // is stopping. Long handlers check it and give up early.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Clock::time_point::max() when the client sent no grpc-timeout.
  Clock::time_point deadline() const { return deadline_; }
  bool has_deadline() const { return deadline_ != Clock::time_point::max(); }

  // First value of a metadata key (lower case), e.g. "user-agent".
  std::optional<std::string_view> metadata(std::string_view key) const;
  const Metadata& all_metadata() const { return metadata_; }

  // Credentials of the client process (SO_PEERCRED), when the kernel gave them.
  const std::optional<ucred>& peer() const { return peer_; }

  // Sleeps until the call is cancelled or `until`; true when cancelled. For
  // handlers that wait on something else (events, timers) and must still notice
  // the client leaving.
  bool wait_cancelled_until(Clock::time_point until) const;

 private:
  friend class ServerCall;
  void cancel();

  std::string method_;
  Clock::time_point deadline_;
  Metadata metadata_;
  std::optional<ucred> peer_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

}  // namespace berth::grpc

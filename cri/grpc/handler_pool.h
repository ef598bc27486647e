// One thread per running call, up to a cap. Calls block for seconds (image pulls,
// stop timeouts), so they must not share threads; an idle server has none.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace berth::grpc {

class HandlerPool : public std::enable_shared_from_this<HandlerPool> {
 public:
  // `on_exit` runs on a handler thread after its work is done, so the owner can
  // reap() it promptly.
  static std::shared_ptr<HandlerPool> create(size_t max_threads, std::function<void()> on_exit);
  ~HandlerPool();

  // Runs `work` on a new thread. False at the cap or when no thread can be made.
  bool spawn(std::function<void()> work);

  // Joins threads whose work is done.
  void reap();

  // Waits until no work runs; false on timeout.
  bool wait_idle(std::chrono::milliseconds timeout);

  // Gives up on threads still running (after a failed wait_idle) so they end on
  // their own; returns how many.
  size_t detach_running();

  size_t running() const;

 private:
  HandlerPool(size_t max_threads, std::function<void()> on_exit)
      : max_threads_(max_threads), on_exit_(std::move(on_exit)) {}
  void exited(uint64_t id);

  const size_t max_threads_;
  const std::function<void()> on_exit_;
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::unordered_map<uint64_t, std::thread> threads_;
  std::vector<uint64_t> exited_;
  uint64_t next_id_ = 0;
  size_t running_ = 0;
};

}  // namespace berth::grpc

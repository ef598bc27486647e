#include "cri/grpc/handler_pool.h"

#include <system_error>

namespace berth::grpc {

std::shared_ptr<HandlerPool> HandlerPool::create(size_t max_threads, std::function<void()> on_exit) {
  return std::shared_ptr<HandlerPool>(new HandlerPool(max_threads, std::move(on_exit)));
}

HandlerPool::~HandlerPool() {
  // The last reference may be dropped by a detached straggler or by a thread
  // that already called exited(); never join the current thread.
  for (auto& [id, thread] : threads_) {
    if (!thread.joinable()) continue;
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }
}

bool HandlerPool::spawn(std::function<void()> work) {
  reap();
  std::lock_guard lock(mu_);
  if (running_ >= max_threads_) return false;
  uint64_t id = next_id_++;
  try {
    // Holding mu_ here keeps exited(id) from running before the map has the thread.
    threads_.emplace(id, std::thread([self = shared_from_this(), id, work = std::move(work)] {
                       work();
                       self->exited(id);
                     }));
  } catch (const std::system_error&) {
    return false;
  }
  ++running_;
  return true;
}

void HandlerPool::exited(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    exited_.push_back(id);
    --running_;
  }
  idle_cv_.notify_all();
  if (on_exit_) on_exit_();
}

void HandlerPool::reap() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : exited_) {
      auto it = threads_.find(id);
      if (it == threads_.end()) continue;  // detached earlier
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    exited_.clear();
  }
  for (auto& thread : done) {
    if (thread.joinable()) thread.join();
  }
}

bool HandlerPool::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [this] { return running_ == 0; });
}

size_t HandlerPool::detach_running() {
  reap();
  std::lock_guard lock(mu_);
  size_t count = threads_.size();
  for (auto& [id, thread] : threads_) thread.detach();
  threads_.clear();
  return count;
}

size_t HandlerPool::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

}  // namespace berth::grpc

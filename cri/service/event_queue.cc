#include "cri/service/event_queue.h"

namespace berth::cri {

EventQueue::Push EventQueue::push(const pod::Event& event) {
  Push result = Push::queued;
  {
    std::lock_guard lock(mu_);
    if (closed_ || overflowed_) return Push::dropped;
    if (events_.size() >= capacity_) {
      overflowed_ = true;
      events_.clear();
      result = Push::overflowed;
    } else {
      events_.push_back(event);
    }
  }
  cv_.notify_one();
  return result;
}

std::optional<pod::Event> EventQueue::pop(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, until, [&] { return closed_ || overflowed_ || !events_.empty(); });
  if (closed_ || overflowed_ || events_.empty()) return std::nullopt;
  pod::Event event = std::move(events_.front());
  events_.pop_front();
  return event;
}

void EventQueue::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool EventQueue::overflowed() const {
  std::lock_guard lock(mu_);
  return overflowed_;
}

}  // namespace berth::cri

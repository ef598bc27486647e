// One GetContainerEvents subscriber's backlog. The engine pushes from its own
// threads and must never wait for a slow client, so a full queue does not block:
// the subscriber is marked overflowed and takes no more events; its stream then ends
// and the client resubscribes (kubelet relists meanwhile). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

#include "runtime/containerizer/containerizer.h"

namespace berth::cri {

class EventQueue {
 public:
  enum class Push { queued, overflowed, dropped };  // overflowed: this push filled it up

  explicit EventQueue(size_t capacity) : capacity_(capacity) {}

  // Never blocks. `overflowed` is returned once, for the push that found the queue
  // full; later pushes are `dropped`.
  Push push(const pod::Event& event);
  // The next event, waiting until `until`; nullopt on timeout, once closed, and once
  // overflowed (events queued before the overflow are dropped: the client must relist).
  std::optional<pod::Event> pop(std::chrono::steady_clock::time_point until);
  void close();
  bool overflowed() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pod::Event> events_;
  bool overflowed_ = false;
  bool closed_ = false;
};

}  // namespace berth::cri

#include "cri/grpc/ready_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "cri/grpc/server_call.h"

namespace berth::grpc {

Result<std::shared_ptr<ReadyQueue>> ReadyQueue::create() {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return sys_fail("eventfd");
  return std::shared_ptr<ReadyQueue>(new ReadyQueue(UniqueFd(fd)));
}

void ReadyQueue::post(std::shared_ptr<ServerCall> call) {
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    was_empty = calls_.empty();
    calls_.push_back(std::move(call));
  }
  // A non-empty list means a wake-up is already pending.
  if (was_empty) wake();
}

void ReadyQueue::wake() {
  uint64_t one = 1;
  // EAGAIN only when the counter is saturated, which still wakes the loop.
  [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
}

std::vector<std::shared_ptr<ServerCall>> ReadyQueue::drain() {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(fd_.get(), &count, sizeof count);
  std::lock_guard lock(mu_);
  return std::exchange(calls_, {});
}

}  // namespace berth::grpc

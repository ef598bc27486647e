// Hands calls with new output from handler threads to the event loop: a list plus
// an eventfd the loop polls.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace berth::grpc {

class ServerCall;

class ReadyQueue {
 public:
  static Result<std::shared_ptr<ReadyQueue>> create();

  int fd() const { return fd_.get(); }

  // Any thread: `call` has output or has finished.
  void post(std::shared_ptr<ServerCall> call);
  // Any thread: wake the loop without a call (stop, a handler thread exited).
  void wake();

  // Loop thread: takes the posted calls and resets the eventfd.
  std::vector<std::shared_ptr<ServerCall>> drain();

 private:
  explicit ReadyQueue(UniqueFd fd) : fd_(std::move(fd)) {}

  UniqueFd fd_;
  std::mutex mu_;
  std::vector<std::shared_ptr<ServerCall>> calls_;
};

}  // namespace berth::grpc

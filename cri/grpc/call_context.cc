#include "cri/grpc/call_context.h"

namespace berth::grpc {

CallContext::CallContext(std::string method, Clock::time_point deadline, Metadata metadata,
                         std::optional<ucred> peer)
    : method_(std::move(method)), deadline_(deadline), metadata_(std::move(metadata)), peer_(peer) {}

std::optional<std::string_view> CallContext::metadata(std::string_view key) const {
  for (const auto& [name, value] : metadata_) {
    if (name == key) return std::string_view(value);
  }
  return std::nullopt;
}

bool CallContext::wait_cancelled_until(Clock::time_point until) const {
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, until, [this] { return cancelled(); });
}

void CallContext::cancel() {
  {
    // Set under the lock so a waiter between its check and its sleep cannot miss it.
    std::lock_guard lock(mu_);
    cancelled_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

}  // namespace berth::grpc

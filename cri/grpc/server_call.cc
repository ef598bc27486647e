#include "cri/grpc/server_call.h"

#include <algorithm>
#include <cstring>

#include "cri/grpc/frame_codec.h"
#include "cri/grpc/ready_queue.h"

namespace berth::grpc {

ServerCall::ServerCall(std::string method, CallContext::Clock::time_point deadline,
                       CallContext::Metadata metadata, std::optional<ucred> peer, size_t max_send_bytes,
                       std::weak_ptr<ReadyQueue> ready)
    : context_(std::move(method), deadline, std::move(metadata), peer),
      max_send_bytes_(max_send_bytes),
      ready_(std::move(ready)) {}

bool ServerCall::send(const google::protobuf::MessageLite& message) {
  if (context_.cancelled()) return false;
  size_t size = message.ByteSizeLong();
  if (size > max_send_bytes_ || size > UINT32_MAX) {
    std::lock_guard lock(mu_);
    if (!override_) {
      override_ = CallStatus{StatusCode::resource_exhausted,
                             "response message of " + std::to_string(size) +
                                 " bytes is larger than the limit of " + std::to_string(max_send_bytes_)};
    }
    return false;
  }
  // Serialize on the handler thread, never on the loop.
  std::string framed(kMessagePrefixSize + size, '\0');
  write_message_prefix(framed.data(), static_cast<uint32_t>(size));
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(framed.data() + kMessagePrefixSize));
  {
    std::unique_lock lock(mu_);
    space_cv_.wait(lock, [this] { return out_bytes_ < kMaxQueuedBytes || context_.cancelled(); });
    if (context_.cancelled() || finished_ || override_) return false;
    out_bytes_ += framed.size();
    out_.push_back(std::move(framed));
  }
  post();
  return true;
}

void ServerCall::finish(CallStatus status) {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = true;
    status_ = std::move(status);
  }
  post();
}

void ServerCall::cancel() {
  context_.cancel();
  { std::lock_guard lock(mu_); }  // pairs with the writer's predicate check
  space_cv_.notify_all();
}

void ServerCall::expire() {
  {
    std::lock_guard lock(mu_);
    if (!override_) override_ = CallStatus{StatusCode::deadline_exceeded, "deadline exceeded"};
    // Drop what the client has not started to receive; a half-sent message must
    // be completed or the client sees a framing error instead of the status.
    while (out_.size() > (front_sent_ > 0 ? 1u : 0u)) {
      out_bytes_ -= out_.back().size();
      out_.pop_back();
    }
    finished_ = true;
  }
  cancel();
}

ServerCall::Snapshot ServerCall::snapshot() const {
  std::lock_guard lock(mu_);
  return Snapshot{!out_.empty(), finished_, finished_ ? final_status() : CallStatus{}};
}

ServerCall::Chunk ServerCall::read_output(uint8_t* out, size_t max) {
  Chunk chunk;
  bool freed = false;
  {
    std::lock_guard lock(mu_);
    while (chunk.bytes < max && !out_.empty()) {
      const std::string& front = out_.front();
      size_t take = std::min(max - chunk.bytes, front.size() - front_sent_);
      std::memcpy(out + chunk.bytes, front.data() + front_sent_, take);
      chunk.bytes += take;
      front_sent_ += take;
      if (front_sent_ == front.size()) {
        out_bytes_ -= front.size();
        out_.pop_front();
        front_sent_ = 0;
        freed = true;
      }
    }
    if (out_.empty() && finished_) {
      chunk.done = true;
      chunk.status = final_status();
    }
  }
  if (freed) space_cv_.notify_all();
  return chunk;
}

void ServerCall::post() {
  if (posted_.exchange(true, std::memory_order_acq_rel)) return;
  if (auto ready = ready_.lock()) ready->post(shared_from_this());
}

CallStatus ServerCall::final_status() const {
  return override_ ? *override_ : status_;
}

}  // namespace berth::grpc

// One dispatched call, shared between its handler thread and the event loop.
//
// The handler side queues framed response messages and the final status; the loop
// side pulls bytes out for nghttp2 and learns of new output through the
// ReadyQueue. The handler never touches a session or a socket, so a connection can
// close under a running handler safely.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cri/grpc/call_context.h"
#include "cri/grpc/status.h"
#include "cri/grpc/stream_writer.h"

namespace berth::grpc {

class Http2Connection;
class ReadyQueue;

class ServerCall final : public MessageSink, public std::enable_shared_from_this<ServerCall> {
 public:
  // A writer blocks once this much output waits for a slow client.
  static constexpr size_t kMaxQueuedBytes = 1 << 20;

  ServerCall(std::string method, CallContext::Clock::time_point deadline, CallContext::Metadata metadata,
             std::optional<ucred> peer, size_t max_send_bytes, std::weak_ptr<ReadyQueue> ready);

  CallContext& context() { return context_; }

  // --- handler thread ---
  bool send(const google::protobuf::MessageLite& message) override;
  // The handler returned. Later calls are ignored.
  void finish(CallStatus status);

  // --- loop thread ---
  // The client went away or the server is stopping.
  void cancel();
  // The deadline passed: the response ends now with DEADLINE_EXCEEDED, whatever
  // the handler does later.
  void expire();

  struct Snapshot {
    bool has_output = false;
    bool finished = false;
    CallStatus status;
  };
  Snapshot snapshot() const;

  struct Chunk {
    size_t bytes = 0;
    bool done = false;  // every byte handed out and the status is final
    CallStatus status;  // valid when done
  };
  // Copies up to `max` queued response bytes into `out`.
  Chunk read_output(uint8_t* out, size_t max);

  // Loop-only binding to the HTTP/2 stream; conn is null once the stream is gone.
  void bind(Http2Connection* conn, int32_t stream_id) {
    conn_ = conn;
    stream_id_ = stream_id;
  }
  Http2Connection* connection() const { return conn_; }
  int32_t stream_id() const { return stream_id_; }

  // The loop clears this before looking at the call, so a post that races with
  // the look is never lost.
  void clear_posted() { posted_.store(false, std::memory_order_release); }

 private:
  void post();
  CallStatus final_status() const;  // mu_ held

  CallContext context_;
  const size_t max_send_bytes_;
  const std::weak_ptr<ReadyQueue> ready_;
  std::atomic<bool> posted_{false};

  mutable std::mutex mu_;
  std::condition_variable space_cv_;  // writers waiting for the queue to drain
  std::deque<std::string> out_;       // framed messages
  size_t out_bytes_ = 0;
  size_t front_sent_ = 0;             // bytes of out_.front() already handed out
  bool finished_ = false;             // no more output will come
  CallStatus status_;
  std::optional<CallStatus> override_;  // deadline or send-limit failure: wins

  Http2Connection* conn_ = nullptr;
  int32_t stream_id_ = 0;
};

}  // namespace berth::grpc

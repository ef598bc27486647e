// How handlers hand response messages to the server.
#pragma once

#include <google/protobuf/message_lite.h>

namespace berth::grpc {

// Receives one call's response messages; the server implements it per call.
class MessageSink {
 public:
  // Queues a message for the client. Blocks while much is already queued for a
  // slow reader. False when the message cannot go out: client gone, call
  // cancelled, or the message is over the send limit (the call then ends with
  // RESOURCE_EXHAUSTED).
  virtual bool send(const google::protobuf::MessageLite& message) = 0;

 protected:
  ~MessageSink() = default;
};

// The typed face of a server-streaming response.
template <class Resp>
class StreamWriter {
 public:
  explicit StreamWriter(MessageSink& sink) : sink_(sink) {}

  // False once the client is gone: stop writing and return.
  bool write(const Resp& message) { return sink_.send(message); }

 private:
  MessageSink& sink_;
};

}  // namespace berth::grpc

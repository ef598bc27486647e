// A registered gRPC method with its request type erased; GrpcServer's typed
// unary/server_stream wrappers produce these.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cri/grpc/call_context.h"
#include "cri/grpc/status.h"
#include "cri/grpc/stream_writer.h"

namespace berth::grpc {

// Parses `request` (one serialized message), runs the handler and sends its
// response message(s) to the sink.
using RawHandler = std::function<CallStatus(CallContext&, std::string_view request, MessageSink&)>;

struct Method {
  std::string path;
  RawHandler handler;
};

// Keyed by path; shared with handler threads so that a handler still running
// after its server is gone never runs a destroyed std::function.
using MethodTable = std::unordered_map<std::string, std::shared_ptr<const Method>>;

}  // namespace berth::grpc

// berth's own gRPC server: HTTP/2 cleartext with prior knowledge on a unix socket
// (what grpc-go and grpc++ clients speak there), built on libnghttp2 and
// libprotobuf messages. A grpc++ server costs more idle memory than all of berthd
// may use.
//
//   GrpcServer server({.socket_path = "/run/berth/berth.sock"});
//   server.unary<runtime::v1::VersionRequest, runtime::v1::VersionResponse>(
//       "/runtime.v1.RuntimeService/Version",
//       [](CallContext&, const auto& req, auto& resp) { ...; return CallStatus{}; });
//   BERTH_TRY_VOID(server.start());
//
// Each call's handler runs on its own thread (capped), so handlers may block.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"
#include "cri/grpc/call_context.h"
#include "cri/grpc/method.h"
#include "cri/grpc/status.h"
#include "cri/grpc/stream_writer.h"

namespace berth::grpc {

class ServerLoop;

class GrpcServer {
 public:
  struct Options {
    std::string socket_path;
    mode_t socket_mode = 0600;
    // Calls running at once; more get RESOURCE_EXHAUSTED.
    size_t max_concurrent_calls = 1024;
    size_t max_receive_bytes = 16 << 20;
    size_t max_send_bytes = 16 << 20;
    // How long stop() waits for handlers after cancelling them.
    std::chrono::milliseconds stop_timeout{5000};
  };

  explicit GrpcServer(Options options);
  ~GrpcServer();  // stop()
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Registers a unary method under its full path, "/<package>.<Service>/<Method>".
  // Register everything before start().
  template <class Req, class Resp>
  void unary(std::string method_path, std::function<CallStatus(CallContext&, const Req&, Resp&)> handler);

  // A server-streaming method: the handler writes any number of messages, then
  // returns the status that ends the stream.
  template <class Req, class Resp>
  void server_stream(std::string method_path,
                     std::function<CallStatus(CallContext&, const Req&, StreamWriter<Resp>&)> handler);

  // Binds the socket (see UnixListener::bind: EADDRINUSE when another daemon
  // serves there) and serves on its own event-loop thread. start() after stop()
  // serves again.
  Result<> start();

  // Stops accepting, cancels every call (CallContext::cancelled(), write() returns
  // false), waits up to stop_timeout for handlers, closes everything and removes
  // the socket. Idempotent.
  void stop();

  const Options& options() const { return options_; }

 private:
  void add_method(std::string path, RawHandler handler);

  Options options_;
  MethodTable methods_;
  std::unique_ptr<ServerLoop> loop_;
};

namespace detail {

template <class Req>
bool parse_request(std::string_view bytes, Req& request) {
  return request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

inline CallStatus unparsable(const std::string& type) {
  return {StatusCode::internal, "cannot parse the request as " + type};
}

}  // namespace detail

template <class Req, class Resp>
void GrpcServer::unary(std::string method_path,
                       std::function<CallStatus(CallContext&, const Req&, Resp&)> handler) {
  add_method(std::move(method_path), [handler = std::move(handler)](CallContext& ctx, std::string_view bytes,
                                                                    MessageSink& sink) -> CallStatus {
    Req request;
    if (!detail::parse_request(bytes, request)) return detail::unparsable(request.GetTypeName());
    Resp response;
    CallStatus status = handler(ctx, request, response);
    // A response over the send limit turns the call into RESOURCE_EXHAUSTED.
    if (status.ok()) sink.send(response);
    return status;
  });
}

template <class Req, class Resp>
void GrpcServer::server_stream(std::string method_path,
                               std::function<CallStatus(CallContext&, const Req&, StreamWriter<Resp>&)> handler) {
  add_method(std::move(method_path), [handler = std::move(handler)](CallContext& ctx, std::string_view bytes,
                                                                    MessageSink& sink) -> CallStatus {
    Req request;
    if (!detail::parse_request(bytes, request)) return detail::unparsable(request.GetTypeName());
    StreamWriter<Resp> writer(sink);
    return handler(ctx, request, writer);
  });
}

}  // namespace berth::grpc

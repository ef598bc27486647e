#include "cri/grpc/grpc_server.h"

#include "cri/grpc/server_loop.h"
#include "cri/grpc/unix_listener.h"

namespace berth::grpc {

GrpcServer::GrpcServer(Options options) : options_(std::move(options)) {}

GrpcServer::~GrpcServer() { stop(); }

void GrpcServer::add_method(std::string path, RawHandler handler) {
  auto method = std::make_shared<Method>(Method{path, std::move(handler)});
  methods_[std::move(path)] = std::move(method);
}

Result<> GrpcServer::start() {
  if (loop_) return fail(EALREADY, "gRPC server on " + options_.socket_path + " is already running");
  if (options_.max_concurrent_calls == 0) return invalid("max_concurrent_calls must be at least 1");
  UnixListener listener = BERTH_TRY(UnixListener::bind(options_.socket_path, options_.socket_mode));
  ServerLoop::Settings settings{options_.max_concurrent_calls, options_.max_receive_bytes,
                                options_.max_send_bytes, options_.stop_timeout};
  // The running server gets its own copy: registration stays single-threaded.
  loop_ = BERTH_TRY(ServerLoop::start(std::move(listener), std::make_shared<const MethodTable>(methods_), settings));
  return {};
}

void GrpcServer::stop() {
  if (!loop_) return;
  loop_->stop();
  loop_.reset();
}

}  // namespace berth::grpc

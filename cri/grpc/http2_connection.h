// One client connection: an nghttp2 server session over a non-blocking unix
// socket, turning HTTP/2 streams into gRPC calls. Lives on the event-loop thread
// only.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/error.h"
#include "common/unique_fd.h"
#include "cri/grpc/call_context.h"
#include "cri/grpc/method.h"
#include "cri/grpc/status.h"

struct nghttp2_session;

namespace berth::grpc {

class ServerCall;

// What a connection needs from the server that owns it.
class CallHost {
 public:
  virtual std::shared_ptr<const Method> find_method(const std::string& path) const = 0;
  // Runs `method` on its own thread for a complete request; null when the server
  // is at its call limit or stopping.
  virtual std::shared_ptr<ServerCall> start_call(std::shared_ptr<const Method> method,
                                                 CallContext::Clock::time_point deadline,
                                                 CallContext::Metadata metadata, std::optional<ucred> peer,
                                                 std::string request) = 0;

 protected:
  ~CallHost() = default;
};

class Http2Connection {
 public:
  using Clock = CallContext::Clock;

  struct Limits {
    size_t max_receive_bytes;
    uint32_t max_concurrent_streams;
  };

  Http2Connection(UniqueFd fd, int epoll_fd, std::optional<ucred> peer, Limits limits, CallHost& host);
  ~Http2Connection();  // cancels the calls still running on this connection
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Creates the session, registers with epoll and queues our SETTINGS.
  Result<> start();

  int fd() const { return fd_.get(); }
  // True once the connection is finished; the owner then destroys it.
  bool closed() const { return closed_; }

  void on_readable();
  void on_writable();

  // `call` (bound to this connection) has new output or finished.
  void service(ServerCall& call);

  // Ends calls whose grpc-timeout passed.
  void expire_deadlines(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;

  // Server stop: GOAWAY, cancel every call, flush what the socket takes now.
  void shutdown();

 private:
  struct Stream;
  struct Callbacks;

  Stream* find_stream(int32_t id);
  void on_request_headers(Stream& s);
  void on_request_end(Stream& s);
  void service_stream(Stream& s);
  void respond_status(Stream& s, const CallStatus& status, int http_status = 200);
  void respond_messages(Stream& s);
  void flush();
  void update_epoll();

  UniqueFd fd_;
  int epoll_fd_;
  std::optional<ucred> peer_;
  Limits limits_;
  CallHost& host_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  bool closed_ = false;
  bool write_blocked_ = false;  // the socket refused bytes: wait for EPOLLOUT
  bool epoll_out_ = false;      // EPOLLOUT is registered
};

}  // namespace berth::grpc

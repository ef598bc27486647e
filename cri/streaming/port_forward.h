// CRI PortForward: TCP connections to ports on the pod's loopback, made inside the
// pod's network namespace, relayed over the client's connection.
//
// SPDY (portforward.k8s.io): per forwarded connection the client opens an `error` and
// a `data` stream carrying the same `port` and `requestID` headers; the pair may come
// in either order. Any number of pairs, to any ports, may be open at once.
// WebSocket (v4.channel.k8s.io and friends): the ports come from the URL's `port`
// parameters, one connection each for the life of the websocket; channel 2i carries
// the i-th port's data and 2i+1 its errors, and the server first writes the port
// number (2 bytes, little-endian) on both.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/websocket_connection.h"
#include "runtime/containerizer/containerizer.h"

namespace berth::streaming {

// One forwarded TCP connection: its socket, data the client sent before it was
// connected, and whether the client already finished sending.
class ForwardedConnection {
 public:
  void connected(UniqueFd socket);
  // Client → pod. Blocks while the pod does not read.
  void send(std::string_view data);
  void client_done_sending();
  // Tears the TCP connection down: the pump ends.
  void abort();
  // Pod → client until EOF or abort; `sink` returns false once the client is gone.
  void pump(const std::function<bool(std::string_view)>& sink);

 private:
  std::mutex mu_;
  UniqueFd socket_;
  std::string early_;
  bool client_done_ = false;
  bool aborted_ = false;
};

class SpdyPortForward final : public SpdyConnection::Handler {
 public:
  SpdyPortForward(SpdyConnection& connection, pod::Containerizer& containerizer, std::string pod_id,
                  std::chrono::milliseconds pair_timeout, size_t max_connections);
  // Aborts every forwarded connection and waits for their threads.
  ~SpdyPortForward();

  bool on_stream(uint32_t id, const spdy::HeaderList& headers) override;
  void on_data(uint32_t id, std::string_view data) override;
  void on_remote_close(uint32_t id) override;
  void on_reset(uint32_t id) override;

 private:
  struct Pair {
    std::string request_id;
    uint16_t port = 0;
    std::string bad_port;  // why the port header could not be used
    std::optional<uint32_t> data_stream, error_stream;
    std::chrono::steady_clock::time_point opened;
    ForwardedConnection connection;
    bool started = false;
  };

  void forward(std::shared_ptr<Pair> pair);
  void fail_pair(const Pair& pair, const std::string& message);
  void watch_timeouts();
  std::shared_ptr<Pair> pair_of(uint32_t stream);

  SpdyConnection& connection_;
  pod::Containerizer& containerizer_;
  std::string pod_id_;
  std::chrono::milliseconds pair_timeout_;
  size_t max_connections_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Pair>> pairs_;  // by request id, until both streams end
  std::map<uint32_t, std::shared_ptr<Pair>> by_stream_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  // Finished workers are joined by the watchdog, so a long session does not keep
  // the stacks of every connection it ever forwarded.
  std::vector<Worker> workers_;
  std::thread watchdog_;
};

class WebSocketPortForward final : public WebSocketConnection::Handler {
 public:
  WebSocketPortForward(WebSocketConnection& connection, pod::Containerizer& containerizer, std::string pod_id,
                       std::vector<uint16_t> ports);
  ~WebSocketPortForward();

  // Session thread: announces the ports, forwards until every connection ended or
  // the client left, then closes the websocket.
  void run();
  void client_gone();

  void on_message(uint8_t channel, std::string_view data) override;

 private:
  WebSocketConnection& connection_;
  pod::Containerizer& containerizer_;
  std::string pod_id_;
  std::vector<uint16_t> ports_;
  std::vector<std::unique_ptr<ForwardedConnection>> connections_;
};

// Parses a port header or query value: 1-65535, digits only.
std::optional<uint16_t> parse_port(std::string_view text);

}  // namespace berth::streaming

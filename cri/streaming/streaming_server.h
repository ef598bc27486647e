// berthd's streaming server: where the URLs of CRI Exec, Attach and PortForward lead.
// kubelet (or any client) connects to /exec/<token>, /attach/<token> or
// /portforward/<token> and upgrades the HTTP request to SPDY/3.1 or WebSocket; the
// token names the cached CRI request, which defines everything that runs.
//
// One thread per connection (a few more while a session runs: output pumps,
// forwarded connections). The number of connections is capped, each one idles out,
// and a client that vanishes takes its processes and sockets with it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/unique_fd.h"
#include "cri/streaming/request_cache.h"
#include "runtime/containerizer/containerizer.h"

namespace berth::streaming {

class ClientSocket;

struct StreamingServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  uint16_t port = 0;                  // 0: any free port
  std::chrono::milliseconds token_ttl = std::chrono::minutes(1);
  size_t max_pending_requests = 1000;
  // No traffic either way for this long ends a session (kubelet's default is 4h).
  std::chrono::milliseconds idle_timeout = std::chrono::hours(4);
  // How long a SPDY client may take to open its streams, or half of a port-forward pair.
  std::chrono::milliseconds stream_creation_timeout = std::chrono::seconds(30);
  // How long a client may take to send its HTTP request.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  size_t max_connections = 128;
  size_t max_forwarded_connections = 256;  // per port-forward session
};

class StreamingServer {
 public:
  static Result<std::unique_ptr<StreamingServer>> start(pod::Containerizer& containerizer,
                                                        StreamingServerOptions options);
  // Stops accepting, ends every session (killing what they run) and waits for them.
  ~StreamingServer();

  // "http://127.0.0.1:PORT"
  const std::string& base_url() const { return base_url_; }
  // Caches the request and returns the URL that redeems it; EAGAIN when too many wait.
  Result<std::string> url_for(CachedRequest request);
  size_t active_connections() const { return active_.load(); }

 private:
  StreamingServer(pod::Containerizer& containerizer, StreamingServerOptions options);
  void accept_loop();
  void serve_connection(UniqueFd fd);
  // Answers the upgrade on a tracked socket (shut down if the server stops) and runs
  // the session on it.
  void upgraded(UniqueFd fd, const std::string& response, const std::function<void(ClientSocket&)>& session);

  pod::Containerizer& containerizer_;
  StreamingServerOptions options_;
  RequestCache cache_;
  UniqueFd listener_;
  UniqueFd stop_fd_;
  std::string base_url_;
  std::thread acceptor_;
  std::atomic<size_t> active_{0};
  std::mutex sessions_mu_;
  std::condition_variable sessions_cv_;
  std::set<ClientSocket*> sockets_;
  std::set<int> reading_;  // connections whose HTTP request is not in yet
  bool stopping_ = false;
};

}  // namespace berth::streaming

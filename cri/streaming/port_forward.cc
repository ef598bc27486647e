#include "cri/streaming/port_forward.h"

#include <poll.h>
#include <sys/socket.h>

#include <charconv>

namespace berth::streaming {

namespace {

std::string forward_error(uint16_t port, const std::string& pod_id, const std::string& why) {
  // kubelet's wording, which kubectl shows as is.
  return "error forwarding port " + std::to_string(port) + " to pod " + pod_id + ", uid : " + why;
}

}  // namespace

std::optional<uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(value);
}

// ---- ForwardedConnection ---------------------------------------------------------

void ForwardedConnection::connected(UniqueFd socket) {
  std::lock_guard g(mu_);
  if (aborted_) return;
  socket_ = std::move(socket);
  if (!early_.empty()) {
    std::string_view rest = early_;
    while (!rest.empty()) {
      ssize_t n = ::send(socket_.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      rest.remove_prefix(static_cast<size_t>(n));
    }
    early_.clear();
  }
  if (client_done_) ::shutdown(socket_.get(), SHUT_WR);
}

void ForwardedConnection::send(std::string_view data) {
  int fd;
  {
    std::lock_guard g(mu_);
    if (aborted_ || client_done_) return;
    if (!socket_) {
      // Not connected yet (that takes a namespace switch): hold on to it.
      early_.append(data);
      return;
    }
    fd = socket_.get();
  }
  // Outside the lock, so a pod that does not read stalls only this sender.
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void ForwardedConnection::client_done_sending() {
  std::lock_guard g(mu_);
  client_done_ = true;
  if (socket_) ::shutdown(socket_.get(), SHUT_WR);
}

void ForwardedConnection::abort() {
  std::lock_guard g(mu_);
  aborted_ = true;
  if (socket_) ::shutdown(socket_.get(), SHUT_RDWR);
}

void ForwardedConnection::pump(const std::function<bool(std::string_view)>& sink) {
  int fd;
  {
    std::lock_guard g(mu_);
    if (aborted_ || !socket_) return;
    fd = socket_.get();
  }
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (!sink(std::string_view(buf.data(), static_cast<size_t>(n)))) return;
  }
}

// ---- SPDY ------------------------------------------------------------------------

SpdyPortForward::SpdyPortForward(SpdyConnection& connection, pod::Containerizer& containerizer, std::string pod_id,
                                 std::chrono::milliseconds pair_timeout, size_t max_connections)
    : connection_(connection),
      containerizer_(containerizer),
      pod_id_(std::move(pod_id)),
      pair_timeout_(pair_timeout),
      max_connections_(max_connections) {
  watchdog_ = std::thread([this] { watch_timeouts(); });
}

SpdyPortForward::~SpdyPortForward() {
  {
    std::lock_guard g(mu_);
    stopping_ = true;
    for (auto& [id, pair] : pairs_) pair->connection.abort();
  }
  stop_cv_.notify_all();
  watchdog_.join();
  // Workers erase themselves from pairs_ under mu_; no new ones start once stopping_.
  for (auto& w : workers_) w.thread.join();
}

void SpdyPortForward::watch_timeouts() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(500));
    std::erase_if(workers_, [](Worker& w) {
      if (!w.done->load()) return false;
      w.thread.join();
      return true;
    });
    auto now = std::chrono::steady_clock::now();
    for (auto it = pairs_.begin(); it != pairs_.end();) {
      auto& pair = it->second;
      if (pair->started || now - pair->opened < pair_timeout_) {
        ++it;
        continue;
      }
      // Half a pair for too long: the client will not complete it.
      for (auto stream : {pair->data_stream, pair->error_stream})
        if (stream) {
          by_stream_.erase(*stream);
          connection_.reset_stream(*stream, spdy::kCancel);
        }
      it = pairs_.erase(it);
    }
  }
}

std::shared_ptr<SpdyPortForward::Pair> SpdyPortForward::pair_of(uint32_t stream) {
  std::lock_guard g(mu_);
  auto it = by_stream_.find(stream);
  return it == by_stream_.end() ? nullptr : it->second;
}

void SpdyPortForward::fail_pair(const Pair& pair, const std::string& message) {
  if (pair.error_stream) {
    (void)connection_.send(*pair.error_stream, message);
    (void)connection_.close_stream(*pair.error_stream);
  }
  if (pair.data_stream) (void)connection_.close_stream(*pair.data_stream);
}

bool SpdyPortForward::on_stream(uint32_t id, const spdy::HeaderList& headers) {
  auto type = spdy::find_header(headers, "streamtype");
  if (!type || (*type != "data" && *type != "error")) return false;
  bool is_data = *type == "data";
  std::string request_id(spdy::find_header(headers, "requestid").value_or(""));
  if (request_id.empty()) {
    // Clients before requestID headers open error then data streams back to back, so
    // their stream ids are two apart (best effort, as kubelet does).
    request_id = std::to_string(is_data ? id - 2 : id);
  }
  auto port_text = spdy::find_header(headers, "port");
  auto port = port_text ? parse_port(*port_text) : std::nullopt;

  std::shared_ptr<Pair> start;
  {
    std::lock_guard g(mu_);
    auto& pair = pairs_[request_id];
    if (!pair) {
      if (pairs_.size() > max_connections_) {
        pairs_.erase(request_id);
        return false;
      }
      pair = std::make_shared<Pair>();
      pair->request_id = request_id;
      pair->opened = std::chrono::steady_clock::now();
    }
    auto& slot = is_data ? pair->data_stream : pair->error_stream;
    if (slot) return false;  // a second stream of the same kind
    slot = id;
    by_stream_[id] = pair;
    if (port) pair->port = *port;
    else pair->bad_port = port_text ? "invalid port \"" + std::string(*port_text) + "\"" : "missing port header";
    if (pair->data_stream && pair->error_stream && !pair->started) {
      pair->started = true;
      start = pair;
    }
  }
  if (start) {
    std::lock_guard g(mu_);
    if (!stopping_) {
      auto done = std::make_shared<std::atomic<bool>>(false);
      workers_.push_back(Worker{std::thread([this, start, done] {
                                  forward(start);
                                  done->store(true);
                                }),
                                done});
    }
  }
  return true;
}

void SpdyPortForward::forward(std::shared_ptr<Pair> pair) {
  auto socket = pair->bad_port.empty() ? containerizer_.connect_pod_port(pod_id_, pair->port)
                                       : Result<UniqueFd>(invalid(pair->bad_port));
  if (!socket) {
    fail_pair(*pair, forward_error(pair->port, pod_id_, socket.error().message));
  } else {
    pair->connection.connected(std::move(*socket));
    uint32_t data = *pair->data_stream;
    pair->connection.pump([&](std::string_view bytes) { return connection_.send(data, bytes).has_value(); });
    (void)connection_.close_stream(*pair->data_stream);
    (void)connection_.close_stream(*pair->error_stream);
  }
  std::lock_guard g(mu_);
  by_stream_.erase(*pair->data_stream);
  by_stream_.erase(*pair->error_stream);
  pairs_.erase(pair->request_id);
}

void SpdyPortForward::on_data(uint32_t id, std::string_view data) {
  auto pair = pair_of(id);
  if (pair && pair->data_stream == id) pair->connection.send(data);
}

void SpdyPortForward::on_remote_close(uint32_t id) {
  auto pair = pair_of(id);
  if (pair && pair->data_stream == id) pair->connection.client_done_sending();
}

void SpdyPortForward::on_reset(uint32_t id) {
  if (auto pair = pair_of(id)) pair->connection.abort();
}

// ---- WebSocket -------------------------------------------------------------------

WebSocketPortForward::WebSocketPortForward(WebSocketConnection& connection, pod::Containerizer& containerizer,
                                           std::string pod_id, std::vector<uint16_t> ports)
    : connection_(connection), containerizer_(containerizer), pod_id_(std::move(pod_id)), ports_(std::move(ports)) {
  for (size_t i = 0; i < ports_.size(); ++i) connections_.push_back(std::make_unique<ForwardedConnection>());
}

WebSocketPortForward::~WebSocketPortForward() { client_gone(); }

void WebSocketPortForward::client_gone() {
  for (auto& c : connections_) c->abort();
}

void WebSocketPortForward::run() {
  for (size_t i = 0; i < ports_.size(); ++i) {
    char port[2] = {static_cast<char>(ports_[i] & 0xff), static_cast<char>(ports_[i] >> 8)};
    for (size_t channel : {2 * i, 2 * i + 1})
      if (!connection_.send(static_cast<uint8_t>(channel), std::string_view(port, 2))) return;
  }
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ports_.size(); ++i) {
    threads.emplace_back([this, i] {
      auto socket = containerizer_.connect_pod_port(pod_id_, ports_[i]);
      if (!socket) {
        (void)connection_.send(static_cast<uint8_t>(2 * i + 1), forward_error(ports_[i], pod_id_, socket.error().message));
        return;
      }
      connections_[i]->connected(std::move(*socket));
      connections_[i]->pump(
          [&](std::string_view bytes) { return connection_.send(static_cast<uint8_t>(2 * i), bytes).has_value(); });
    });
  }
  for (auto& t : threads) t.join();
  connection_.close(1000, "");
}

void WebSocketPortForward::on_message(uint8_t channel, std::string_view data) {
  // Channel 2i carries data for the i-th port; the client never writes error channels.
  if (channel % 2 != 0 || channel / 2 >= connections_.size()) return;
  connections_[channel / 2]->send(data);
}

}  // namespace berth::streaming

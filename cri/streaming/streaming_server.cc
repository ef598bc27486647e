#include "cri/streaming/streaming_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <optional>

#include "common/log.h"
#include "cri/streaming/attach_session.h"
#include "cri/streaming/client_socket.h"
#include "cri/streaming/exec_session.h"
#include "cri/streaming/http_message.h"
#include "cri/streaming/port_forward.h"
#include "cri/streaming/spdy_command_streams.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/websocket_codec.h"
#include "cri/streaming/websocket_command_channels.h"
#include "cri/streaming/websocket_connection.h"

namespace berth::streaming {

namespace {

using namespace std::chrono_literals;

// How long the client may take to close after the session ended from our side.
constexpr auto kLinger = 5s;

struct WireProtocol {
  const char* name;
  int version;  // remote command protocol version (port forward: 0)
  bool base64;  // websocket text frames
};

// Preference is the client's: the first protocol it offers that we speak wins.
constexpr WireProtocol kSpdyCommand[] = {
    {"v4.channel.k8s.io", 4, false},
    {"v3.channel.k8s.io", 3, false},
    {"v2.channel.k8s.io", 2, false},
    {"channel.k8s.io", 1, false},
};
constexpr WireProtocol kSpdyPortForward[] = {{"portforward.k8s.io", 0, false}};
constexpr WireProtocol kWebSocketCommand[] = {
    {"v5.channel.k8s.io", 5, false},        {"v4.channel.k8s.io", 4, false}, {"v4.base64.channel.k8s.io", 4, true},
    {"channel.k8s.io", 1, false},           {"base64.channel.k8s.io", 1, true},
};
constexpr WireProtocol kWebSocketPortForward[] = {
    {"v4.channel.k8s.io", 0, false},
    {"v4.base64.channel.k8s.io", 0, true},
};

template <size_t N>
std::optional<WireProtocol> negotiate(const std::vector<std::string>& offered, const WireProtocol (&ours)[N]) {
  for (auto& want : offered)
    for (auto& p : ours)
      if (want == p.name) return p;
  return std::nullopt;
}

template <size_t N>
std::string names(const WireProtocol (&ours)[N]) {
  std::string s;
  for (auto& p : ours) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

void respond(int fd, int status, const std::string& body,
             std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.reason = std::string(reason_phrase(status));
  r.headers = std::move(headers);
  r.headers.emplace_back("Connection", "close");
  r.body = body.empty() ? body : body + "\n";
  std::string wire = serialize(r);
  std::string_view rest = wire;
  while (!rest.empty()) {
    ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

// The request head, or an HTTP error already answered (nullopt).
std::optional<std::pair<HttpRequest, std::string>> read_request(int fd, std::chrono::milliseconds timeout) {
  HttpRequestParser parser;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      respond(fd, 408, "the request did not arrive in time");
      return std::nullopt;
    }
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return std::nullopt;
    if (n <= 0) continue;
    ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;
    switch (parser.feed(buf, static_cast<size_t>(got))) {
      case HttpRequestParser::State::need_more:
        continue;
      case HttpRequestParser::State::error:
        respond(fd, parser.error_status(), parser.error_message());
        return std::nullopt;
      case HttpRequestParser::State::done:
        return std::pair{parser.request(), parser.take_leftover()};
    }
  }
}

bool is_websocket_upgrade(const HttpRequest& req) {
  auto upgrade = req.header("upgrade");
  return req.header_has_token("connection", "upgrade") && upgrade && strcasecmp(upgrade->c_str(), "websocket") == 0;
}

bool is_spdy_upgrade(const HttpRequest& req) {
  auto upgrade = req.header("upgrade");
  return req.header_has_token("connection", "upgrade") && upgrade && strcasecmp(upgrade->c_str(), "SPDY/3.1") == 0;
}

std::string url_host(const std::string& address) {
  if (address.empty() || address == "0.0.0.0") return "127.0.0.1";
  if (address == "::") return "[::1]";
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}

// The session behind an exec or attach token, and the channels it promised.
std::pair<std::unique_ptr<CommandSession>, CommandStreams> make_command(pod::Containerizer& containerizer,
                                                                          const CachedRequest& request) {
  if (auto* e = std::get_if<ExecRequest>(&request))
    return {std::make_unique<ExecSession>(containerizer, *e), CommandStreams{e->stdin, e->stdout, e->stderr, e->tty}};
  auto& a = std::get<AttachRequest>(request);
  return {std::make_unique<AttachSession>(containerizer, a), CommandStreams{a.stdin, a.stdout, a.stderr, a.tty}};
}

// Runs the command on its own thread once `ready` (the websocket announcement, or the
// SPDY streams arriving) while this thread reads the client until it leaves.
template <typename Connection, typename Channels>
void run_command(ClientSocket& socket, Connection& conn, Channels& channels, CommandSession& command,
                 const std::function<bool()>& ready) {
  std::thread session([&] {
    std::optional<CommandOutcome> outcome;
    if (ready()) outcome = command.run(channels);
    if (!outcome) return socket.shutdown();
    channels.finish(*outcome);
    socket.finish(kLinger);
  });
  conn.serve(channels);
  channels.client_gone();
  session.join();
}

}  // namespace

StreamingServer::StreamingServer(pod::Containerizer& containerizer, StreamingServerOptions options)
    : containerizer_(containerizer),
      options_(std::move(options)),
      cache_(options_.token_ttl, options_.max_pending_requests) {}

Result<std::unique_ptr<StreamingServer>> StreamingServer::start(pod::Containerizer& containerizer,
                                                                StreamingServerOptions options) {
  std::unique_ptr<StreamingServer> s(new StreamingServer(containerizer, std::move(options)));
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_INET;
  if (auto* a4 = reinterpret_cast<sockaddr_in*>(&addr); ::inet_pton(AF_INET, s->options_.address.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(s->options_.port);
    addr_len = sizeof *a4;
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
             ::inet_pton(AF_INET6, s->options_.address.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(s->options_.port);
    addr_len = sizeof *a6;
    family = AF_INET6;
  } else {
    return invalid("streaming server address \"" + s->options_.address + "\" is not an IP address");
  }
  s->listener_.reset(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s->listener_) return sys_fail("streaming server socket");
  int one = 1;
  ::setsockopt(s->listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  std::string where = s->options_.address + " port " + std::to_string(s->options_.port);
  if (::bind(s->listener_.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0)
    return sys_fail("streaming server: bind " + where);
  if (::listen(s->listener_.get(), 128) != 0) return sys_fail("streaming server: listen on " + where);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(s->listener_.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len);
  uint16_t port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  s->base_url_ = "http://" + url_host(s->options_.address) + ":" + std::to_string(port);
  s->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->stop_fd_) return sys_fail("eventfd");
  s->acceptor_ = std::thread([raw = s.get()] { raw->accept_loop(); });
  return s;
}

StreamingServer::~StreamingServer() {
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  std::unique_lock lock(sessions_mu_);
  stopping_ = true;
  for (auto* s : sockets_) s->shutdown();
  for (int fd : reading_) ::shutdown(fd, SHUT_RDWR);
  sessions_cv_.wait(lock, [&] { return active_.load() == 0; });
}

Result<std::string> StreamingServer::url_for(CachedRequest request) {
  const char* kind = std::holds_alternative<ExecRequest>(request)     ? "exec"
                     : std::holds_alternative<AttachRequest>(request) ? "attach"
                                                                       : "portforward";
  auto token = BERTH_TRY(cache_.insert(std::move(request)));
  return base_url_ + "/" + kind + "/" + token;
}

void StreamingServer::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::error("streaming server: poll: " + std::string(std::strerror(errno)));
      return;
    }
    if (fds[1].revents) return;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (active_.load() >= options_.max_connections) {
      respond(fd.get(), 503, "too many streaming sessions (" + std::to_string(options_.max_connections) + ")",
              {{"Retry-After", "1"}});
      continue;
    }
    ++active_;
    std::thread([this, f = std::move(fd)]() mutable {
      serve_connection(std::move(f));
      std::lock_guard g(sessions_mu_);
      --active_;
      sessions_cv_.notify_all();
    }).detach();
  }
}

void StreamingServer::serve_connection(UniqueFd fd) {
  // Until the request is in, stopping the server shuts the socket down directly.
  {
    std::lock_guard g(sessions_mu_);
    if (stopping_) return;
    reading_.insert(fd.get());
  }
  auto head = read_request(fd.get(), options_.request_timeout);
  {
    std::lock_guard g(sessions_mu_);
    reading_.erase(fd.get());
    if (stopping_) return;
  }
  if (!head) return;
  auto& [req, leftover] = *head;

  // /<kind>/<token>
  std::string_view path = req.path;
  auto slash = path.find('/', 1);
  std::string_view kind = slash == std::string_view::npos ? path.substr(1) : path.substr(1, slash - 1);
  std::string token(slash == std::string_view::npos ? "" : path.substr(slash + 1));
  if ((kind != "exec" && kind != "attach" && kind != "portforward") || token.empty() ||
      token.find('/') != std::string::npos) {
    respond(fd.get(), 404, "not found");
    return;
  }
  if (req.method != "GET" && req.method != "POST") {
    respond(fd.get(), 405, "method not allowed", {{"Allow", "GET, POST"}});
    return;
  }
  auto cached = cache_.consume(token);
  bool matches = cached && ((kind == "exec" && std::holds_alternative<ExecRequest>(*cached)) ||
                            (kind == "attach" && std::holds_alternative<AttachRequest>(*cached)) ||
                            (kind == "portforward" && std::holds_alternative<PortForwardRequest>(*cached)));
  if (!matches) {
    respond(fd.get(), 404, "unknown or expired streaming token");
    return;
  }
  bool port_forward = kind == "portforward";

  if (is_websocket_upgrade(req)) {
    if (req.method != "GET") {
      respond(fd.get(), 400, "a websocket upgrade must be a GET request");
      return;
    }
    if (req.header("sec-websocket-version").value_or("") != "13") {
      respond(fd.get(), 426, "websocket version 13 is required", {{"Sec-WebSocket-Version", "13"}});
      return;
    }
    auto key = req.header("sec-websocket-key");
    if (!key || !ws::valid_client_key(*key)) {
      respond(fd.get(), 400, "missing or malformed Sec-WebSocket-Key");
      return;
    }
    auto offered = req.header_values("sec-websocket-protocol");
    std::optional<WireProtocol> protocol;
    bool named = !offered.empty();
    if (!named) protocol = WireProtocol{"", port_forward ? 0 : 1, false};  // kubelet accepts no subprotocol
    else protocol = port_forward ? negotiate(offered, kWebSocketPortForward) : negotiate(offered, kWebSocketCommand);
    if (!protocol) {
      respond(fd.get(), 400,
              "unable to upgrade: none of the requested websocket protocols is supported; supported: " +
                  (port_forward ? names(kWebSocketPortForward) : names(kWebSocketCommand)));
      return;
    }
    std::vector<uint16_t> ports;
    if (port_forward) {
      for (auto& text : req.query_values("port")) {
        auto port = parse_port(text);
        if (!port) {
          respond(fd.get(), 400, "invalid port \"" + text + "\"");
          return;
        }
        ports.push_back(*port);
      }
      if (ports.empty()) {
        respond(fd.get(), 400, "query parameter \"port\" is required");
        return;
      }
    }
    HttpResponse up;
    up.status = 101;
    up.reason = std::string(reason_phrase(101));
    up.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Accept", ws::accept_key(*key)}};
    if (named) up.headers.emplace_back("Sec-WebSocket-Protocol", protocol->name);
    upgraded(std::move(fd), serialize(up), [&](ClientSocket& socket) {
      WebSocketConnection conn(socket, std::move(leftover), protocol->base64);
      if (port_forward) {
        WebSocketPortForward forward(conn, containerizer_, std::get<PortForwardRequest>(*cached).pod_id, ports);
        std::thread session([&] {
          forward.run();
          socket.finish(kLinger);
        });
        conn.serve(forward);
        forward.client_gone();
        session.join();
        return;
      }
      auto [command, streams] = make_command(containerizer_, *cached);
      WebSocketCommandChannels channels(conn, *command, streams, protocol->version);
      run_command(socket, conn, channels, *command, [&] { return channels.announce().has_value(); });
    });
    return;
  }

  if (!is_spdy_upgrade(req)) {
    respond(fd.get(), 400, "unable to upgrade: missing upgrade headers in request");
    return;
  }
  auto offered = req.header_values("x-stream-protocol-version");
  if (offered.empty()) {
    respond(fd.get(), 400, "unable to upgrade: X-Stream-Protocol-Version is required");
    return;
  }
  auto protocol = port_forward ? negotiate(offered, kSpdyPortForward) : negotiate(offered, kSpdyCommand);
  if (!protocol) {
    std::vector<std::pair<std::string, std::string>> accepted;
    if (port_forward)
      for (auto& p : kSpdyPortForward) accepted.emplace_back("X-Accepted-Stream-Protocol-Versions", p.name);
    else
      for (auto& p : kSpdyCommand) accepted.emplace_back("X-Accepted-Stream-Protocol-Versions", p.name);
    respond(fd.get(), 403,
            "unable to upgrade: unable to negotiate protocol: server accepts " +
                (port_forward ? names(kSpdyPortForward) : names(kSpdyCommand)),
            accepted);
    return;
  }
  HttpResponse up;
  up.status = 101;
  up.reason = std::string(reason_phrase(101));
  up.headers = {{"Connection", "Upgrade"}, {"Upgrade", "SPDY/3.1"}, {"X-Stream-Protocol-Version", protocol->name}};
  upgraded(std::move(fd), serialize(up), [&](ClientSocket& socket) {
    SpdyConnection conn(socket, std::move(leftover));
    if (port_forward) {
      SpdyPortForward forward(conn, containerizer_, std::get<PortForwardRequest>(*cached).pod_id,
                              options_.stream_creation_timeout, options_.max_forwarded_connections);
      // The client decides when it is done: it closes the connection.
      conn.serve(forward);
      return;
    }
    auto [command, streams] = make_command(containerizer_, *cached);
    SpdyCommandStreams channels(conn, *command, streams, protocol->version);
    run_command(socket, conn, channels, *command,
                [&] { return channels.wait_for_streams(options_.stream_creation_timeout); });
  });
}

void StreamingServer::upgraded(UniqueFd fd, const std::string& response,
                               const std::function<void(ClientSocket&)>& session) {
  ClientSocket socket(std::move(fd), options_.idle_timeout);
  {
    std::lock_guard g(sessions_mu_);
    if (stopping_) return;
    sockets_.insert(&socket);
  }
  if (socket.write_all(response)) session(socket);
  std::lock_guard g(sessions_mu_);
  sockets_.erase(&socket);
}

}  // namespace berth::streaming

#include "cri/grpc/http2_connection.h"

#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <string_view>
#include <vector>

#include "cri/grpc/frame_codec.h"
#include "cri/grpc/server_call.h"

namespace berth::grpc {

namespace {

// Metadata beyond this is refused: kubelet sends a few hundred bytes.
constexpr size_t kMaxHeaderListBytes = 64 * 1024;
// Receive windows: large enough that a 16 MiB request needs few round trips. Memory
// is only used when a client actually sends that much.
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 4 << 20;

nghttp2_nv header(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

bool is_grpc_content_type(std::string_view type) {
  constexpr std::string_view kGrpc = "application/grpc";
  if (type.substr(0, kGrpc.size()) != kGrpc) return false;
  return type.size() == kGrpc.size() || type[kGrpc.size()] == '+' || type[kGrpc.size()] == ';';
}

// Trailers of a call: grpc-status and, when there is one, grpc-message.
std::vector<nghttp2_nv> status_headers(const CallStatus& status, const std::string& code,
                                       const std::string& message) {
  std::vector<nghttp2_nv> nva{header("grpc-status", code)};
  if (!status.message.empty()) nva.push_back(header("grpc-message", message));
  return nva;
}

}  // namespace

struct Http2Connection::Stream {
  explicit Stream(int32_t stream_id, size_t max_receive_bytes) : id(stream_id), deframer(max_receive_bytes) {}

  int32_t id;
  std::string verb;
  std::string path;
  std::string content_type;
  std::string timeout;
  std::string encoding;
  CallContext::Metadata metadata;
  size_t header_bytes = 0;
  MessageDeframer deframer;
  std::shared_ptr<const Method> method;
  Clock::time_point deadline = Clock::time_point::max();
  bool responded = false;      // response HEADERS submitted
  bool local_closed = false;   // our END_STREAM went out
  bool remote_closed = false;  // the client's END_STREAM arrived
  std::shared_ptr<ServerCall> call;
};

// nghttp2's C callbacks, forwarding to the connection.
struct Http2Connection::Callbacks {
  static Http2Connection& self(void* user_data) { return *static_cast<Http2Connection*>(user_data); }

  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* user_data) {
    Http2Connection& c = self(user_data);
    for (;;) {
      ssize_t n = ::send(c.fd_.get(), data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c.write_blocked_ = true;
        return NGHTTP2_ERR_WOULDBLOCK;
      }
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }

  static int begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Http2Connection& c = self(user_data);
    c.streams_[frame->hd.stream_id] =
        std::make_unique<Stream>(frame->hd.stream_id, c.limits_.max_receive_bytes);
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name_data, size_t name_len,
                       const uint8_t* value_data, size_t value_len, uint8_t, void* user_data) {
    // Client trailers carry nothing gRPC uses.
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Stream* s = self(user_data).find_stream(frame->hd.stream_id);
    if (!s) return 0;
    s->header_bytes += name_len + value_len + 32;  // RFC 7541 entry size
    if (s->header_bytes > kMaxHeaderListBytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;

    std::string_view name(reinterpret_cast<const char*>(name_data), name_len);
    std::string_view value(reinterpret_cast<const char*>(value_data), value_len);
    if (name == ":method") {
      s->verb = value;
    } else if (name == ":path") {
      s->path = value;
    } else if (name == "content-type") {
      s->content_type = value;
    } else if (name == "grpc-timeout") {
      s->timeout = value;
    } else if (name == "grpc-encoding") {
      s->encoding = value;
    } else if (name.starts_with(':') || name == "te" || name == "grpc-accept-encoding") {
      // Framing only; nghttp2 already rejects a te other than "trailers".
    } else {
      s->metadata.emplace_back(name, value);
    }
    return 0;
  }

  static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Http2Connection& c = self(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    Stream* s = c.find_stream(frame->hd.stream_id);
    if (!s) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) c.on_request_headers(*s);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) c.on_request_end(*s);
    return 0;
  }

  static int data_chunk_recv(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                             void* user_data) {
    Http2Connection& c = self(user_data);
    Stream* s = c.find_stream(stream_id);
    // After an early response the rest of the body is read and dropped.
    if (!s || s->responded) return 0;
    CallStatus status = s->deframer.feed(std::string_view(reinterpret_cast<const char*>(data), len));
    if (!status.ok()) c.respond_status(*s, status);
    return 0;
  }

  static int frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    Stream* s = self(user_data).find_stream(frame->hd.stream_id);
    if (!s) return 0;
    s->local_closed = true;
    // We answered before the client finished its request (an error): tell it to
    // stop sending. NO_ERROR keeps the status we sent.
    if (!s->remote_closed) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
  }

  static int stream_close(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
    Http2Connection& c = self(user_data);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) return 0;
    if (auto& call = it->second->call) {
      // Closed before our trailers: RST_STREAM from the client.
      if (!it->second->local_closed) call->cancel();
      call->bind(nullptr, 0);
    }
    c.streams_.erase(it);
    return 0;
  }

  static ssize_t read_data(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void*) {
    auto* call = static_cast<ServerCall*>(source->ptr);
    ServerCall::Chunk chunk = call->read_output(buf, length);
    if (chunk.done) {
      // The status goes in trailers, so the DATA stream ends without END_STREAM.
      *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::string code = std::to_string(static_cast<int>(chunk.status.code));
      std::string message = percent_encode(chunk.status.message);
      auto nva = status_headers(chunk.status, code, message);
      if (nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size()) != 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
      return static_cast<ssize_t>(chunk.bytes);
    }
    if (chunk.bytes == 0) return NGHTTP2_ERR_DEFERRED;  // resumed by service()
    return static_cast<ssize_t>(chunk.bytes);
  }
};

Http2Connection::Http2Connection(UniqueFd fd, int epoll_fd, std::optional<ucred> peer, Limits limits,
                                 CallHost& host)
    : fd_(std::move(fd)), epoll_fd_(epoll_fd), peer_(peer), limits_(limits), host_(host) {}

Http2Connection::~Http2Connection() {
  for (auto& [id, stream] : streams_) {
    if (stream->call) {
      stream->call->cancel();
      stream->call->bind(nullptr, 0);
    }
  }
  streams_.clear();
  if (session_) nghttp2_session_del(session_);
  // Closing the fd removes it from epoll.
}

Result<> Http2Connection::start() {
  nghttp2_session_callbacks* callbacks;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return fail(ENOMEM, "nghttp2 callbacks");
  nghttp2_session_callbacks_set_send_callback(callbacks, &Callbacks::send);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Callbacks::begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Callbacks::data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &Callbacks::frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Callbacks::stream_close);
  int rv = nghttp2_session_server_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return fail(ENOMEM, std::string("nghttp2 session: ") + nghttp2_strerror(rv));

  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kMaxHeaderListBytes)},
  };
  rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (rv == 0) rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  if (rv != 0) return fail(EPROTO, std::string("nghttp2 settings: ") + nghttp2_strerror(rv));

  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd_.get();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd_.get(), &ev) != 0) return sys_fail("epoll_ctl add connection");
  flush();
  return {};
}

Http2Connection::Stream* Http2Connection::find_stream(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Http2Connection::on_readable() {
  uint8_t buf[16384];
  // A few reads per wake-up: a busy client must not starve the others.
  for (int i = 0; i < 4 && !closed_; ++i) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n)) < 0) closed_ = true;
      if (static_cast<size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n == 0) {
      closed_ = true;  // the client is gone; nobody would read what we send
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      closed_ = true;
    }
    break;
  }
  flush();
}

void Http2Connection::on_writable() { flush(); }

void Http2Connection::on_request_headers(Stream& s) {
  if (s.verb != "POST") {
    respond_status(s, {StatusCode::unimplemented, "gRPC requests use POST, not " + s.verb}, 405);
    return;
  }
  if (!is_grpc_content_type(s.content_type)) {
    respond_status(s, {StatusCode::internal, "invalid gRPC request content-type \"" + s.content_type + "\""}, 415);
    return;
  }
  if (!s.encoding.empty() && s.encoding != "identity") {
    respond_status(s, {StatusCode::unimplemented,
                       "grpc-encoding " + s.encoding + " is not supported; this server accepts identity"});
    return;
  }
  if (!s.timeout.empty()) {
    auto timeout = parse_timeout(s.timeout);
    if (!timeout) {
      respond_status(s, {StatusCode::internal, "malformed grpc-timeout \"" + s.timeout + "\""});
      return;
    }
    Clock::time_point now = Clock::now();
    auto room = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::time_point::max() - now);
    s.deadline = *timeout >= room ? Clock::time_point::max()
                                  : now + std::chrono::duration_cast<Clock::duration>(*timeout);
  }
  s.method = host_.find_method(s.path);
  if (!s.method) respond_status(s, {StatusCode::unimplemented, "unknown method " + s.path});
}

void Http2Connection::on_request_end(Stream& s) {
  s.remote_closed = true;
  if (s.responded || s.call) return;
  auto& messages = s.deframer.messages();
  if (s.deframer.partial()) {
    respond_status(s, {StatusCode::internal, "request ended in the middle of a message"});
    return;
  }
  if (messages.size() != 1) {
    respond_status(s, {StatusCode::internal, "expected one request message, received " +
                                                 std::to_string(messages.size())});
    return;
  }
  std::string request = std::move(messages.front());
  messages.clear();
  s.call = host_.start_call(s.method, s.deadline, std::move(s.metadata), peer_, std::move(request));
  if (!s.call) {
    respond_status(s, {StatusCode::resource_exhausted, "too many concurrent calls"});
    return;
  }
  s.call->bind(this, s.id);
}

void Http2Connection::respond_status(Stream& s, const CallStatus& status, int http_status) {
  if (s.responded) return;
  s.responded = true;
  std::string http = std::to_string(http_status);
  std::string code = std::to_string(static_cast<int>(status.code));
  std::string message = percent_encode(status.message);
  // Trailers-only: one HEADERS frame with the status and END_STREAM.
  std::vector<nghttp2_nv> nva{header(":status", http), header("content-type", "application/grpc")};
  for (const auto& nv : status_headers(status, code, message)) nva.push_back(nv);
  if (nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), nullptr) != 0) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  }
}

void Http2Connection::respond_messages(Stream& s) {
  s.responded = true;
  nghttp2_nv nva[] = {header(":status", "200"), header("content-type", "application/grpc"),
                      header("grpc-accept-encoding", "identity")};
  nghttp2_data_provider provider{};
  provider.source.ptr = s.call.get();
  provider.read_callback = &Callbacks::read_data;
  if (nghttp2_submit_response(session_, s.id, nva, std::size(nva), &provider) != 0) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  }
}

void Http2Connection::service(ServerCall& call) {
  Stream* s = find_stream(call.stream_id());
  if (!s || s->call.get() != &call) return;
  service_stream(*s);
  flush();
}

void Http2Connection::service_stream(Stream& s) {
  if (s.local_closed || closed_) return;
  if (s.responded) {
    // Not an error when the data is not deferred: the provider will find it.
    nghttp2_session_resume_data(session_, s.id);
    return;
  }
  ServerCall::Snapshot snap = s.call->snapshot();
  if (snap.has_output) {
    respond_messages(s);
  } else if (snap.finished) {
    respond_status(s, snap.status);
  }
}

void Http2Connection::expire_deadlines(Clock::time_point now) {
  std::vector<int32_t> expired;
  for (auto& [id, s] : streams_) {
    if (s->deadline <= now && !s->local_closed) expired.push_back(id);
  }
  if (expired.empty()) return;
  for (int32_t id : expired) {
    Stream* s = find_stream(id);
    if (!s) continue;
    s->deadline = Clock::time_point::max();
    if (s->call) {
      s->call->expire();
      service_stream(*s);
    } else {
      respond_status(*s, {StatusCode::deadline_exceeded, "deadline exceeded"});
    }
  }
  flush();
}

std::optional<Http2Connection::Clock::time_point> Http2Connection::next_deadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& [id, s] : streams_) {
    if (s->local_closed || s->deadline == Clock::time_point::max()) continue;
    if (!next || s->deadline < *next) next = s->deadline;
  }
  return next;
}

void Http2Connection::shutdown() {
  if (closed_) return;
  nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  for (auto& [id, s] : streams_) {
    if (s->call) s->call->cancel();
  }
  flush();
  closed_ = true;
}

void Http2Connection::flush() {
  if (closed_ || !session_) return;
  write_blocked_ = false;
  if (nghttp2_session_send(session_) != 0) {
    closed_ = true;
    return;
  }
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
    closed_ = true;
    return;
  }
  update_epoll();
}

void Http2Connection::update_epoll() {
  if (write_blocked_ == epoll_out_) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (write_blocked_) ev.events |= EPOLLOUT;
  ev.data.fd = fd_.get();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd_.get(), &ev) == 0) epoll_out_ = write_blocked_;
}

}  // namespace berth::grpc

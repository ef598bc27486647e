#include "cri/streaming/spdy_connection.h"

#include <sys/uio.h>

#include <variant>

namespace berth::streaming {

namespace {
// Larger client frames are a protocol error; stdin and port-forward data never need them.
constexpr size_t kMaxIncomingFrame = 4 << 20;
}  // namespace

SpdyConnection::SpdyConnection(ClientSocket& socket, std::string already_read)
    : socket_(socket), pending_(std::move(already_read)), parser_(kMaxIncomingFrame) {}

Result<> SpdyConnection::write_frame(const std::string& frame) { return socket_.write_all(frame); }

std::string SpdyConnection::serve(Handler& handler) {
  if (!pending_.empty()) parser_.feed(pending_.data(), pending_.size());
  pending_.clear();
  char buf[64 * 1024];
  for (;;) {
    for (;;) {
      auto next = parser_.next();
      if (!next) {
        std::lock_guard g(writer_mu_);
        (void)write_frame(spdy::FrameWriter::goaway(last_stream_id_, spdy::kGoAwayProtocolError));
        return "protocol error: " + next.error().message;
      }
      if (!*next) break;
      spdy::Frame& frame = **next;
      if (auto* syn = std::get_if<spdy::SynStream>(&frame)) {
        // Client streams are odd and increase (SPDY/3 section 2.3.2).
        if (syn->stream_id % 2 == 0 || syn->stream_id <= last_stream_id_) {
          std::lock_guard g(writer_mu_);
          (void)write_frame(spdy::FrameWriter::goaway(last_stream_id_, spdy::kGoAwayProtocolError));
          return "protocol error: stream id " + std::to_string(syn->stream_id) + " out of order";
        }
        last_stream_id_ = syn->stream_id;
        {
          std::lock_guard g(writer_mu_);
          auto reply = writer_.syn_reply(spdy::SynReply{.stream_id = syn->stream_id, .flags = 0, .headers = {}});
          if (!reply) return "encode SYN_REPLY: " + reply.error().message;
          if (auto w = write_frame(*reply); !w) return w.error().message;
        }
        if (!handler.on_stream(syn->stream_id, syn->headers)) reset_stream(syn->stream_id, spdy::kRefusedStream);
        else if (syn->flags & spdy::kFlagFin) handler.on_remote_close(syn->stream_id);
      } else if (auto* data = std::get_if<spdy::DataFrame>(&frame)) {
        if (!data->data.empty()) handler.on_data(data->stream_id, data->data);
        if (data->flags & spdy::kFlagFin) handler.on_remote_close(data->stream_id);
      } else if (auto* rst = std::get_if<spdy::RstStream>(&frame)) {
        {
          std::lock_guard g(writer_mu_);
          closed_.insert(rst->stream_id);
        }
        handler.on_reset(rst->stream_id);
      } else if (auto* ping = std::get_if<spdy::Ping>(&frame)) {
        // Client pings have odd ids; echo them. Even ids would answer pings we never send.
        if (ping->id % 2 == 1) {
          std::lock_guard g(writer_mu_);
          if (auto w = write_frame(spdy::FrameWriter::ping(ping->id)); !w) return w.error().message;
        }
      } else if (std::holds_alternative<spdy::GoAway>(frame)) {
        return "client sent GOAWAY";
      } else if (auto* headers = std::get_if<spdy::Headers>(&frame)) {
        if (headers->flags & spdy::kFlagFin) handler.on_remote_close(headers->stream_id);
      }
      // SETTINGS, WINDOW_UPDATE, SYN_REPLY (we open no streams) and unknown control
      // frames carry nothing we act on.
    }
    auto got = socket_.read_some(buf, sizeof buf);
    if (!got) return got.error().message;
    if (*got == 0) return "client closed the connection";
    parser_.feed(buf, *got);
  }
}

Result<> SpdyConnection::send(uint32_t id, std::string_view data) {
  while (!data.empty()) {
    auto chunk = data.substr(0, kMaxChunk);
    auto header = spdy::FrameWriter::data_header(id, 0, chunk.size());
    iovec parts[2] = {{header.data(), header.size()}, {const_cast<char*>(chunk.data()), chunk.size()}};
    {
      std::lock_guard g(writer_mu_);
      if (closed_.contains(id)) return fail(EPIPE, "stream " + std::to_string(id) + " is closed");
      BERTH_TRY_VOID(socket_.write_all(parts, 2));
    }
    data.remove_prefix(chunk.size());
  }
  return {};
}

Result<> SpdyConnection::close_stream(uint32_t id) {
  std::lock_guard g(writer_mu_);
  if (!closed_.insert(id).second) return {};
  return write_frame(spdy::FrameWriter::data(id, spdy::kFlagFin, {}));
}

void SpdyConnection::reset_stream(uint32_t id, uint32_t status) {
  std::lock_guard g(writer_mu_);
  closed_.insert(id);
  (void)write_frame(spdy::FrameWriter::rst_stream(id, status));
}

void SpdyConnection::goaway() {
  std::lock_guard g(writer_mu_);
  (void)write_frame(spdy::FrameWriter::goaway(last_stream_id_, spdy::kGoAwayOk));
}

}  // namespace berth::streaming

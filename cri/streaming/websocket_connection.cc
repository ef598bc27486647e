#include "cri/streaming/websocket_connection.h"

#include <sys/uio.h>

#include "common/base64.h"

namespace berth::streaming {

namespace {
// Client messages are stdin, resize and port-forward data: small.
constexpr uint64_t kMaxIncomingMessage = 4 << 20;
}  // namespace

WebSocketConnection::WebSocketConnection(ClientSocket& socket, std::string already_read, bool base64)
    : socket_(socket), pending_(std::move(already_read)), base64_(base64) {}

Result<> WebSocketConnection::send_frame(ws::Opcode opcode, std::string_view payload) {
  auto header = ws::frame_header(opcode, true, payload.size());
  iovec parts[2] = {{header.data(), header.size()}, {const_cast<char*>(payload.data()), payload.size()}};
  std::lock_guard g(writer_mu_);
  if (close_sent_) return fail(EPIPE, "websocket closed");
  return socket_.write_all(parts, 2);
}

Result<> WebSocketConnection::send(uint8_t channel, std::string_view data) {
  if (base64_) {
    std::string text(1, static_cast<char>('0' + channel));
    text += base64_encode(data);
    return send_frame(ws::Opcode::text, text);
  }
  do {
    auto chunk = data.substr(0, kMaxChunk);
    std::string message;
    message.reserve(chunk.size() + 1);
    message += static_cast<char>(channel);
    message += chunk;
    BERTH_TRY_VOID(send_frame(ws::Opcode::binary, message));
    data.remove_prefix(chunk.size());
  } while (!data.empty());
  return {};
}

void WebSocketConnection::close(uint16_t code, std::string_view reason) {
  std::lock_guard g(writer_mu_);
  if (close_sent_) return;
  close_sent_ = true;
  (void)socket_.write_all(ws::encode_frame(ws::Opcode::close, ws::close_payload(code, reason)));
}

std::string WebSocketConnection::serve(Handler& handler) {
  ws::FrameParser parser(true, kMaxIncomingMessage);
  ws::MessageAssembler assembler(kMaxIncomingMessage);
  if (!pending_.empty()) parser.feed(pending_.data(), pending_.size());
  pending_.clear();
  char buf[64 * 1024];
  for (;;) {
    for (;;) {
      auto frame = parser.next();
      if (!frame) {
        close(parser.close_code(), frame.error().message);
        return "protocol error: " + frame.error().message;
      }
      if (!*frame) break;
      auto message = assembler.add(std::move(**frame));
      if (!message) {
        close(assembler.close_code(), message.error().message);
        return "protocol error: " + message.error().message;
      }
      if (!*message) continue;
      ws::Frame& m = **message;
      switch (m.opcode) {
        case ws::Opcode::ping: {
          std::lock_guard g(writer_mu_);
          if (!close_sent_) (void)socket_.write_all(ws::encode_frame(ws::Opcode::pong, m.payload));
          break;
        }
        case ws::Opcode::close:
          close(1000, "");
          return "client closed the websocket";
        case ws::Opcode::binary:
        case ws::Opcode::text: {
          if (m.payload.empty()) break;  // keep-alives
          if (base64_ != (m.opcode == ws::Opcode::text)) {
            close(1003, base64_ ? "binary message on a base64 protocol" : "text message on a binary protocol");
            return "protocol error: message type does not match the subprotocol";
          }
          if (!base64_) {
            handler.on_message(static_cast<uint8_t>(m.payload[0]), std::string_view(m.payload).substr(1));
            break;
          }
          char digit = m.payload[0];
          auto decoded = base64_decode(std::string_view(m.payload).substr(1));
          if (digit < '0' || digit > '9' || !decoded) {
            close(1007, "malformed base64 channel message");
            return "protocol error: malformed base64 channel message";
          }
          handler.on_message(static_cast<uint8_t>(digit - '0'), *decoded);
          break;
        }
        default:
          break;  // pong
      }
    }
    auto got = socket_.read_some(buf, sizeof buf);
    if (!got) return got.error().message;
    if (*got == 0) return "client closed the connection";
    parser.feed(buf, *got);
  }
}

}  // namespace berth::streaming

// The server side of one WebSocket connection carrying Kubernetes channels: every
// message starts with a channel number, as a raw byte on the binary protocols
// (channel.k8s.io and its v4./v5. forms) or as an ASCII digit followed by base64 on
// the text ones (base64.channel.k8s.io, v4.base64.channel.k8s.io).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/error.h"
#include "cri/streaming/client_socket.h"
#include "cri/streaming/websocket_codec.h"

namespace berth::streaming {

class WebSocketConnection {
 public:
  class Handler {
   public:
    // A message from the client, its channel byte split off and decoded.
    virtual void on_message(uint8_t channel, std::string_view data) = 0;

   protected:
    ~Handler() = default;
  };

  WebSocketConnection(ClientSocket& socket, std::string already_read, bool base64);

  // Reads until the client closes or goes away, breaks the protocol (answered with a
  // close frame carrying the RFC 6455 code), idles out, or the socket is shut down.
  std::string serve(Handler& handler);

  // Any thread. Binary protocols split large data into several messages.
  Result<> send(uint8_t channel, std::string_view data);
  // A close frame (once); the client answers with its own and closes.
  void close(uint16_t code, std::string_view reason);

  static constexpr size_t kMaxChunk = 256 * 1024;

 private:
  Result<> send_frame(ws::Opcode opcode, std::string_view payload);

  ClientSocket& socket_;
  std::string pending_;
  bool base64_;
  std::mutex writer_mu_;
  bool close_sent_ = false;
};

}  // namespace berth::streaming

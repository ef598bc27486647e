// The remote command protocol on a websocket: channels are numbered (0 stdin,
// 1 stdout, 2 stderr, 3 error, 4 resize) and exist from the start. v4 carries the
// exit status as JSON on the error channel; v5 adds channel 255, on which the client
// closes its stdin. The server first sends an empty message on the lowest channel it
// writes, to tell the client the session is up.
#pragma once

#include <atomic>

#include "cri/streaming/command_session.h"
#include "cri/streaming/websocket_connection.h"

namespace berth::streaming {

class WebSocketCommandChannels final : public WebSocketConnection::Handler, public CommandChannels {
 public:
  static constexpr uint8_t kCloseChannel = 255;

  // `version`: 1 (channel.k8s.io, base64.channel.k8s.io, or none), 4 or 5.
  WebSocketCommandChannels(WebSocketConnection& connection, CommandSession& session, CommandStreams streams,
                           int version);

  Result<> announce();
  void client_gone() { session_.on_client_gone(); }
  void finish(const CommandOutcome& outcome);

  void on_message(uint8_t channel, std::string_view data) override;

  Result<> write(Channel channel, std::string_view data) override;
  void close(Channel) override {}

 private:
  WebSocketConnection& connection_;
  CommandSession& session_;
  CommandStreams streams_;
  int version_;
  std::atomic<bool> stdin_closed_{false};
};

}  // namespace berth::streaming

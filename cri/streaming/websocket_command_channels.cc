#include "cri/streaming/websocket_command_channels.h"

#include "cri/streaming/terminal_size.h"

namespace berth::streaming {

WebSocketCommandChannels::WebSocketCommandChannels(WebSocketConnection& connection, CommandSession& session,
                                                   CommandStreams streams, int version)
    : connection_(connection), session_(session), streams_(streams), version_(version) {}

Result<> WebSocketCommandChannels::announce() {
  Channel first = streams_.stdout ? Channel::stdout : streams_.stderr && !streams_.tty ? Channel::stderr : Channel::error;
  return connection_.send(static_cast<uint8_t>(first), {});
}

void WebSocketCommandChannels::on_message(uint8_t channel, std::string_view data) {
  if (channel == static_cast<uint8_t>(Channel::stdin)) {
    if (streams_.stdin && !stdin_closed_) session_.on_stdin(data);
  } else if (channel == static_cast<uint8_t>(Channel::resize)) {
    if (!streams_.tty) return;
    if (auto size = parse_terminal_size(data)) session_.on_resize(size->width, size->height);
  } else if (channel == kCloseChannel && version_ >= 5) {
    if (data.size() == 1 && data[0] == static_cast<char>(Channel::stdin) && streams_.stdin && !stdin_closed_.exchange(true))
      session_.on_stdin_close();
  }
}

Result<> WebSocketCommandChannels::write(Channel channel, std::string_view data) {
  return connection_.send(static_cast<uint8_t>(channel), data);
}

void WebSocketCommandChannels::finish(const CommandOutcome& outcome) {
  std::string status = version_ >= 4 ? status_json(outcome) : status_text(outcome);
  if (!status.empty()) (void)write(Channel::error, status);
  connection_.close(1000, "");
}

}  // namespace berth::streaming

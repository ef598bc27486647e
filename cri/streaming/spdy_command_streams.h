// The remote command protocol on SPDY: the client opens one stream per channel, named
// by its `streamType` header, before anything runs. channel.k8s.io (v1) and v2 carry
// stdin, stdout, stderr and error; v3 adds resize; v4 turns the error stream's text
// into a JSON Status with the exit code.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>

#include "cri/streaming/command_session.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/terminal_size.h"

namespace berth::streaming {

class SpdyCommandStreams final : public SpdyConnection::Handler, public CommandChannels {
 public:
  // `version`: 1-4, from the negotiated X-Stream-Protocol-Version.
  SpdyCommandStreams(SpdyConnection& connection, CommandSession& session, CommandStreams expected, int version);

  // Until the client opened every stream the request promised. False on timeout or
  // when the client left first.
  bool wait_for_streams(std::chrono::milliseconds timeout);
  // serve() returned: wakes wait_for_streams and tells the session.
  void client_gone();
  // Ends the session: output streams closed, the outcome on the error stream, GOAWAY.
  void finish(const CommandOutcome& outcome);

  bool on_stream(uint32_t id, const spdy::HeaderList& headers) override;
  void on_data(uint32_t id, std::string_view data) override;
  void on_remote_close(uint32_t id) override;
  void on_reset(uint32_t id) override;

  Result<> write(Channel channel, std::string_view data) override;
  void close(Channel channel) override;

 private:
  std::optional<uint32_t> stream_of(Channel channel);
  std::optional<Channel> channel_of(uint32_t id);

  SpdyConnection& connection_;
  CommandSession& session_;
  CommandStreams expected_;
  int version_;
  size_t wanted_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Channel, uint32_t> streams_;
  bool gone_ = false;
  TerminalSizeDecoder sizes_;
  bool stdin_closed_ = false;
};

}  // namespace berth::streaming

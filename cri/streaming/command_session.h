// One remote command (exec or attach) between a client's channels and the container.
// The transport's reader thread feeds client input in (stdin, its end, resizes, the
// client vanishing); the session's own thread runs the command to its end and writes
// the output through CommandChannels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "cri/streaming/command_status.h"

namespace berth::streaming {

enum class Channel : uint8_t { stdin = 0, stdout = 1, stderr = 2, error = 3, resize = 4 };

// Which channels the client was promised (the cached CRI request's flags).
struct CommandStreams {
  bool stdin = false, stdout = false, stderr = false, tty = false;
};

// The session's view of its transport (SPDY streams or websocket channels).
class CommandChannels {
 public:
  // Any thread; fails once the client is gone.
  virtual Result<> write(Channel channel, std::string_view data) = 0;
  // The channel gets no more data (SPDY: FIN; websocket: nothing to say).
  virtual void close(Channel channel) = 0;

 protected:
  ~CommandChannels() = default;
};

class CommandSession {
 public:
  virtual ~CommandSession() = default;

  // Transport reader thread.
  virtual void on_stdin(std::string_view data) = 0;
  virtual void on_stdin_close() = 0;
  virtual void on_resize(uint16_t width, uint16_t height) = 0;
  // The client disconnected, reset, broke the protocol or idled out: stop everything.
  virtual void on_client_gone() = 0;

  // Session thread: runs to the end. nullopt when the client went away first (there
  // is nobody to tell the outcome to).
  virtual std::optional<CommandOutcome> run(CommandChannels& channels) = 0;
};

}  // namespace berth::streaming

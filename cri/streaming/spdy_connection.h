// The server side of one SPDY/3.1 connection as Kubernetes clients use it
// (moby/spdystream): the client opens every stream, the server answers each with
// SYN_REPLY and then exchanges data on it. No flow control: spdystream neither sends
// WINDOW_UPDATE nor honours it, so windows would only stall large transfers; TCP
// carries the backpressure.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "common/error.h"
#include "cri/streaming/client_socket.h"
#include "cri/streaming/spdy_codec.h"

namespace berth::streaming {

class SpdyConnection {
 public:
  // Called from serve()'s thread.
  class Handler {
   public:
    // A stream the client opened; it has been answered with SYN_REPLY already.
    // Return false to reset it (REFUSED_STREAM).
    virtual bool on_stream(uint32_t id, const spdy::HeaderList& headers) = 0;
    virtual void on_data(uint32_t id, std::string_view data) = 0;
    // The client half-closed the stream (FIN): it sends no more.
    virtual void on_remote_close(uint32_t id) = 0;
    // The client reset the stream: no more either way.
    virtual void on_reset(uint32_t id) = 0;

   protected:
    ~Handler() = default;
  };

  SpdyConnection(ClientSocket& socket, std::string already_read);

  // Reads and dispatches frames until the client goes away, sends GOAWAY, breaks the
  // protocol (answered with GOAWAY PROTOCOL_ERROR), idles out, or the socket is shut
  // down. Returns why it stopped.
  std::string serve(Handler& handler);

  // Any thread. Data frames are at most kMaxChunk; larger writes are split.
  Result<> send(uint32_t id, std::string_view data);
  // FIN: we send no more on the stream (once; later calls do nothing).
  Result<> close_stream(uint32_t id);
  void reset_stream(uint32_t id, uint32_t status);
  // GOAWAY OK: the session is over from our side.
  void goaway();

  static constexpr size_t kMaxChunk = 256 * 1024;

 private:
  Result<> write_frame(const std::string& frame);

  ClientSocket& socket_;
  std::string pending_;
  spdy::FrameParser parser_;
  std::mutex writer_mu_;  // header compression state and frame order
  spdy::FrameWriter writer_;
  std::set<uint32_t> closed_;  // streams we sent FIN or RST on, under writer_mu_
  std::atomic<uint32_t> last_stream_id_{0};
};

}  // namespace berth::streaming

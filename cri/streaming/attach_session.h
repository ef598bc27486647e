// CRI Attach over a stream: the client joins the running container's own stdio,
// which its berth-shim holds, through the shim's attach socket. The session ends when
// the container exits (the shim closes the connection), or when the client leaves or,
// having asked only for stdin, closes it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "common/unique_fd.h"
#include "cri/streaming/command_session.h"
#include "cri/streaming/request_cache.h"
#include "runtime/containerizer/containerizer.h"

namespace berth::streaming {

class AttachSession final : public CommandSession {
 public:
  AttachSession(pod::Containerizer& containerizer, AttachRequest request);

  void on_stdin(std::string_view data) override;
  void on_stdin_close() override;
  void on_resize(uint16_t width, uint16_t height) override;
  void on_client_gone() override;
  std::optional<CommandOutcome> run(CommandChannels& channels) override;

 private:
  // Until the shim connection exists (or never will); then -1 or its fd.
  int wait_connected();
  bool send_frame(char type, std::string_view payload);
  void stop();

  pod::Containerizer& containerizer_;
  AttachRequest request_;
  std::mutex mu_;
  std::condition_variable connected_cv_;
  bool settled_ = false;
  UniqueFd shim_;
  UniqueFd stop_fd_;
  std::atomic<bool> client_gone_{false};
  std::atomic<bool> stdin_done_{false};
};

}  // namespace berth::streaming

// CRI Exec over a stream: the command runs in the container through the launcher
// (pod::ExecProcess) and its stdio is relayed to the client as it happens.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/unique_fd.h"
#include "cri/streaming/command_session.h"
#include "cri/streaming/request_cache.h"
#include "runtime/containerizer/containerizer.h"

namespace berth::streaming {

class ExecSession final : public CommandSession {
 public:
  ExecSession(pod::Containerizer& containerizer, ExecRequest request);
  ~ExecSession() override;

  void on_stdin(std::string_view data) override;
  void on_stdin_close() override;
  void on_resize(uint16_t width, uint16_t height) override;
  void on_client_gone() override;
  std::optional<CommandOutcome> run(CommandChannels& channels) override;

  // How long output may still arrive after the command exited (from processes it
  // left behind holding its stdio) before the session ends anyway.
  static constexpr int kDrainAfterExitMs = 2000;

 private:
  // Waits until the process exists (or the session is over); false when it never will.
  bool wait_started();
  void pump(int fd, Channel channel, CommandChannels& channels);

  pod::Containerizer& containerizer_;
  ExecRequest request_;
  std::mutex mu_;
  std::condition_variable started_cv_;
  bool start_settled_ = false;
  std::unique_ptr<pod::ExecProcess> process_;
  bool stdin_closed_ = false;
  UniqueFd stop_fd_;  // eventfd: readable once the session must wind down
  std::atomic<bool> client_gone_{false};
};

}  // namespace berth::streaming

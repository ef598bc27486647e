// The TCP connection of one streaming client after the HTTP head: blocking reads
// bounded by an idle timeout, writes serialized across the session's threads, and a
// shutdown any thread can trigger to wake the others.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string_view>

#include "common/error.h"
#include "common/unique_fd.h"

namespace berth::streaming {

class ClientSocket {
 public:
  using Clock = std::chrono::steady_clock;

  // `idle_timeout`: a connection with no traffic either way for this long is dropped.
  ClientSocket(UniqueFd fd, std::chrono::milliseconds idle_timeout);

  int fd() const { return fd_.get(); }

  // Some bytes, 0 at EOF. ETIMEDOUT when the connection idled out or the linger
  // deadline passed; ECANCELED after shutdown().
  Result<size_t> read_some(char* buf, size_t size);
  // Everything or an error; one writer at a time, from any thread.
  Result<> write_all(std::string_view data);
  Result<> write_all(const iovec* parts, size_t count);

  // Ends the session from our side: the client gets EOF once it has read everything
  // we sent, and reads stop at `linger` from now even if the client never closes.
  void finish(std::chrono::milliseconds linger);
  // Tears the connection down now; blocked readers and writers return.
  void shutdown();
  bool is_shut_down() const { return shut_down_.load(); }

 private:
  void touch() { last_activity_.store(Clock::now().time_since_epoch().count()); }

  UniqueFd fd_;
  std::chrono::milliseconds idle_timeout_;
  std::atomic<Clock::rep> last_activity_;
  std::atomic<Clock::rep> linger_deadline_{0};
  std::atomic<bool> shut_down_{false};
  std::mutex write_mu_;
};

}  // namespace berth::streaming

// The requests behind streaming URLs. CRI's Exec/Attach/PortForward only answer with
// a URL; what runs is the request cached here under a random token, which a client
// can redeem once, before it expires. The URL carries nothing else, so it cannot be
// edited into another command, replayed, or guessed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/error.h"

namespace berth::streaming {

struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false, stdin = false, stdout = false, stderr = false;
};

struct AttachRequest {
  std::string container_id;
  bool tty = false, stdin = false, stdout = false, stderr = false;
};

struct PortForwardRequest {
  std::string pod_id;
  std::vector<uint16_t> ports;  // as asked in the RPC; empty: any
};

using CachedRequest = std::variant<ExecRequest, AttachRequest, PortForwardRequest>;

class RequestCache {
 public:
  using Clock = std::chrono::steady_clock;

  // `now` is for tests; the server uses the steady clock.
  RequestCache(std::chrono::milliseconds ttl, size_t max_pending, std::function<Clock::time_point()> now = Clock::now);

  // A fresh token (128 random bits, URL-safe); EAGAIN when max_pending requests wait.
  Result<std::string> insert(CachedRequest request);
  // The request, removed: a token works once. nullopt for unknown or expired tokens.
  std::optional<CachedRequest> consume(const std::string& token);
  size_t pending();

 private:
  void expire_locked(Clock::time_point now);

  struct Entry {
    CachedRequest request;
    Clock::time_point expires;
  };
  std::chrono::milliseconds ttl_;
  size_t max_pending_;
  std::function<Clock::time_point()> now_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace berth::streaming

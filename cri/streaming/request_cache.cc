#include "cri/streaming/request_cache.h"

#include <sys/random.h>

namespace berth::streaming {

namespace {

constexpr char kUrlSafe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

Result<std::string> random_token() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail("getrandom");
    got += static_cast<size_t>(n);
  }
  // 6 bits per character: 22 characters hold the 128 bits.
  std::string token;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      token += kUrlSafe[(acc >> bits) & 63];
    }
  }
  if (bits > 0) token += kUrlSafe[(acc << (6 - bits)) & 63];
  return token;
}

}  // namespace

RequestCache::RequestCache(std::chrono::milliseconds ttl, size_t max_pending, std::function<Clock::time_point()> now)
    : ttl_(ttl), max_pending_(max_pending), now_(std::move(now)) {}

void RequestCache::expire_locked(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& e) { return e.second.expires <= now; });
}

Result<std::string> RequestCache::insert(CachedRequest request) {
  std::lock_guard g(mu_);
  auto now = now_();
  expire_locked(now);
  if (entries_.size() >= max_pending_)
    return fail(EAGAIN, "too many pending streaming requests (" + std::to_string(max_pending_) + ")");
  std::string token;
  do {
    token = BERTH_TRY(random_token());
  } while (entries_.contains(token));
  entries_.emplace(token, Entry{std::move(request), now + ttl_});
  return token;
}

std::optional<CachedRequest> RequestCache::consume(const std::string& token) {
  std::lock_guard g(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  auto entry = std::move(it->second);
  entries_.erase(it);
  if (entry.expires <= now_()) return std::nullopt;
  return std::move(entry.request);
}

size_t RequestCache::pending() {
  std::lock_guard g(mu_);
  expire_locked(now_());
  return entries_.size();
}

}  // namespace berth::streaming

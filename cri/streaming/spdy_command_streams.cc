#include "cri/streaming/spdy_command_streams.h"

namespace berth::streaming {

namespace {

std::optional<Channel> channel_named(std::string_view type) {
  if (type == "stdin") return Channel::stdin;
  if (type == "stdout") return Channel::stdout;
  if (type == "stderr") return Channel::stderr;
  if (type == "error") return Channel::error;
  if (type == "resize") return Channel::resize;
  return std::nullopt;
}

}  // namespace

SpdyCommandStreams::SpdyCommandStreams(SpdyConnection& connection, CommandSession& session, CommandStreams expected,
                                       int version)
    : connection_(connection), session_(session), expected_(expected), version_(version) {
  wanted_ = 1 + expected.stdin + expected.stdout + (expected.stderr && !expected.tty) + (expected.tty && version >= 3);
}

bool SpdyCommandStreams::wait_for_streams(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return gone_ || streams_.size() >= wanted_; }) && !gone_;
}

void SpdyCommandStreams::client_gone() {
  {
    std::lock_guard g(mu_);
    gone_ = true;
  }
  cv_.notify_all();
  session_.on_client_gone();
}

bool SpdyCommandStreams::on_stream(uint32_t id, const spdy::HeaderList& headers) {
  auto type = spdy::find_header(headers, "streamtype");
  auto channel = type ? channel_named(*type) : std::nullopt;
  if (!channel) return false;
  bool expected = *channel == Channel::error || (*channel == Channel::stdin && expected_.stdin) ||
                  (*channel == Channel::stdout && expected_.stdout) ||
                  (*channel == Channel::stderr && expected_.stderr && !expected_.tty) ||
                  (*channel == Channel::resize && expected_.tty && version_ >= 3);
  std::lock_guard g(mu_);
  // A stream nobody asked for, or a second one of a kind, is reset.
  if (!expected || streams_.contains(*channel)) return false;
  streams_[*channel] = id;
  if (streams_.size() >= wanted_) cv_.notify_all();
  return true;
}

std::optional<uint32_t> SpdyCommandStreams::stream_of(Channel channel) {
  std::lock_guard g(mu_);
  auto it = streams_.find(channel);
  if (it == streams_.end()) return std::nullopt;
  return it->second;
}

std::optional<Channel> SpdyCommandStreams::channel_of(uint32_t id) {
  std::lock_guard g(mu_);
  for (auto& [channel, stream] : streams_)
    if (stream == id) return channel;
  return std::nullopt;
}

void SpdyCommandStreams::on_data(uint32_t id, std::string_view data) {
  auto channel = channel_of(id);
  if (channel == Channel::stdin) {
    session_.on_stdin(data);
  } else if (channel == Channel::resize) {
    auto sizes = sizes_.feed(data);
    if (!sizes) {
      connection_.reset_stream(id, spdy::kProtocolError);
      return;
    }
    for (auto s : *sizes) session_.on_resize(s.width, s.height);
  }
}

void SpdyCommandStreams::on_remote_close(uint32_t id) {
  if (channel_of(id) == Channel::stdin && !stdin_closed_) {
    stdin_closed_ = true;
    session_.on_stdin_close();
  }
}

void SpdyCommandStreams::on_reset(uint32_t id) { on_remote_close(id); }

Result<> SpdyCommandStreams::write(Channel channel, std::string_view data) {
  auto id = stream_of(channel);
  if (!id) return fail(ENOENT, "the client opened no such stream");
  return connection_.send(*id, data);
}

void SpdyCommandStreams::close(Channel channel) {
  if (auto id = stream_of(channel)) (void)connection_.close_stream(*id);
}

void SpdyCommandStreams::finish(const CommandOutcome& outcome) {
  close(Channel::stdout);
  close(Channel::stderr);
  std::string status = version_ >= 4 ? status_json(outcome) : status_text(outcome);
  if (!status.empty()) (void)write(Channel::error, status);
  close(Channel::error);
  connection_.goaway();
}

}  // namespace berth::streaming

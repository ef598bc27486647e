// Turns one container output stream into CRI log lines:
//   <RFC 3339 timestamp, UTC, 9 fraction digits> <stdout|stderr> <F|P> <message>\n
// Behaviour matches containerd's CRI logger (pkg/cri/io/logger.go):
//  - "\n" ends a line; a "\r" right before it is dropped too ("\r\n" endings); a "\r"
//    anywhere else is message content.
//  - An empty line is logged (as an F line with an empty message).
//  - A line longer than max_line bytes is cut into P pieces of exactly max_line bytes;
//    the piece holding the end of the line is F.
//  - At end of stream, an unterminated tail is logged as P (nothing if there is none).
//  - The timestamp is taken when a line (or piece) is written out.
// It differs in one way: containerd formats with Go's RFC3339Nano in local time, which
// drops trailing fraction zeros; berth always writes UTC with 9 digits, which sorts as
// text and parses the same for kubelet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/shim/log_sink.h"

namespace berth::shim {

class CriLogWriter {
 public:
  static constexpr size_t kDefaultMaxLine = 16 * 1024;  // containerd's default
  static constexpr size_t kTimestampSize = 30;          // 2026-11-21T10:00:00.123456789Z
  using Clock = int64_t (*)();                          // ns since the epoch

  // `stream` is "stdout" or "stderr" and must outlive the writer.
  CriLogWriter(LogSink& sink, const char* stream, size_t max_line = kDefaultMaxLine, Clock clock = realtime_ns);

  // Any chunk of the stream, as read.
  void write(const char* data, size_t size);
  // End of stream.
  void finish();

  static int64_t realtime_ns();
  // Writes exactly kTimestampSize characters (no terminator).
  static void format_timestamp(int64_t ns_since_epoch, char* out);

 private:
  void append(const char* data, size_t size);
  void end_line();
  void emit(char tag, const char* data, size_t size);

  LogSink& sink_;
  const char* stream_;
  size_t max_line_;
  Clock clock_;
  // The current line's bytes not yet written: at most max_line_ + 1, the extra byte
  // being a '\r' that may turn out to be half of a "\r\n" ending.
  std::unique_ptr<char[]> pending_;
  size_t pending_size_ = 0;
};

}  // namespace berth::shim

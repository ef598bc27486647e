// Everything berth-shim and its caller (berthd) exchange, in one place so the two
// sides cannot drift: the state dir layout, the state file formats, the ready line,
// the control socket protocol and the attach protocol.
//
// State dir (given with --state-dir; the shim creates it if missing, chdirs into it):
//   init.pid      the runtime's --pid-file
//   runtime.log   the runtime's --log (create's diagnostics)
//   console.sock  tty mode only, while the runtime hands over the pty master
//   shim.sock     control socket (0600); exists while the shim runs
//   attach.sock   attach socket (0600); exists while the shim runs
//   shim.state    written once, after a successful create, before the ready line
//   exit.state    written once, durably (file and dir fsynced), after the container
//                 exited and its output was drained; the shim exits right after
//   shim.log      the shim's own diagnostics (it has no stderr)
//
// State files: one `key=value` per line, decimal numbers, `version=1` first.
// Readers ignore keys they do not know, so fields can be added without a version bump;
// a missing required key is an error.
//   shim.state: version, shim_pid, shim_start_time, container_pid, container_start_time
//               (start times are field 22 of /proc/<pid>/stat: clock ticks since boot;
//               with the pid they tell a live process from a recycled pid)
//   exit.state: version, exit_code (status, or 128+signal), signal (0 unless killed by
//               one), exited_at_ns (CLOCK_REALTIME at the reap), oom_killed (0 or 1)
//
// Ready line, written once on fd 3 by `berth-shim create`, then fd 3 is closed:
//   "ok <shim pid> <container pid>\n"  or  "error <one-line message>\n"
// If the caller has gone away (the write fails), the shim deletes the container and
// its state and exits: nobody would know about it.
//
// Control socket: a unix stream connection carries one request line and gets one reply
// line, then the shim closes it. Requests:
//   "ping"   -> "ok"
//   "reopen" -> "ok" once the log file at --log-path is open again (kubelet renamed the
//               old one for rotation), or "error <message>" (the old file stays in use)
// Anything else -> "error unknown request". Lines are at most kMaxRequestLine bytes.
//
// Attach socket (CRI Attach: a client joins the container's own stdio, which the shim
// holds). A unix stream connection; both directions carry frames:
//   1 byte type, 4 bytes payload length (big-endian), payload (at most
//   kMaxAttachPayload bytes; a longer one is a protocol error and the shim drops that
//   client). Unknown types are skipped by both sides.
// client -> shim:
//   'i'  bytes for the container's stdin: the pipe under --stdin, the pty master under
//        --tty --stdin; discarded without --stdin (or once stdin was closed)
//   'c'  this client closes its stdin (no payload). With --stdin-once the first such
//        close, or the first client that goes away after having sent 'i', closes the
//        container's stdin: the pipe's writer (the process reads EOF), or under a tty
//        stdin is refused from then on (the pty stays: it carries the output). Without
//        --stdin-once it changes nothing for the container or other clients.
//   'r'  resize: width u16 BE, height u16 BE (TIOCSWINSZ on the pty); ignored without
//        a tty, or with a payload of another size
// shim -> client:
//   'o'  stdout bytes (under a tty: all output)
//   'e'  stderr bytes
// Every chunk read from the container goes to the CRI log and, as one frame, to every
// attached client; output from before a client attached is not replayed (the socket
// listens before the ready line: a client attached before `start` misses none). At
// most kMaxAttachClients at once: further connections are accepted and closed at once.
// Flow control instead of buffering: while some client has not taken a whole frame
// (its socket is full) the shim stops reading the container's output, so a client
// that does not read slows the container's output down, as a terminal would; the
// shim's memory does not grow. Likewise stdin: while the container does not read its
// stdin, the shim stops reading the sockets of the clients that wrote to it. A
// client whose socket fails is dropped. After the container exited and its output
// was drained (or the drain window passed), and after exit.state was written, the
// shim closes every attach connection and removes attach.sock: EOF tells a client
// the container is gone, and its exit can be read at once.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"

namespace berth {

// What berthd needs to re-adopt a shim after a restart.
struct ShimState {
  pid_t shim_pid = 0;
  unsigned long long shim_start_time = 0;
  pid_t container_pid = 0;
  unsigned long long container_start_time = 0;
};

struct ExitState {
  int exit_code = 0;  // exit status, or 128+signal
  int signal = 0;     // the signal that killed the container's init, 0 for a normal exit
  int64_t exited_at_ns = 0;
  bool oom_killed = false;
};

namespace shim {

inline constexpr char kInitPidFile[] = "init.pid";
inline constexpr char kRuntimeLogFile[] = "runtime.log";
inline constexpr char kConsoleSocket[] = "console.sock";
inline constexpr char kControlSocket[] = "shim.sock";
inline constexpr char kShimStateFile[] = "shim.state";
inline constexpr char kExitStateFile[] = "exit.state";
inline constexpr char kShimLogFile[] = "shim.log";
inline constexpr char kAttachSocket[] = "attach.sock";

// The fd `berth-shim create` reports readiness on.
inline constexpr int kReadyFd = 3;
inline constexpr std::string_view kReplyOk = "ok";
inline constexpr std::string_view kReplyError = "error";
inline constexpr std::string_view kRequestPing = "ping";
inline constexpr std::string_view kRequestReopen = "reopen";
inline constexpr size_t kMaxRequestLine = 256;
inline constexpr size_t kMaxReadyLine = 4096;

// Attach frames (see above).
inline constexpr size_t kMaxAttachClients = 8;
inline constexpr size_t kMaxAttachPayload = 32 * 1024;
inline constexpr size_t kAttachHeaderSize = 5;
inline constexpr char kAttachStdin = 'i';
inline constexpr char kAttachCloseStdin = 'c';
inline constexpr char kAttachResize = 'r';
inline constexpr char kAttachStdout = 'o';
inline constexpr char kAttachStderr = 'e';
inline constexpr size_t kAttachResizePayload = 4;
inline constexpr size_t kAttachResizeFrameSize = kAttachHeaderSize + kAttachResizePayload;

void encode_attach_header(char type, uint32_t length, char out[kAttachHeaderSize]);
// A whole 'r' frame.
void encode_attach_resize(uint16_t width, uint16_t height, char out[kAttachResizeFrameSize]);

// A piece of a frame's payload, as far as it has arrived.
struct AttachPiece {
  char type = 0;
  const char* data = nullptr;
  size_t size = 0;
  bool first = false;  // the frame's first piece (a frame of length 0 is one piece)
  bool last = false;   // the frame's last piece
};

// Splits a byte stream into frame pieces without a heap and without copying payloads:
// a piece points into the input, except that payloads of at most kWholePayload bytes
// are collected and come as one piece (first and last), pointing into the decoder
// (valid until the next call). So an 'r' frame always arrives whole.
//   std::string_view in(buf, n);
//   AttachPiece piece;
//   while (decoder.next(in, piece)) handle(piece);
//   if (decoder.failed()) drop the peer;
class AttachDecoder {
 public:
  static constexpr size_t kWholePayload = 8;

  // Consumes bytes from the front of `input` up to the end of the next piece; false
  // when `input` is used up without completing one, or on a protocol error.
  bool next(std::string_view& input, AttachPiece& piece);
  // A length over kMaxAttachPayload arrived; sticky.
  bool failed() const { return failed_; }
  // Between frames: no header or payload bytes pending.
  bool idle() const { return header_size_ == 0 && !in_payload_; }

 private:
  char header_[kAttachHeaderSize] = {};
  size_t header_size_ = 0;
  char type_ = 0;
  bool in_payload_ = false;
  bool first_ = false;
  size_t remaining_ = 0;
  char whole_[kWholePayload] = {};
  size_t whole_size_ = 0;
  size_t whole_want_ = 0;
  bool failed_ = false;
};

// The size of an 'r' payload; false if it is not 4 bytes.
bool decode_attach_resize(const AttachPiece& piece, uint16_t& width, uint16_t& height);

// Render a state file into `buf`; returns its length, or 0 if `size` is too small.
// Plain snprintf: the static shim uses these without a heap.
size_t format_shim_state(const ShimState& state, char* buf, size_t size);
size_t format_exit_state(const ExitState& state, char* buf, size_t size);

Result<ShimState> parse_shim_state(std::string_view text);
Result<ExitState> parse_exit_state(std::string_view text);

}  // namespace shim
}  // namespace berth

#include "runtime/shim/shim_monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runtime/shim/durable_file.h"
#include "runtime/shim/shim_log.h"
#include "runtime/shim/shim_protocol.h"

namespace berth::shim {

namespace {

// One read buffer for all streams, with room for an attach frame header in front:
// a chunk is read into the payload and sent to attached clients as one frame. Static
// so it costs no stack and is paged in only as far as reads reach. While a client has
// not taken the whole frame, nothing more is read (AttachServer::output_blocked).
char g_frame[kAttachHeaderSize + kMaxAttachPayload];
// Per stream and wake-up, so a chatty stream cannot starve the other one.
constexpr int kReadsPerWake = 4;

int64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; 0 if unknown.
unsigned long long start_time_of(const char* pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%s/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name may hold spaces and parentheses: fields resume after the last ')'.
  char* p = std::strrchr(buf, ')');
  if (!p) return 0;
  ++p;
  for (int field = 3; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (field == 22) return std::strtoull(p, nullptr, 10);
    while (*p && *p != ' ') ++p;
  }
  return 0;
}

unsigned long long start_time_of(pid_t pid) {
  char text[16];
  std::snprintf(text, sizeof text, "%d", static_cast<int>(pid));
  return start_time_of(text);
}

bool exists(const char* name) {
  struct stat st{};
  return ::lstat(name, &st) == 0;
}

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

ShimMonitor::ShimMonitor(ShimOptions options)
    : options_(std::move(options)), log_(options_.log_path), control_(*this), attach_(*this),
      stdout_writer_(log_, "stdout"), stderr_writer_(log_, "stderr") {}

int ShimMonitor::run(int ready_fd, int signal_fd) {
  dir_fd_ = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return fail(ready_fd, "open the state dir", false);
  if (exists(kShimStateFile) || exists(kExitStateFile))
    return fail(ready_fd, "the state dir already belongs to a shim", false);

  char error[1024];
  if (int err = log_.open()) {
    std::snprintf(error, sizeof error, "open log file %s: %s", options_.log_path.c_str(), std::strerror(err));
    return fail(ready_fd, error, true);
  }
  if (int err = control_.listen(kControlSocket)) {
    std::snprintf(error, sizeof error, "listen on %s: %s", kControlSocket, std::strerror(err));
    return fail(ready_fd, error, true);
  }
  if (int err = attach_.listen(kAttachSocket)) {
    std::snprintf(error, sizeof error, "listen on %s: %s", kAttachSocket, std::strerror(err));
    return fail(ready_fd, error, true);
  }
  RuntimeClient runtime(options_.runtime, options_.runtime_root, options_.state_dir);
  if (!runtime.create(options_.id, options_.bundle, options_.tty, options_.stdin_open, container_, error,
                      sizeof error))
    return fail(ready_fd, error, true);

  if (auto cgroup = MemoryCgroup::of_process(container_.pid)) memory_cgroup_ = std::move(*cgroup);
  else shim_log("no memory cgroup, OOM kills will not be reported: %s", cgroup.error().message.c_str());

  ShimState state{::getpid(), start_time_of("self"), container_.pid, start_time_of(container_.pid)};
  char text[512];
  size_t size = format_shim_state(state, text, sizeof text);
  if (int err = write_file_durably(dir_fd_, kShimStateFile, text, size)) {
    runtime.force_delete(options_.id);
    std::snprintf(error, sizeof error, "write %s: %s", kShimStateFile, std::strerror(err));
    return fail(ready_fd, error, true);
  }
  if (ready_fd >= 0) {
    char line[64];
    int len = std::snprintf(line, sizeof line, "%.*s %d %d\n", static_cast<int>(kReplyOk.size()), kReplyOk.data(),
                            static_cast<int>(state.shim_pid), static_cast<int>(state.container_pid));
    if (!write_all(ready_fd, line, static_cast<size_t>(len))) {
      // The caller gave up waiting: nobody knows this container, so it must not stay.
      shim_log("the caller is gone (%s); deleting container %s", std::strerror(errno), options_.id.c_str());
      runtime.force_delete(options_.id);
      ::unlink(kShimStateFile);
      return fail(-1, "caller gone", true);
    }
    ::close(ready_fd);
  }

  if (options_.tty) {
    streams_[0] = {container_.pty_master.get(), &stdout_writer_, kAttachStdout};
    attach_.set_pty(container_.pty_master.get());
    if (options_.stdin_open) attach_.set_stdin(container_.pty_master.get(), options_.stdin_once);
  } else {
    streams_[0] = {container_.stdout_reader.get(), &stdout_writer_, kAttachStdout};
    streams_[1] = {container_.stderr_reader.get(), &stderr_writer_, kAttachStderr};
    if (container_.stdin_writer) attach_.set_stdin(container_.stdin_writer.get(), options_.stdin_once);
  }
  monitor(signal_fd);
  bool recorded = record_exit();
  // After exit.state: a client that sees EOF can read the exit at once.
  attach_.close();
  control_.close();
  return recorded ? 0 : 1;
}

int ShimMonitor::fail(int ready_fd, const char* message, bool remove_state) {
  if (remove_state) {
    // Leave nothing behind, and before the caller hears of the failure: it sees no
    // container, so it may check at once that no state is left either.
    control_.close();
    attach_.close();
    for (const char* name : {kInitPidFile, kRuntimeLogFile, kConsoleSocket, kShimLogFile}) ::unlink(name);
    ::rmdir(options_.state_dir.c_str());  // only if nothing else is in it
  }
  if (ready_fd >= 0) {
    char line[kMaxReadyLine];
    int len = std::snprintf(line, sizeof line, "%.*s %s\n", static_cast<int>(kReplyError.size()), kReplyError.data(),
                            message);
    if (len > 0 && static_cast<size_t>(len) >= sizeof line) {
      len = static_cast<int>(sizeof line - 1);
      line[len - 1] = '\n';
    }
    if (len > 0) write_all(ready_fd, line, static_cast<size_t>(len));
    ::close(ready_fd);
  }
  return 1;
}

void ShimMonitor::monitor(int signal_fd) {
  reap();  // an exit before we started watching left SIGCHLD pending; be sure anyway
  constexpr size_t kControlFds = 1 + ControlServer::kMaxClients;
  pollfd fds[3 + kControlFds + AttachServer::kMaxPollFds];
  for (;;) {
    bool open = streams_[0].fd >= 0 || streams_[1].fd >= 0;
    // A client still taking the last frame holds the output back, also after the exit
    // until the drain window closes.
    bool blocked = attach_.output_blocked();
    int timeout = -1;
    if (exited_) {
      if (!open && !blocked) break;
      int64_t left = drain_deadline_ms_ - monotonic_ms();
      if (left <= 0) {
        shim_log("output still open %d ms after the container exited; closing it", kDrainAfterExitMs);
        break;
      }
      timeout = static_cast<int>(left);
    }
    fds[0] = {signal_fd, POLLIN, 0};
    fds[1] = {blocked ? -1 : streams_[0].fd, POLLIN, 0};
    fds[2] = {blocked ? -1 : streams_[1].fd, POLLIN, 0};
    size_t control_count = control_.fill_pollfds(fds + 3, kControlFds);
    pollfd* attach_fds = fds + 3 + control_count;
    size_t attach_count = attach_.fill_pollfds(attach_fds, AttachServer::kMaxPollFds);
    if (::poll(fds, 3 + control_count + attach_count, timeout) < 0) {
      if (errno == EINTR) continue;
      shim_log("poll: %s", std::strerror(errno));
      ::sleep(1);  // nothing sensible left to do but try again
      continue;
    }
    if (fds[0].revents) on_signals(signal_fd);
    for (int i = 0; i < 2; ++i)
      if (fds[1 + i].revents && streams_[i].fd >= 0) drain(streams_[i]);
    control_.on_poll(fds + 3, control_count);
    attach_.on_poll(attach_fds, attach_count);
  }
  for (auto& s : streams_)
    if (s.fd >= 0) close_stream(s);
}

void ShimMonitor::on_signals(int signal_fd) {
  signalfd_siginfo info;
  while (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    if (info.ssi_signo == SIGCHLD) reap();
    else shim_log("ignoring signal %u: the container keeps running", info.ssi_signo);
  }
}

void ShimMonitor::reap() {
  for (;;) {
    int status = 0;
    // __WALL: orphans may have been cloned with an exit signal other than SIGCHLD.
    pid_t pid = ::waitpid(-1, &status, WNOHANG | __WALL);
    if (pid <= 0) return;
    if (pid != container_.pid || exited_) continue;
    exited_ = true;
    exit_status_ = status;
    exited_at_ns_ = CriLogWriter::realtime_ns();
    drain_deadline_ms_ = monotonic_ms() + kDrainAfterExitMs;
  }
}

void ShimMonitor::drain(Stream& s) {
  char* payload = g_frame + kAttachHeaderSize;
  for (int i = 0; i < kReadsPerWake && !attach_.output_blocked(); ++i) {
    ssize_t n = ::read(s.fd, payload, kMaxAttachPayload);
    if (n > 0) {
      size_t size = static_cast<size_t>(n);
      if (log_.enabled()) s.writer->write(payload, size);
      encode_attach_header(s.frame_type, static_cast<uint32_t>(size), g_frame);
      attach_.broadcast(g_frame, kAttachHeaderSize + size);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    // EOF; a pty master reports EIO once every slave fd is closed.
    close_stream(s);
    return;
  }
}

void ShimMonitor::close_stream(Stream& s) {
  if (log_.enabled()) s.writer->finish();
  s.fd = -1;  // container_ owns the fd
  if (options_.tty) {
    attach_.forget_container_fds();  // the pty master was its stdin and resize target
    container_.pty_master.reset();
  } else if (&s == &streams_[0]) {
    container_.stdout_reader.reset();
  } else {
    container_.stderr_reader.reset();
  }
}

bool ShimMonitor::record_exit() {
  ExitState state;
  if (WIFSIGNALED(exit_status_)) {
    state.signal = WTERMSIG(exit_status_);
    state.exit_code = 128 + state.signal;
  } else {
    state.exit_code = WEXITSTATUS(exit_status_);
  }
  state.exited_at_ns = exited_at_ns_;
  if (memory_cgroup_) {
    auto kills = memory_cgroup_->oom_kills();
    if (kills) state.oom_killed = *kills > 0;
    else shim_log("OOM counter: %s", kills.error().message.c_str());
  }
  char text[512];
  size_t size = format_exit_state(state, text, sizeof text);
  for (int attempt = 0;; ++attempt) {
    int err = write_file_durably(dir_fd_, kExitStateFile, text, size);
    if (err == 0) return true;
    shim_log("write %s: %s", kExitStateFile, std::strerror(err));
    // A full disk may clear up; the exit code is what berthd must not lose.
    if (attempt == 30) return false;
    ::sleep(1);
  }
}

void ShimMonitor::close_stdin() {
  // Under a tty the pty stays: it carries the output; the server stopped writing to it.
  if (!options_.tty) container_.stdin_writer.reset();
}

void ShimMonitor::handle_request(std::string_view request, char* reply, size_t reply_size) {
  while (!request.empty() && (request.back() == '\r' || request.back() == ' ')) request.remove_suffix(1);
  auto answer = [&](std::string_view tag, const char* detail) {
    if (detail) std::snprintf(reply, reply_size, "%.*s %s", static_cast<int>(tag.size()), tag.data(), detail);
    else std::snprintf(reply, reply_size, "%.*s", static_cast<int>(tag.size()), tag.data());
  };
  if (request == kRequestPing) return answer(kReplyOk, nullptr);
  if (request == kRequestReopen) {
    if (!log_.enabled()) return answer(kReplyError, "the container has no log file");
    int err = log_.reopen();
    if (err == 0) return answer(kReplyOk, nullptr);
    char detail[512];
    std::snprintf(detail, sizeof detail, "open %s: %s", options_.log_path.c_str(), std::strerror(err));
    return answer(kReplyError, detail);
  }
  answer(kReplyError, "unknown request");
}

}  // namespace berth::shim

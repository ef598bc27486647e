#include "tests/integration/stream_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace berth::testing {

namespace {

using Clock = std::chrono::steady_clock;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string make_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/berth-stream-client-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return {};
  return tmpl;
}

bool has_flag(const std::vector<std::string>& args, std::string_view flag) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
    return a == flag || (a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=');
  });
}

size_t count_flag(const std::vector<std::string>& args, std::string_view flag) {
  return std::count_if(args.begin(), args.end(), [&](const std::string& a) {
    return a == flag || (a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=');
  });
}

// The client's command line: the binary, the mode, --die-with-parent, the rest, and
// --result <result_path> when the mode writes one and args name none (result_path is
// then set, else cleared). timeout_sec > 0 adds --timeout-sec when args have none, so
// the client's own timer (which still writes the result) goes off before our kill.
std::vector<std::string> command_line(const std::string& binary, const std::vector<std::string>& args,
                                      const std::string& dir, std::string* result_path, long long timeout_sec = 0) {
  std::vector<std::string> argv = {binary};
  result_path->clear();
  if (args.empty()) return argv;
  argv.push_back(args[0]);
  if (!args[0].starts_with("-")) argv.push_back("--die-with-parent");
  argv.insert(argv.end(), args.begin() + 1, args.end());
  bool writes_result = args[0] == "exec" || args[0] == "attach" || args[0] == "portforward";
  if (writes_result && !has_flag(args, "--result")) {
    *result_path = dir + "/result.json";
    argv.push_back("--result");
    argv.push_back(*result_path);
  }
  if (writes_result && timeout_sec > 0 && !has_flag(args, "--timeout-sec")) {
    argv.push_back("--timeout-sec");
    argv.push_back(std::to_string(std::max<long long>(1, timeout_sec - 2)));
  }
  return argv;
}

// Starts argv with stdout and stderr going to files and stdin from one end of a
// socketpair (whose other end *stdin_fd gets; a socket so writes can use MSG_NOSIGNAL)
// or /dev/null. Returns the pid, -1 with *error set on failure.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path,
            bool pipe_stdin, int* stdin_fd, std::string* error) {
  *stdin_fd = -1;
  int sv[2] = {-1, -1};
  if (pipe_stdin && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    *error = std::string("socketpair: ") + std::strerror(errno);
    return -1;
  }
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  if (pipe_stdin) {
    ::posix_spawn_file_actions_adddup2(&actions, sv[1], 0);
  } else {
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  ::posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &defaults);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (sv[1] >= 0) ::close(sv[1]);
  if (rc != 0) {
    if (sv[0] >= 0) ::close(sv[0]);
    *error = "posix_spawn " + argv[0] + ": " + std::strerror(rc);
    return -1;
  }
  *stdin_fd = sv[0];
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// waitpid without hanging: the decoded status once pid has ended, else nullopt.
std::optional<int> try_reap(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid) return decode_status(status);
  if (r < 0) return -1;  // not our child (any more)
  return std::nullopt;
}

int reap(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  return r == pid ? decode_status(status) : -1;
}

// Waits up to deadline for pid, meanwhile feeding *pending to *stdin_fd (closed once
// all is written or the child stops reading). nullopt when the deadline passed.
std::optional<int> wait_until(pid_t pid, Clock::time_point deadline, int* stdin_fd, std::string_view* pending) {
  for (;;) {
    if (auto status = try_reap(pid)) return status;
    auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    int wait_ms = static_cast<int>(
        std::min<long long>(10, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
    if (stdin_fd && *stdin_fd >= 0 && pending) {
      if (pending->empty()) {
        ::close(*stdin_fd);
        *stdin_fd = -1;
        continue;
      }
      pollfd p{*stdin_fd, POLLOUT, 0};
      if (::poll(&p, 1, wait_ms) > 0) {
        ssize_t n = ::send(*stdin_fd, pending->data(), pending->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          pending->remove_prefix(static_cast<size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          *pending = {};  // the child is not reading any more
        }
      }
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

nlohmann::json read_result(const std::string& path) {
  if (path.empty()) return nullptr;
  std::string text = slurp(path);
  if (text.empty()) return nullptr;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

}  // namespace

std::string stream_client_binary() {
  if (const char* env = std::getenv("BERTH_STREAM_CLIENT"); env && *env) return env;
#ifdef STREAM_CLIENT_BINARY
  return STREAM_CLIENT_BINARY;
#else
  return {};
#endif
}

bool stream_client_available() { return stream_client_unavailable_reason().empty(); }

std::string stream_client_unavailable_reason() {
  std::string path = stream_client_binary();
  if (path.empty()) return "berth-stream-client was not built (no Go toolchain at configure time)";
  if (::access(path.c_str(), X_OK) != 0) return path + " is missing or not executable";
  return {};
}

StreamClientRun run_stream_client(std::vector<std::string> args, std::chrono::seconds timeout,
                                  std::string stdin_data) {
  StreamClientRun run;
  std::string binary = stream_client_binary();
  if (binary.empty()) {
    run.err = stream_client_unavailable_reason();
    return run;
  }
  std::string dir = make_temp_dir();
  if (dir.empty()) {
    run.err = std::string("mkdtemp: ") + std::strerror(errno);
    return run;
  }
  std::string result_path;
  std::vector<std::string> argv = command_line(binary, args, dir, &result_path, timeout.count());
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  int stdin_fd = -1;
  pid_t pid = spawn(argv, out_path, err_path, /*pipe_stdin=*/true, &stdin_fd, &run.err);
  if (pid > 0) {
    std::string_view pending = stdin_data;
    auto status = wait_until(pid, Clock::now() + timeout, &stdin_fd, &pending);
    bool timed_out = !status;
    if (timed_out) {
      ::kill(pid, SIGKILL);
      status = reap(pid);
    }
    if (stdin_fd >= 0) ::close(stdin_fd);
    run.exit_status = *status;
    run.out = slurp(out_path);
    run.err = slurp(err_path);
    if (timed_out) run.err += "\n[berth-stream-client killed after " + std::to_string(timeout.count()) + "s]\n";
    run.result = read_result(result_path.empty() ? std::string() : result_path);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return run;
}

BackgroundStreamClient::BackgroundStreamClient(std::vector<std::string> args)
    : BackgroundStreamClient(std::move(args), Options{}) {}

BackgroundStreamClient::BackgroundStreamClient(std::vector<std::string> args, Options options) {
  std::string binary = stream_client_binary();
  if (binary.empty()) {
    error_ = stream_client_unavailable_reason();
    return;
  }
  dir_ = make_temp_dir();
  if (dir_.empty()) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return;
  }
  out_path_ = dir_ + "/stdout";
  err_path_ = dir_ + "/stderr";
  std::vector<std::string> argv = command_line(binary, args, dir_, &result_path_);
  pid_ = spawn(argv, out_path_, err_path_, options.pipe_stdin, &stdin_fd_, &error_);
  if (pid_ <= 0) return;

  size_t want = count_flag(args, "--listen");
  auto deadline = Clock::now() + options.start_timeout;
  while (ports_.size() < want) {
    ports_.clear();
    std::string text = slurp(out_path_);
    size_t start = 0;
    // Only complete lines: the client may be caught halfway through writing one.
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(text.data() + start, nl - start);
      if (line.starts_with("listening ")) ports_.push_back(std::atoi(std::string(line.substr(10)).c_str()));
    }
    if (ports_.size() >= want) break;
    if (auto status = try_reap(pid_)) {
      finished_ = collect(*status);
      error_ = "berth-stream-client exited (status " + std::to_string(*status) + ") before listening: " +
               finished_->err;
      return;
    }
    if (Clock::now() >= deadline) {
      error_ = "berth-stream-client printed " + std::to_string(ports_.size()) + " of " + std::to_string(want) +
               " listening lines within " + std::to_string(options.start_timeout.count()) + "s: " + err_so_far();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

BackgroundStreamClient::~BackgroundStreamClient() {
  if (pid_ > 0) stop();
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool BackgroundStreamClient::running() {
  if (pid_ <= 0 || finished_) return false;
  if (auto status = try_reap(pid_)) {
    finished_ = collect(*status);
    return false;
  }
  return true;
}

bool BackgroundStreamClient::write_stdin(std::string_view data) {
  while (!data.empty()) {
    if (stdin_fd_ < 0) return false;
    ssize_t n = ::send(stdin_fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void BackgroundStreamClient::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

std::string BackgroundStreamClient::out_so_far() const { return out_path_.empty() ? std::string() : slurp(out_path_); }
std::string BackgroundStreamClient::err_so_far() const { return err_path_.empty() ? std::string() : slurp(err_path_); }

StreamClientRun BackgroundStreamClient::not_started() const {
  StreamClientRun run;
  run.err = error_;
  return run;
}

StreamClientRun BackgroundStreamClient::collect(int status) {
  StreamClientRun run;
  run.exit_status = status;
  run.out = out_so_far();
  run.err = err_so_far();
  run.result = read_result(result_path_);
  return run;
}

StreamClientRun BackgroundStreamClient::wait(std::chrono::seconds timeout) {
  if (finished_ || pid_ <= 0) return finished_ ? *finished_ : not_started();
  if (auto status = wait_until(pid_, Clock::now() + timeout, nullptr, nullptr)) {
    finished_ = collect(*status);
    return *finished_;
  }
  return stop(std::chrono::milliseconds(0));
}

StreamClientRun BackgroundStreamClient::stop(std::chrono::milliseconds grace) {
  if (finished_ || pid_ <= 0) return finished_ ? *finished_ : not_started();
  std::optional<int> status;
  if (grace.count() > 0) {
    ::kill(pid_, SIGTERM);
    status = wait_until(pid_, Clock::now() + grace, nullptr, nullptr);
  }
  if (!status) {
    ::kill(pid_, SIGKILL);
    status = reap(pid_);
  }
  finished_ = collect(*status);
  return *finished_;
}

}  // namespace berth::testing

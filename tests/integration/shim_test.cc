// berth-shim against the real `berth` runtime: logs, exit codes, OOM, survival of its
// caller, log rotation, tty, a failing create, its memory footprint, attach, and `pause`.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "runtime/shim/shim_client.h"
#include "tests/integration/runtime_fixture.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool path_exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

// Gone for good: not even a zombie.
bool reaped(pid_t pid, int wait_ms) {
  for (int waited = 0; waited <= wait_ms; waited += 10) {
    if (!path_exists("/proc/" + std::to_string(pid))) return true;
    ::usleep(10000);
  }
  return false;
}

struct LogLine {
  std::string stream, tag, message;
};

// Parses a CRI log file, checking every line's shape.
std::vector<LogLine> parse_log(const std::string& text) {
  static const std::regex line_re(R"((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z) (stdout|stderr) ([FP]) (.*))");
  std::vector<LogLine> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, line_re)) << "bad CRI log line: " << line;
    if (m.size() == 5) lines.push_back({m[2], m[3], m[4]});
  }
  return lines;
}

bool has_line(const std::vector<LogLine>& lines, const std::string& stream, const std::string& tag,
              const std::string& message) {
  for (auto& l : lines)
    if (l.stream == stream && l.tag == tag && l.message == message) return true;
  return false;
}

struct ShimMemory {
  long rss_kb = -1, anon_kb = -1, file_kb = -1;
};

ShimMemory shim_memory(pid_t pid) {
  auto status = slurp("/proc/" + std::to_string(pid) + "/status");
  auto field = [&](const std::string& name) {
    std::smatch m;
    std::regex re(name + R"(:\s+(\d+) kB)");
    return std::regex_search(status, m, re) ? std::stol(m[1]) : -1L;
  };
  return {field("VmRSS"), field("RssAnon"), field("RssFile")};
}

// A test's end of an attach connection: sends frames, collects 'o' and 'e' payloads.
class AttachConn {
 public:
  explicit AttachConn(UniqueFd fd) : fd_(std::move(fd)) {}

  bool send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool send_frame(char type, std::string_view payload) {
    char header[shim::kAttachHeaderSize];
    shim::encode_attach_header(type, static_cast<uint32_t>(payload.size()), header);
    return send_raw(std::string_view(header, sizeof header)) && send_raw(payload);
  }
  bool send_stdin(std::string_view bytes) { return send_frame(shim::kAttachStdin, bytes); }
  bool close_stdin() { return send_frame(shim::kAttachCloseStdin, {}); }
  bool resize(uint16_t width, uint16_t height) {
    char frame[shim::kAttachResizeFrameSize];
    shim::encode_attach_resize(width, height, frame);
    return send_raw(std::string_view(frame, sizeof frame));
  }
  void disconnect() { fd_.reset(); }

  // Reads frames until `done()` holds or EOF or `wait_ms` pass; returns done().
  bool wait_for(const std::function<bool()>& done, int wait_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (!done()) {
      if (eof) return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof = true;
        eof_errno = n < 0 ? errno : 0;
        continue;
      }
      std::string_view in(buf, static_cast<size_t>(n));
      shim::AttachPiece piece;
      while (decoder_.next(in, piece)) {
        if (piece.type == shim::kAttachStdout) out.append(piece.data, piece.size);
        else if (piece.type == shim::kAttachStderr) err.append(piece.data, piece.size);
        else other_frames = true;
      }
      if (decoder_.failed()) bad_frame = true;
    }
    return true;
  }
  bool wait_output(const std::string& needle, int wait_ms = 5000) {
    return wait_for([&] { return out.find(needle) != std::string::npos; }, wait_ms);
  }
  bool wait_eof(int wait_ms = 10000) { return wait_for([&] { return eof; }, wait_ms); }

  std::string out, err;
  bool eof = false;
  int eof_errno = 0;  // ECONNRESET when the shim closed with our bytes unread
  bool bad_frame = false;
  bool other_frames = false;

 private:
  UniqueFd fd_;
  shim::AttachDecoder decoder_;
};

class ShimTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    logs_ = tmp_ + "/logs";
    ::mkdir(logs_.c_str(), 0755);
  }

  void TearDown() override {
    if (!tmp_.empty()) {
      // Stop the containers first so their shims record the exit and leave.
      for (auto& id : ids_) berth({"delete", "--force", id});
      for (pid_t pid : shims_)
        if (alive(pid, 3000)) {
          ADD_FAILURE() << "shim " << pid << " still runs after its container was deleted";
          ::kill(pid, SIGKILL);
        }
    }
    RuntimeTest::TearDown();
  }

  ShimLaunch launch_for(const std::string& id, const std::string& bundle) {
    ShimLaunch l;
    l.shim_binary = BERTH_SHIM_BINARY;
    l.id = id;
    l.bundle = bundle;
    l.state_dir = tmp_ + "/shim-" + id;
    l.runtime_binary = BERTH_BINARY;
    l.runtime_root = root_;
    l.log_path = logs_ + "/" + id + ".log";
    return l;
  }

  ShimStarted launch(const ShimLaunch& l) {
    auto started = launch_shim(l);
    EXPECT_TRUE(started) << started.error().message;
    if (!started) return {};
    shims_.push_back(started->shim_pid);
    return *started;
  }

  static std::optional<ExitState> wait_exit(const std::string& state_dir, int wait_ms = 10000) {
    for (int waited = 0; waited <= wait_ms; waited += 20) {
      auto r = read_exit_state(state_dir);
      EXPECT_TRUE(r) << r.error().message;
      if (!r) return std::nullopt;
      if (r->has_value()) return *r;
      ::usleep(20000);
    }
    return std::nullopt;
  }

  // Waits until the log file holds `needle`.
  static bool wait_for_log(const std::string& path, const std::string& needle, int wait_ms = 5000) {
    for (int waited = 0; waited <= wait_ms; waited += 20) {
      if (slurp(path).find(needle) != std::string::npos) return true;
      ::usleep(20000);
    }
    return false;
  }

  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static std::unique_ptr<AttachConn> attach(const ShimLaunch& l) {
    auto fd = connect_attach(l.state_dir);
    EXPECT_TRUE(fd) << fd.error().message;
    if (!fd) return nullptr;
    return std::make_unique<AttachConn>(std::move(*fd));
  }

  std::string logs_;
  std::vector<pid_t> shims_;
};

TEST_F(ShimTest, LogsBothStreamsAndRecordsTheExitCode) {
  auto id = unique_id("shim-log");
  auto bundle = make_bundle(sh("echo out-line; echo err-line >&2; echo; printf no-newline; exit 3"));
  auto l = launch_for(id, bundle);
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);

  EXPECT_EQ(state(id)["status"], "created");
  auto shim_state = read_shim_state(l.state_dir);
  ASSERT_TRUE(shim_state) << shim_state.error().message;
  EXPECT_EQ(shim_state->shim_pid, started.shim_pid);
  EXPECT_EQ(shim_state->container_pid, started.container_pid);
  EXPECT_GT(shim_state->shim_start_time, 0u);
  EXPECT_GT(shim_state->container_start_time, 0u);
  EXPECT_EQ(state(id)["pid"], started.container_pid);
  auto running = read_exit_state(l.state_dir);
  ASSERT_TRUE(running);
  EXPECT_FALSE(running->has_value());
  auto ping = shim_request(l.state_dir, "ping", 2s);
  ASSERT_TRUE(ping) << ping.error().message;
  EXPECT_EQ(*ping, "ok");
  auto bad = shim_request(l.state_dir, "frobnicate", 2s);
  ASSERT_TRUE(bad) << bad.error().message;
  EXPECT_EQ(*bad, "error unknown request");

  int64_t before = now_ns();
  ASSERT_EQ(berth({"start", id}).code, 0);
  auto exit = wait_exit(l.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(exit->signal, 0);
  EXPECT_FALSE(exit->oom_killed);
  EXPECT_GE(exit->exited_at_ns, before);
  EXPECT_LE(exit->exited_at_ns, now_ns());

  auto lines = parse_log(slurp(l.log_path));
  EXPECT_EQ(lines.size(), 4u) << slurp(l.log_path);
  EXPECT_TRUE(has_line(lines, "stdout", "F", "out-line")) << slurp(l.log_path);
  EXPECT_TRUE(has_line(lines, "stderr", "F", "err-line")) << slurp(l.log_path);
  EXPECT_TRUE(has_line(lines, "stdout", "F", "")) << slurp(l.log_path);
  EXPECT_TRUE(has_line(lines, "stdout", "P", "no-newline")) << slurp(l.log_path);
  struct stat st{};
  ASSERT_EQ(::stat(l.log_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  // Having recorded the exit, the shim leaves, and takes its socket along.
  EXPECT_FALSE(alive(started.shim_pid, 3000));
  EXPECT_FALSE(path_exists(l.state_dir + "/shim.sock"));
}

TEST_F(ShimTest, SigkillIsRecordedAndSigtermDoesNotStopTheShim) {
  auto id = unique_id("shim-kill");
  auto bundle = make_bundle({"/bin/sleep", "1000"});
  auto l = launch_for(id, bundle);
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);

  ASSERT_EQ(::kill(started.shim_pid, SIGTERM), 0);
  ::usleep(200000);
  EXPECT_TRUE(alive(started.shim_pid, 0));
  EXPECT_TRUE(alive(started.container_pid, 0));
  auto ping = shim_request(l.state_dir, "ping", 2s);
  ASSERT_TRUE(ping) << ping.error().message;
  EXPECT_EQ(*ping, "ok");
  auto not_yet = read_exit_state(l.state_dir);
  ASSERT_TRUE(not_yet);
  EXPECT_FALSE(not_yet->has_value());

  ASSERT_EQ(::kill(started.container_pid, SIGKILL), 0);
  auto exit = wait_exit(l.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 137);
  EXPECT_EQ(exit->signal, 9);
  EXPECT_FALSE(exit->oom_killed);
}

TEST_F(ShimTest, OutlivesItsCaller) {
  auto id = unique_id("shim-orphan");
  auto bundle = make_bundle(sh("echo from-orphan"));
  auto l = launch_for(id, bundle);
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t caller = ::fork();
  ASSERT_GE(caller, 0);
  if (caller == 0) {
    // A berthd that dies right after launching its shim.
    auto started = launch_shim(l);
    ShimStarted s = started ? *started : ShimStarted{};
    ssize_t n = ::write(report[1], &s, sizeof s);
    ::_exit(n == sizeof s && started ? 0 : 1);
  }
  ::close(report[1]);
  ShimStarted started{};
  ASSERT_EQ(::read(report[0], &started, sizeof started), static_cast<ssize_t>(sizeof started));
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(caller, &status, 0), caller);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(started.shim_pid, 0);
  shims_.push_back(started.shim_pid);

  ::usleep(100000);
  EXPECT_TRUE(alive(started.shim_pid, 0)) << "the shim died with its caller";
  ASSERT_EQ(berth({"start", id}).code, 0);
  auto exit = wait_exit(l.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_TRUE(has_line(parse_log(slurp(l.log_path)), "stdout", "F", "from-orphan"));
}

TEST_F(ShimTest, ReopenStartsANewFileAfterRotation) {
  auto id = unique_id("shim-rotate");
  auto bundle = make_bundle(sh("echo before; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo after"));
  auto l = launch_for(id, bundle);
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(wait_for_log(l.log_path, "before"));

  std::string rotated = l.log_path + ".1";
  ASSERT_EQ(::rename(l.log_path.c_str(), rotated.c_str()), 0);
  auto reply = shim_request(l.state_dir, "reopen", 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(*reply, "ok");
  EXPECT_TRUE(path_exists(l.log_path)) << "reopen answered before the new file existed";

  std::ofstream(bundle + "/rootfs/tmp/go") << "go";
  auto exit = wait_exit(l.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 0);
  auto old_lines = parse_log(slurp(rotated));
  auto new_lines = parse_log(slurp(l.log_path));
  ASSERT_EQ(old_lines.size(), 1u) << slurp(rotated);
  EXPECT_EQ(old_lines[0].message, "before");
  ASSERT_EQ(new_lines.size(), 1u) << slurp(l.log_path);
  EXPECT_EQ(new_lines[0].message, "after");
}

TEST_F(ShimTest, ReopenFailureIsReportedAndLoggingGoesOn) {
  auto id = unique_id("shim-reopen-fail");
  auto bundle = make_bundle(sh("echo first; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo second"));
  auto l = launch_for(id, bundle);
  l.log_path = logs_ + "/sub/" + id + ".log";
  ::mkdir((logs_ + "/sub").c_str(), 0755);
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(wait_for_log(l.log_path, "first"));
  std::string moved = logs_ + "/moved.log";
  ASSERT_EQ(::rename(l.log_path.c_str(), moved.c_str()), 0);
  ASSERT_EQ(::rmdir((logs_ + "/sub").c_str()), 0);
  auto reply = shim_request(l.state_dir, "reopen", 5s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_TRUE(reply->starts_with("error ")) << *reply;
  EXPECT_NE(reply->find("No such file"), std::string::npos) << *reply;
  // The old file stays in use.
  std::ofstream(bundle + "/rootfs/tmp/go") << "go";
  ASSERT_TRUE(wait_exit(l.state_dir));
  EXPECT_TRUE(has_line(parse_log(slurp(moved)), "stdout", "F", "second")) << slurp(moved);
}

TEST_F(ShimTest, TtyOutputIsLoggedAsStdout) {
  auto id = unique_id("shim-tty");
  auto bundle = make_bundle(sh("echo tty-out; echo tty-err >&2; exit 5"),
                            [](nlohmann::json& j) { j["process"]["terminal"] = true; });
  auto l = launch_for(id, bundle);
  l.tty = true;
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);
  auto exit = wait_exit(l.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 5);
  auto text = slurp(l.log_path);
  auto lines = parse_log(text);
  // The pty turns "\n" into "\r\n"; the CRI log drops the "\r" like containerd does.
  EXPECT_TRUE(has_line(lines, "stdout", "F", "tty-out")) << text;
  EXPECT_TRUE(has_line(lines, "stdout", "F", "tty-err")) << text;
  EXPECT_EQ(text.find("stderr"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_FALSE(path_exists(l.state_dir + "/console.sock"));
}

TEST_F(ShimTest, StdinStaysOpenOnlyWhenAsked) {
  auto script = sh("if read x; then echo got-line; else echo got-eof; fi");
  auto closed_id = unique_id("shim-nostdin");
  auto closed = launch_for(closed_id, make_bundle(script));
  ASSERT_GT(launch(closed).container_pid, 0);
  ASSERT_EQ(berth({"start", closed_id}).code, 0);
  ASSERT_TRUE(wait_exit(closed.state_dir));
  EXPECT_TRUE(has_line(parse_log(slurp(closed.log_path)), "stdout", "F", "got-eof"));

  auto open_id = unique_id("shim-stdin");
  auto open = launch_for(open_id, make_bundle(script));
  open.stdin_open = true;
  open.stdin_once = true;
  auto started = launch(open);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", open_id}).code, 0);
  ::usleep(300000);
  EXPECT_TRUE(alive(started.container_pid, 0)) << "a held stdin must block the container's read";
  auto exit = read_exit_state(open.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_FALSE(exit->has_value());
}

TEST_F(ShimTest, FailingCreateLeavesNoShimAndNoState) {
  auto id = unique_id("shim-fail");
  auto l = launch_for(id, tmp_ + "/no-such-bundle");
  auto started = launch_shim(l);
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, EIO);
  EXPECT_NE(started.error().message.find("create container " + id), std::string::npos) << started.error().message;
  EXPECT_NE(started.error().message.find("no-such-bundle"), std::string::npos) << started.error().message;
  EXPECT_EQ(started.error().message.find('\n'), std::string::npos);

  EXPECT_FALSE(path_exists(l.state_dir)) << "state left behind";
  EXPECT_FALSE(state_dir_exists(id));
  // No shim process for this state dir.
  ::usleep(100000);
  DIR* proc = ::opendir("/proc");
  ASSERT_NE(proc, nullptr);
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::string cmdline = slurp(std::string("/proc/") + e->d_name + "/cmdline");
    EXPECT_EQ(cmdline.find(l.state_dir), std::string::npos) << "left running: pid " << e->d_name;
  }
  ::closedir(proc);
}

TEST_F(ShimTest, OomKillIsReported) {
  auto id = unique_id("shim-oom");
  auto bundle = make_bundle({"/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}, [](nlohmann::json& j) {
    j["linux"]["resources"]["memory"] = {{"limit", 16 * 1024 * 1024}};
  });
  auto l = launch_for(id, bundle);
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);
  auto exit = wait_exit(l.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 137) << slurp(l.log_path);
  EXPECT_EQ(exit->signal, 9);
  EXPECT_TRUE(exit->oom_killed);
}

TEST_F(ShimTest, ShimStaysSmall) {
  auto id = unique_id("shim-rss");
  auto bundle = make_bundle(sh("i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; sleep 1000"));
  auto l = launch_for(id, bundle);
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(wait_for_log(l.log_path, "line 199"));
  ASSERT_TRUE(shim_request(l.state_dir, "ping", 2s));
  auto status = slurp("/proc/" + std::to_string(started.shim_pid) + "/status");
  auto field = [&](const std::string& name) {
    std::smatch m;
    std::regex re(name + R"(:\s+(\d+) kB)");
    return std::regex_search(status, m, re) ? std::stol(m[1]) : -1L;
  };
  long rss = field("VmRSS"), anon = field("RssAnon"), file = field("RssFile");
  std::printf("[ shim    ] VmRSS %ld kB (RssAnon %ld kB, RssFile %ld kB shared by every shim)\n", rss, anon, file);
  RecordProperty("shim_vmrss_kb", static_cast<int>(rss));
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, 1536);
  EXPECT_LT(anon, 512);
}

TEST(ShimAttachFrames, EncodeAndDecodeInAnyPieces) {
  std::string stream;
  char header[shim::kAttachHeaderSize];
  shim::encode_attach_header('o', 300, header);
  EXPECT_EQ(std::string(header, 5), std::string("o\0\0\x01\x2c", 5));
  stream.append(header, 5);
  std::string big(300, 'x');
  big[0] = 'a';
  big[299] = 'z';
  stream += big;
  shim::encode_attach_header('c', 0, header);
  stream.append(header, 5);
  char resize[shim::kAttachResizeFrameSize];
  shim::encode_attach_resize(100, 40, resize);
  stream.append(resize, sizeof resize);
  shim::encode_attach_header('i', 3, header);
  stream.append(header, 5);
  stream += "abc";
  for (size_t step : {size_t{1}, size_t{2}, size_t{7}, stream.size()}) {
    shim::AttachDecoder d;
    std::string big_seen, small_seen;
    int closes = 0, resizes = 0, firsts = 0, lasts = 0;
    for (size_t at = 0; at < stream.size(); at += step) {
      std::string_view in(stream.data() + at, std::min(step, stream.size() - at));
      shim::AttachPiece p;
      while (d.next(in, p)) {
        if (p.type == 'o') {
          big_seen.append(p.data, p.size);
          firsts += p.first;
          lasts += p.last;
        } else if (p.type == 'c') {
          EXPECT_EQ(p.size, 0u);
          EXPECT_TRUE(p.first && p.last);
          ++closes;
        } else if (p.type == 'r') {
          uint16_t w = 0, h = 0;
          EXPECT_TRUE(shim::decode_attach_resize(p, w, h));
          EXPECT_EQ(w, 100);
          EXPECT_EQ(h, 40);
          ++resizes;
        } else if (p.type == 'i') {
          EXPECT_TRUE(p.first && p.last) << "small payloads come whole";
          small_seen.append(p.data, p.size);
        }
      }
      EXPECT_TRUE(in.empty());
    }
    EXPECT_FALSE(d.failed());
    EXPECT_TRUE(d.idle());
    EXPECT_EQ(big_seen, big) << "step " << step;
    EXPECT_EQ(firsts, 1);
    EXPECT_EQ(lasts, 1);
    EXPECT_EQ(closes, 1);
    EXPECT_EQ(resizes, 1);
    EXPECT_EQ(small_seen, "abc");
  }
  shim::AttachDecoder d;
  shim::encode_attach_header('i', shim::kMaxAttachPayload + 1, header);
  std::string_view in(header, 5);
  shim::AttachPiece p;
  EXPECT_FALSE(d.next(in, p));
  EXPECT_TRUE(d.failed());
}

TEST_F(ShimTest, AttachRelaysStdinAndBothOutputStreams) {
  auto id = unique_id("shim-attach");
  auto bundle = make_bundle(sh("echo early; while read l; do echo \"got $l\"; echo \"err-$l\" >&2; done"));
  auto l = launch_for(id, bundle);
  l.stdin_open = true;
  ASSERT_GT(launch(l).container_pid, 0);
  struct stat st{};
  ASSERT_EQ(::lstat((l.state_dir + "/attach.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(wait_for_log(l.log_path, "early"));

  // Output from before it attached is not replayed.
  auto a = attach(l);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->send_stdin("one\n"));
  ASSERT_TRUE(a->send_stdin("two\n"));
  EXPECT_TRUE(a->wait_for([&] { return a->out.size() >= 16 && a->err.size() >= 16; })) << a->out << a->err;
  EXPECT_EQ(a->out, "got one\ngot two\n");
  EXPECT_EQ(a->err, "err-one\nerr-two\n");
  // A payload bigger than the shim's reads arrives in pieces and is written whole.
  std::string wide(30000, 'x');
  ASSERT_TRUE(a->send_stdin(wide + "\n"));
  EXPECT_TRUE(a->wait_output("got " + wide + "\n", 10000)) << a->out.size();
  EXPECT_TRUE(a->wait_for([&] { return a->err.find("err-" + wide + "\n") != std::string::npos; }));
  EXPECT_FALSE(a->bad_frame);
  EXPECT_FALSE(a->other_frames);

  ASSERT_TRUE(wait_for_log(l.log_path, "err-two"));
  auto lines = parse_log(slurp(l.log_path));
  EXPECT_TRUE(has_line(lines, "stdout", "F", "early"));
  EXPECT_TRUE(has_line(lines, "stdout", "F", "got one"));
  EXPECT_TRUE(has_line(lines, "stdout", "F", "got two"));
  EXPECT_TRUE(has_line(lines, "stderr", "F", "err-one"));
  EXPECT_TRUE(has_line(lines, "stderr", "F", "err-two"));
}

TEST_F(ShimTest, AttachedClientsAllGetTheOutputUpToEight) {
  auto id = unique_id("shim-attach-two");
  auto l = launch_for(id, make_bundle(sh("while read l; do echo \"got $l\"; done")));
  l.stdin_open = true;
  ASSERT_GT(launch(l).container_pid, 0);
  auto a = attach(l);
  auto b = attach(l);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(a->send_stdin("x\n"));
  EXPECT_TRUE(a->wait_output("got x\n"));
  EXPECT_TRUE(b->wait_output("got x\n"));
  ASSERT_TRUE(b->send_stdin("y\n"));
  EXPECT_TRUE(a->wait_output("got y\n"));
  EXPECT_TRUE(b->wait_output("got y\n"));
  EXPECT_EQ(a->out, "got x\ngot y\n");
  EXPECT_EQ(b->out, "got x\ngot y\n");

  // Eight at once; the ninth is closed at once, and a freed place can be taken again.
  std::vector<std::unique_ptr<AttachConn>> more;
  for (int i = 0; i < 7; ++i) {
    more.push_back(attach(l));
    ASSERT_TRUE(more.back());
  }
  EXPECT_TRUE(more.back()->wait_eof(5000)) << "a ninth client was accepted";
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(more[i]);
    EXPECT_FALSE(more[i]->wait_eof(50));
  }
  more.clear();
  auto c = attach(l);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send_stdin("z\n"));
  EXPECT_TRUE(c->wait_output("got z\n"));
  EXPECT_TRUE(a->wait_output("got z\n"));
  EXPECT_TRUE(wait_for_log(l.log_path, "got z"));
}

TEST_F(ShimTest, AttachCloseWithoutStdinOnceLeavesStdinOpen) {
  auto id = unique_id("shim-attach-keep");
  auto l = launch_for(id, make_bundle(sh("while read l; do echo \"got $l\"; done; echo stdin-eof")));
  l.stdin_open = true;
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);
  auto a = attach(l);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->send_stdin("a\n"));
  EXPECT_TRUE(a->wait_output("got a\n"));
  ASSERT_TRUE(a->close_stdin());
  ::usleep(100000);
  a->disconnect();  // having sent stdin
  auto b = attach(l);
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->send_stdin("b\n"));
  EXPECT_TRUE(b->wait_output("got b\n"));
  EXPECT_EQ(b->out, "got b\n");
  EXPECT_TRUE(alive(started.container_pid, 0));
  EXPECT_EQ(slurp(l.log_path).find("stdin-eof"), std::string::npos);
}

TEST_F(ShimTest, AttachStdinOnceClosesStdinAfterTheFirstClient) {
  // Ends with 'c'.
  {
    auto id = unique_id("shim-attach-once");
    auto l = launch_for(id, make_bundle({"/bin/cat"}));
    l.stdin_open = true;
    l.stdin_once = true;
    auto started = launch(l);
    ASSERT_GT(started.container_pid, 0);
    auto a = attach(l);
    ASSERT_TRUE(a);
    ASSERT_EQ(berth({"start", id}).code, 0);
    ASSERT_TRUE(a->send_stdin("hello\n"));
    EXPECT_TRUE(a->wait_output("hello\n"));
    ASSERT_TRUE(a->close_stdin());
    EXPECT_TRUE(a->wait_eof()) << "cat did not see EOF, or the shim kept the connection";
    EXPECT_EQ(a->eof_errno, 0);
    EXPECT_EQ(a->out, "hello\n");
    // The exit is on disk by the time the connection closes.
    auto exit = read_exit_state(l.state_dir);
    ASSERT_TRUE(exit) << exit.error().message;
    ASSERT_TRUE(exit->has_value());
    EXPECT_EQ((*exit)->exit_code, 0);
    EXPECT_TRUE(has_line(parse_log(slurp(l.log_path)), "stdout", "F", "hello"));
  }
  // Ends with a client that goes away after having sent stdin; an observer that never
  // sent any does not count.
  {
    auto id = unique_id("shim-attach-once-gone");
    auto l = launch_for(id, make_bundle({"/bin/cat"}));
    l.stdin_open = true;
    l.stdin_once = true;
    ASSERT_GT(launch(l).container_pid, 0);
    auto watcher = attach(l);
    auto early_leaver = attach(l);
    auto a = attach(l);
    ASSERT_TRUE(watcher && early_leaver && a);
    early_leaver->disconnect();
    ASSERT_EQ(berth({"start", id}).code, 0);
    ASSERT_TRUE(a->send_stdin("bye\n"));
    EXPECT_TRUE(watcher->wait_output("bye\n"));
    EXPECT_TRUE(a->wait_output("bye\n"));
    a->disconnect();
    EXPECT_TRUE(watcher->wait_eof());
    EXPECT_EQ(watcher->out, "bye\n");
    auto exit = wait_exit(l.state_dir);
    ASSERT_TRUE(exit);
    EXPECT_EQ(exit->exit_code, 0);
  }
}

TEST_F(ShimTest, AttachToATtyResizesAndTypes) {
  auto id = unique_id("shim-attach-tty");
  auto bundle = make_bundle({"/bin/sh"}, [](nlohmann::json& j) { j["process"]["terminal"] = true; });
  auto l = launch_for(id, bundle);
  l.tty = true;
  l.stdin_open = true;
  ASSERT_GT(launch(l).container_pid, 0);
  auto a = attach(l);
  ASSERT_TRUE(a);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(a->resize(100, 40));
  ASSERT_TRUE(a->send_stdin("stty size\n"));
  EXPECT_TRUE(a->wait_output("40 100")) << a->out;
  ASSERT_TRUE(a->resize(120, 50));
  ASSERT_TRUE(a->send_stdin("stty size; echo \"tty-$((6*7))\" >&2\n"));
  EXPECT_TRUE(a->wait_output("50 120")) << a->out;
  EXPECT_TRUE(a->wait_output("tty-42")) << a->out;
  EXPECT_TRUE(a->err.empty()) << "a tty has one output stream: " << a->err;
  ASSERT_TRUE(a->send_stdin("exit 4\n"));
  EXPECT_TRUE(a->wait_eof());
  auto exit = wait_exit(l.state_dir);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 4);
  // (Not parse_log: the shell's line editing leaves bare "\r"s inside lines.)
  EXPECT_NE(slurp(l.log_path).find(" stdout F 40 100\n"), std::string::npos) << slurp(l.log_path);
}

TEST_F(ShimTest, ASlowAttachedClientHoldsOutputBackWithoutGrowingTheShim) {
  auto id = unique_id("shim-attach-slow");
  // About 1.7 MB, far more than the pipe and the socket buffer hold.
  auto bundle = make_bundle(sh(
      "i=0; while [ $i -lt 20000 ]; do "
      "echo \"line $i 0123456789012345678901234567890123456789012345678901234567890123456789\"; "
      "i=$((i+1)); done; echo all-written; sleep 1000"));
  auto l = launch_for(id, bundle);
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  auto slow = attach(l);  // never reads
  ASSERT_TRUE(slow);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(wait_for_log(l.log_path, "line 100 "));
  ::usleep(1500000);
  EXPECT_TRUE(alive(started.container_pid, 0));
  EXPECT_EQ(slurp(l.log_path).find("all-written"), std::string::npos) << "the output did not wait for the client";
  auto ping = shim_request(l.state_dir, "ping", 2s);
  ASSERT_TRUE(ping) << ping.error().message;
  EXPECT_EQ(*ping, "ok");
  auto mem = shim_memory(started.shim_pid);
  std::printf("[ shim    ] with a stuck client: VmRSS %ld kB (RssAnon %ld kB, RssFile %ld kB)\n", mem.rss_kb,
              mem.anon_kb, mem.file_kb);
  EXPECT_GT(mem.rss_kb, 0);
  EXPECT_LT(mem.rss_kb, 1536);
  EXPECT_LT(mem.anon_kb, 512);

  slow->disconnect();
  EXPECT_TRUE(wait_for_log(l.log_path, "all-written", 20000));
  auto lines = parse_log(slurp(l.log_path));
  EXPECT_EQ(lines.size(), 20001u);
  EXPECT_TRUE(has_line(lines, "stdout", "F",
                       "line 19999 0123456789012345678901234567890123456789012345678901234567890123456789"));
}

TEST_F(ShimTest, AnOversizedAttachFrameDropsOnlyThatClient) {
  auto id = unique_id("shim-attach-bad");
  auto l = launch_for(id, make_bundle(sh("while read l; do echo \"got $l\"; done")));
  l.stdin_open = true;
  ASSERT_GT(launch(l).container_pid, 0);
  auto bad = attach(l);
  auto good = attach(l);
  ASSERT_TRUE(bad && good);
  ASSERT_EQ(berth({"start", id}).code, 0);
  char header[shim::kAttachHeaderSize];
  shim::encode_attach_header(shim::kAttachStdin, shim::kMaxAttachPayload + 1, header);
  ASSERT_TRUE(bad->send_raw(std::string_view(header, sizeof header)));
  EXPECT_TRUE(bad->wait_eof(5000));
  ASSERT_TRUE(good->send_stdin("z\n"));
  EXPECT_TRUE(good->wait_output("got z\n"));
  EXPECT_EQ(bad->out, "");
  // An unknown frame type is skipped, not an error.
  ASSERT_TRUE(good->send_frame('?', "whatever"));
  ASSERT_TRUE(good->send_stdin("w\n"));
  EXPECT_TRUE(good->wait_output("got w\n"));
  EXPECT_FALSE(good->eof);
}

TEST_F(ShimTest, AttachEndsWhenTheContainerExits) {
  auto id = unique_id("shim-attach-exit");
  auto l = launch_for(id, make_bundle(sh("echo bye; echo bye-err >&2; exit 7")));
  auto started = launch(l);
  ASSERT_GT(started.container_pid, 0);
  auto a = attach(l);
  ASSERT_TRUE(a);
  ASSERT_EQ(berth({"start", id}).code, 0);
  EXPECT_TRUE(a->wait_eof());
  EXPECT_EQ(a->out, "bye\n");
  EXPECT_EQ(a->err, "bye-err\n");
  auto exit = read_exit_state(l.state_dir);
  ASSERT_TRUE(exit) << exit.error().message;
  ASSERT_TRUE(exit->has_value()) << "EOF came before the exit was recorded";
  EXPECT_EQ((*exit)->exit_code, 7);
  EXPECT_FALSE(path_exists(l.state_dir + "/attach.sock"));
  auto again = connect_attach(l.state_dir);
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().code == ENOENT || again.error().code == ECONNREFUSED) << again.error().message;
  EXPECT_FALSE(alive(started.shim_pid, 3000));
}

TEST_F(ShimTest, AttachWorksThroughALongStateDir) {
  auto id = unique_id("shim-attach-long");
  auto l = launch_for(id, make_bundle(sh("while read l; do echo \"got $l\"; done")));
  l.state_dir = tmp_ + "/" + std::string(60, 'd') + "/" + std::string(60, 'e') + "/shim-" + id;
  ASSERT_GT(l.state_dir.size() + sizeof "/attach.sock", sizeof(sockaddr_un::sun_path));
  ::mkdir((tmp_ + "/" + std::string(60, 'd')).c_str(), 0700);
  ::mkdir((tmp_ + "/" + std::string(60, 'd') + "/" + std::string(60, 'e')).c_str(), 0700);
  l.stdin_open = true;
  ASSERT_GT(launch(l).container_pid, 0);
  auto a = attach(l);
  ASSERT_TRUE(a);
  ASSERT_EQ(berth({"start", id}).code, 0);
  ASSERT_TRUE(a->send_stdin("far\n"));
  EXPECT_TRUE(a->wait_output("got far\n"));
}

TEST(ShimPause, ReapsOrphansAsPidOneAndExitsOnSigterm) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: new pid namespace";
  pid_t holder = static_cast<pid_t>(::syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0));
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    ::execl(BERTH_SHIM_BINARY, "berth-shim", "pause", nullptr);
    ::_exit(127);
  }
  // Signals sent before it blocks them would be dropped (PID 1 with default handlers).
  bool ready = false;
  for (int i = 0; i < 300 && !ready; ++i) {
    std::string status = slurp("/proc/" + std::to_string(holder) + "/status");
    std::smatch m;
    ready = std::regex_search(status, m, std::regex(R"(SigBlk:\s+([0-9a-f]+))")) && m[1] != "0000000000000000";
    if (!ready) ::usleep(10000);
  }
  ASSERT_TRUE(ready);

  // An orphan in its namespace: its parent there exits at once, so the holder
  // inherits it and must reap it. (Reparenting follows the dying parent's namespace,
  // so that parent must be inside too.)
  pid_t helper = ::fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    int ns = ::open(("/proc/" + std::to_string(holder) + "/ns/pid").c_str(), O_RDONLY);
    if (ns < 0 || ::setns(ns, CLONE_NEWPID) != 0) ::_exit(1);
    pid_t parent = ::fork();
    if (parent == 0) {
      if (::fork() == 0) {
        ::usleep(300000);
        ::_exit(0);
      }
      ::_exit(0);
    }
    int st = 0;
    ::waitpid(parent, &st, 0);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(helper, &status, 0), helper);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::string children = slurp("/proc/" + std::to_string(holder) + "/task/" + std::to_string(holder) + "/children");
  pid_t orphan = 0;
  std::istringstream(children) >> orphan;
  ASSERT_GT(orphan, 0) << "the holder inherited no orphan";
  EXPECT_TRUE(reaped(orphan, 3000)) << "the orphan stayed a zombie";

  EXPECT_EQ(::kill(holder, 0), 0);
  ASSERT_EQ(::kill(holder, SIGTERM), 0);
  bool exited = false;
  for (int i = 0; i < 300 && !exited; ++i) {
    exited = ::waitpid(holder, &status, WNOHANG) == holder;
    if (!exited) ::usleep(10000);
  }
  if (!exited) {
    ::kill(holder, SIGKILL);
    ::waitpid(holder, &status, 0);
  }
  ASSERT_TRUE(exited) << "pause ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace berth::testing

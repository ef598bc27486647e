// berth-shim against the real `berth` runtime: logs, exit codes, OOM, survival of its
// caller, log rotation, tty, a failing create, its memory footprint, and `pause`.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <dirent.h>
#include <fstream>
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

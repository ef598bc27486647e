// CRI streaming against a real berthd: Exec, Attach and PortForward return URLs, and
// berth-stream-client (Go, on the SPDY and WebSocket libraries kubelet and kubectl
// use) drives them as kubectl would. Raw sockets check the HTTP and protocol errors.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <regex>
#include <thread>

#include "cri/streaming/spdy_codec.h"
#include "tests/integration/cri_fixture.h"
#include "tests/integration/stream_client.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

// A plain TCP connection to the streaming server, for what no well-behaved client sends.
class RawConnection {
 public:
  explicit RawConnection(const std::string& url) {
    static const std::regex re(R"(http://([0-9.]+):(\d+)(/.*))");
    std::smatch m;
    if (!std::regex_match(url, m, re)) return;
    path_ = m[3];
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(m[2])));
    ::inet_pton(AF_INET, std::string(m[1]).c_str(), &a.sin_addr);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Everything until `until` appears, EOF, or the timeout.
  std::string read(std::chrono::milliseconds timeout, std::string_view until = {}) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (!until.empty() && got_.find(until) != std::string::npos) break;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      got_.append(buf, static_cast<size_t>(n));
    }
    return got_;
  }
  bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  std::string path_, got_;
  bool eof_ = false;
};

std::string http_get(int port, std::string_view request) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return reply;
}

class CriStreamingTest : public SharedBerthdTest<CriStreamingTest> {
 public:
  // Short limits, so the idle, token expiry and cap tests finish quickly; the
  // transfers in the other tests are never idle that long.
  static void prepare(BerthdFixture& d) {
    d.set_config_toml(
        "[streaming]\nidle_timeout_seconds = 6\ntoken_ttl_seconds = 3\nmax_connections = 24\n"
        "stream_creation_timeout_seconds = 5\n");
  }

 protected:
  void SetUp() override {
    SharedBerthdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!stream_client_available()) GTEST_SKIP() << stream_client_unavailable_reason();
    pod_ = d_->pod_config("stream");
    pod_id_ = d_->run_pod(pod_);
    ASSERT_FALSE(pod_id_.empty());
  }
  void TearDown() override {
    if (!pod_id_.empty()) {
      EXPECT_TRUE(d_->remove_pod(pod_id_).ok());
    }
    SharedBerthdTest::TearDown();
  }

  std::string start(const v1::ContainerConfig& config) {
    std::string id = d_->create_container(pod_id_, config, pod_);
    EXPECT_TRUE(d_->start_container(id));
    return id;
  }
  std::string sleeper(const std::string& name) { return start(d_->container_config(name, {"/bin/sleep", "1000"})); }

  ::grpc::Status exec(const std::string& id, const std::vector<std::string>& cmd, bool in, bool out, bool err,
                      bool tty, std::string* url) {
    v1::ExecRequest req;
    req.set_container_id(id);
    for (auto& c : cmd) req.add_cmd(c);
    req.set_stdin(in);
    req.set_stdout(out);
    req.set_stderr(err);
    req.set_tty(tty);
    v1::ExecResponse resp;
    auto s = d_->runtime().Exec(call_context().get(), req, &resp);
    if (url) *url = resp.url();
    return s;
  }
  std::string exec_url(const std::string& id, const std::vector<std::string>& cmd, bool in = false, bool tty = false) {
    std::string url;
    auto s = exec(id, cmd, in, true, !tty, tty, &url);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return url;
  }
  std::string attach_url(const std::string& id, bool in, bool tty) {
    v1::AttachRequest req;
    req.set_container_id(id);
    req.set_stdin(in);
    req.set_stdout(true);
    req.set_stderr(!tty);
    req.set_tty(tty);
    v1::AttachResponse resp;
    auto s = d_->runtime().Attach(call_context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.url();
  }
  std::string port_forward_url(std::vector<int> ports = {}) {
    v1::PortForwardRequest req;
    req.set_pod_sandbox_id(pod_id_);
    for (int p : ports) req.add_port(p);
    v1::PortForwardResponse resp;
    auto s = d_->runtime().PortForward(call_context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.url();
  }
  // Polls until no process has `needle` in its command line.
  static bool gone(const std::string& needle, std::chrono::seconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!processes_with(needle).empty()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(50ms);
    }
    return true;
  }

  v1::PodSandboxConfig pod_;
  std::string pod_id_;
};

// ---- exec ------------------------------------------------------------------------

TEST_F(CriStreamingTest, ExecOverSpdyRelaysOutputAndExitCode) {
  std::string id = sleeper("exec");
  auto run = run_stream_client(
      {"exec", "--url", exec_url(id, {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}), "--stdout", "--stderr"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
  EXPECT_EQ(run.result["protocol"], "v4.channel.k8s.io");
  EXPECT_EQ(run.out, "out\n");
  EXPECT_EQ(run.err, "err\n");
  EXPECT_EQ(run.result["exit_code"], 3) << run.result.dump();
  EXPECT_EQ(run.result["status"]["reason"], "NonZeroExitCode");
  EXPECT_EQ(run.result["status"]["details"]["causes"][0]["reason"], "ExitCode");

  run = run_stream_client({"exec", "--url", exec_url(id, {"/bin/true"}), "--stdout", "--stderr"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.result["status"]["status"], "Success") << run.result.dump();
  EXPECT_EQ(run.result["exit_code"], 0);
}

TEST_F(CriStreamingTest, ExecRunsAsTheContainerInItsNamespaces) {
  auto config = d_->container_config("ns", {"/bin/sleep", "1000"});
  config.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1234);
  config.mutable_linux()->mutable_security_context()->set_no_new_privs(true);
  std::string id = start(config);
  auto run = run_stream_client(
      {"exec", "--url",
       exec_url(id, {"/bin/sh", "-c", "id -u; hostname; tr '\\0' ' ' </proc/1/cmdline; grep NoNewPrivs /proc/self/status"}),
       "--stdout", "--stderr"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(run.out.starts_with("1234\nstream\n/bin/sleep 1000")) << run.out;
  EXPECT_NE(run.out.find("NoNewPrivs:\t1"), std::string::npos) << run.out;
}

TEST_F(CriStreamingTest, ExecStdinIsRelayedAndItsEndReachesTheCommand) {
  std::string id = sleeper("stdin");
  std::string input;
  for (int i = 0; input.size() < (1 << 20); ++i) input += "line " + std::to_string(i) + "\n";
  std::string file = d_->dir() + "/stdin.txt";
  {
    FILE* f = std::fopen(file.c_str(), "w");
    std::fwrite(input.data(), 1, input.size(), f);
    std::fclose(f);
  }
  // cat ends only when stdin ends: the client's half-close must reach it.
  auto run = run_stream_client(
      {"exec", "--url", exec_url(id, {"/bin/cat"}, true), "--stdin", "--stdout", "--stderr", "--stdin-file", file});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out.size(), input.size());
  EXPECT_TRUE(run.out == input);
  EXPECT_EQ(run.result["exit_code"], 0);
}

TEST_F(CriStreamingTest, ExecStreamsLargeOutput) {
  std::string id = sleeper("large");
  auto run = run_stream_client({"exec", "--url",
                                exec_url(id, {"/bin/dd", "if=/dev/zero", "bs=1048576", "count=256"}), "--stdout",
                                "--stderr", "--discard-stdout"},
                               120s);
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.result["stdout_bytes"], 256u << 20);
  EXPECT_EQ(run.result["exit_code"], 0);
}

TEST_F(CriStreamingTest, ExecWithTerminalResizesAndEndsOnEof) {
  std::string id = sleeper("tty");
  // The first size arrives right after the streams open; poll for it, then type.
  std::string script = "for i in $(seq 100); do s=$(stty size); [ \"$s\" = \"40 100\" ] && break; sleep 0.05; done; "
                       "echo size=$s; read line; echo got=$line; exit 7";
  auto run = run_stream_client({"exec", "--url", exec_url(id, {"/bin/sh", "-c", script}, true, true), "--stdin",
                                "--stdout", "--tty", "--resize", "100x40", "--stdin-data", "typed\n"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.out << run.result.dump();
  EXPECT_NE(run.out.find("size=40 100"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("got=typed"), std::string::npos) << run.out;
  EXPECT_EQ(run.result["exit_code"], 7);

  // A reader of the terminal in canonical mode sees the client's end of input as the
  // terminal's EOF (^D).
  run = run_stream_client({"exec", "--url", exec_url(id, {"/bin/cat"}, true, true), "--stdin", "--stdout", "--tty",
                           "--stdin-data", "typed-to-cat\n"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.out << run.result.dump();
  EXPECT_NE(run.out.find("typed-to-cat"), std::string::npos) << run.out;
  EXPECT_EQ(run.result["exit_code"], 0);
}

TEST_F(CriStreamingTest, EveryProtocolVersionCarriesTheOutcome) {
  std::string id = sleeper("versions");
  struct Case {
    std::string transport, protocol;
    bool json_status;
  };
  for (auto& c : std::vector<Case>{{"spdy", "v4.channel.k8s.io", true},
                                   {"spdy", "v3.channel.k8s.io", false},
                                   {"spdy", "v2.channel.k8s.io", false},
                                   {"spdy", "channel.k8s.io", false},
                                   {"ws", "v5.channel.k8s.io", true},
                                   {"ws", "v4.channel.k8s.io", true},
                                   {"ws", "v4.base64.channel.k8s.io", true},
                                   {"ws", "channel.k8s.io", false},
                                   {"ws", "base64.channel.k8s.io", false}}) {
    SCOPED_TRACE(c.transport + " " + c.protocol);
    auto run = run_stream_client({"exec", "--url", exec_url(id, {"/bin/sh", "-c", "echo o; echo e >&2; exit 2"}),
                                  "--transport", c.transport, "--protocol", c.protocol, "--stdout", "--stderr"});
    ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
    EXPECT_EQ(run.result["protocol"], c.protocol);
    EXPECT_EQ(run.out, "o\n");
    EXPECT_EQ(run.err, "e\n");
    if (c.json_status) {
      EXPECT_EQ(run.result["exit_code"], 2) << run.result.dump();
    } else {
      EXPECT_NE(run.result["status_raw"].get<std::string>().find("exit code 2"), std::string::npos)
          << run.result.dump();
    }
  }
}

TEST_F(CriStreamingTest, WebSocketV5ClosesStdin) {
  std::string id = sleeper("ws5");
  auto run = run_stream_client({"exec", "--url", exec_url(id, {"/bin/cat"}, true), "--transport", "ws", "--protocol",
                                "v5.channel.k8s.io", "--stdin", "--stdout", "--stderr", "--stdin-data", "via ws\n"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
  EXPECT_EQ(run.out, "via ws\n");
  EXPECT_EQ(run.result["exit_code"], 0);
}

TEST_F(CriStreamingTest, ExecRequestsAreCheckedByTheRpc) {
  std::string id = sleeper("checks");
  std::string url;
  EXPECT_EQ(exec("no-such-container", {"/bin/true"}, false, true, true, false, &url).error_code(),
            ::grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(exec(id, {"/bin/true"}, false, false, false, false, &url).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(exec(id, {"/bin/true"}, false, true, true, true, &url).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(exec(id, {}, false, true, true, false, &url).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);

  auto exited = d_->run_to_exit(pod_id_, d_->container_config("done", {"/bin/true"}), pod_);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exec(exited->id(), {"/bin/true"}, false, true, true, false, &url).error_code(),
            ::grpc::StatusCode::FAILED_PRECONDITION);

  // A command that cannot start: the error stream says why.
  auto run = run_stream_client({"exec", "--url", exec_url(id, {"/no/such/binary"}), "--stdout", "--stderr"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.result["status"]["reason"], "InternalError") << run.result.dump();
  EXPECT_NE(run.result["status"]["message"].get<std::string>().find("/no/such/binary"), std::string::npos);
}

TEST_F(CriStreamingTest, TokensWorkOnceAndExpire) {
  std::string id = sleeper("tokens");
  std::string url = exec_url(id, {"/bin/echo", "once"});
  auto run = run_stream_client({"exec", "--url", url, "--stdout", "--stderr"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out, "once\n");
  run = run_stream_client({"exec", "--url", url, "--stdout", "--stderr"});
  EXPECT_EQ(run.exit_status, 1);
  EXPECT_EQ(run.result["http_status"], 404) << run.result.dump();

  // Guessed, mangled, and used on the wrong path.
  std::string fresh = exec_url(id, {"/bin/echo", "x"});
  std::string base = fresh.substr(0, fresh.find("/exec/"));
  std::string token = fresh.substr(fresh.rfind('/') + 1);
  for (auto& bad : {base + "/exec/AAAAAAAAAAAAAAAAAAAAAA", base + "/attach/" + token, base + "/exec/" + token + "x"}) {
    run = run_stream_client({"exec", "--url", bad, "--stdout", "--stderr"});
    EXPECT_EQ(run.result["http_status"], 404) << bad << " " << run.result.dump();
  }
  // The wrong-path attempt consumed nothing it could use, and the token still dies
  // after its time (3 s in this suite).
  std::this_thread::sleep_for(3500ms);
  run = run_stream_client({"exec", "--url", fresh, "--stdout", "--stderr"});
  EXPECT_EQ(run.result["http_status"], 404) << run.result.dump();
}

TEST_F(CriStreamingTest, BadUpgradesGetClearHttpErrors) {
  std::string id = sleeper("http");
  auto request = [&](const std::string& headers) {
    RawConnection c(exec_url(id, {"/bin/true"}));
    EXPECT_TRUE(c.ok());
    c.send("POST " + c.path() + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n");
    return c.read(5s, "\r\n\r\n");
  };
  std::string r = request("Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v9.channel.k8s.io\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 403")) << r;
  EXPECT_NE(r.find("X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io"), std::string::npos) << r;
  r = request("");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 400")) << r;
  r = request("Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 400")) << r;
  r = request("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 400")) << r;  // websocket needs GET
  // Not HTTP at all.
  RawConnection c(exec_url(id, {"/bin/true"}));
  c.send("\x16\x03\x01garbage\r\n\r\n");
  EXPECT_TRUE(c.read(5s, "\r\n\r\n").starts_with("HTTP/1.1 4")) << c.read(0ms);
}

TEST_F(CriStreamingTest, MalformedSpdyFramesEndTheSessionAndItsCommand) {
  std::string id = sleeper("frames");
  RawConnection c(exec_url(id, {"/bin/sleep", "4242"}));
  ASSERT_TRUE(c.ok());
  c.send("POST " + c.path() +
         " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
         "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n");
  std::string head = c.read(5s, "\r\n\r\n");
  ASSERT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
  streaming::spdy::FrameWriter writer;
  for (auto [sid, type] : {std::pair{1u, "error"}, std::pair{3u, "stdout"}, std::pair{5u, "stderr"}}) {
    auto frame = writer.syn_stream({.stream_id = sid, .associated_id = 0, .priority = 0, .flags = 0,
                                    .headers = {{"streamtype", type}}});
    ASSERT_TRUE(frame);
    c.send(*frame);
  }
  // The command starts once its streams exist.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (processes_with("sleep 4242").empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(processes_with("sleep 4242").empty());
  // A control frame of version 2: GOAWAY from the server, the connection closed, the
  // command killed.
  c.send(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  c.read(5s);
  EXPECT_TRUE(c.eof());
  EXPECT_TRUE(gone("sleep 4242"));
}

TEST_F(CriStreamingTest, ClientThatVanishesTakesItsCommandWithIt) {
  std::string id = sleeper("vanish");
  BackgroundStreamClient client({"exec", "--url", exec_url(id, {"/bin/sh", "-c", "echo started; exec sleep 4343"}),
                                 "--stdout", "--stderr"});
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (client.out_so_far().find("started") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_NE(client.out_so_far().find("started"), std::string::npos) << client.err_so_far();
  ::kill(client.pid(), SIGKILL);
  EXPECT_TRUE(gone("sleep 4343"));
}

TEST_F(CriStreamingTest, IdleSessionsAreClosed) {
  std::string id = sleeper("idle");
  auto begin = std::chrono::steady_clock::now();
  auto run = run_stream_client({"exec", "--url", exec_url(id, {"/bin/sleep", "4444"}), "--stdout", "--stderr",
                                "--ping-ms", "0"},
                               30s);
  auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(took, 5s);
  EXPECT_LT(took, 20s);
  EXPECT_TRUE(gone("sleep 4444"));
}

TEST_F(CriStreamingTest, ConcurrentSessions) {
  std::string id = sleeper("many");
  std::vector<std::future<StreamClientRun>> runs;
  for (int i = 0; i < 8; ++i) {
    std::string url = exec_url(id, {"/bin/sh", "-c", "sleep 0.3; echo n" + std::to_string(i) + "; exit " +
                                                           std::to_string(i)});
    runs.push_back(std::async(std::launch::async, [url, transport = i % 2 ? "ws" : "spdy"] {
      return run_stream_client({"exec", "--url", url, "--transport", transport, "--stdout", "--stderr"});
    }));
  }
  for (int i = 0; i < 8; ++i) {
    auto run = runs[i].get();
    ASSERT_EQ(run.exit_status, 0) << run.err;
    EXPECT_EQ(run.out, "n" + std::to_string(i) + "\n");
    EXPECT_EQ(run.result["exit_code"], i);
  }
}

TEST_F(CriStreamingTest, ConnectionsBeyondTheCapAreTurnedAway) {
  std::string id = sleeper("cap");
  std::string url = exec_url(id, {"/bin/true"});
  // Connections that never send a request still count (until the request timeout).
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 24; ++i) idle.push_back(std::make_unique<RawConnection>(url));
  std::this_thread::sleep_for(300ms);
  RawConnection extra(url);
  extra.send("GET /exec/x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(extra.read(5s, "\r\n\r\n").starts_with("HTTP/1.1 503")) << extra.read(0ms);
  idle.clear();
  // The token was not spent by the refusal.
  std::this_thread::sleep_for(300ms);
  auto run = run_stream_client({"exec", "--url", url, "--stdout", "--stderr"});
  EXPECT_EQ(run.result["exit_code"], 0) << run.err << run.result.dump();
}

TEST_F(CriStreamingTest, StoppingBerthdEndsSessionsAndSilentConnectionsAtOnce) {
  std::string id = sleeper("stop");
  BackgroundStreamClient client({"exec", "--url", exec_url(id, {"/bin/sh", "-c", "echo started; exec sleep 4545"}),
                                 "--stdout", "--stderr"});
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (client.out_so_far().find("started") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_NE(client.out_so_far().find("started"), std::string::npos) << client.err_so_far();
  // A connection that never sends its request (the request timeout is 10 s).
  RawConnection silent(exec_url(id, {"/bin/true"}));
  ASSERT_TRUE(silent.ok());
  auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(d_->terminate());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
  EXPECT_TRUE(gone("sleep 4545"));
  silent.read(2s);
  EXPECT_TRUE(silent.eof());
  // The container itself keeps running; the restarted daemon serves it again.
  ASSERT_TRUE(d_->start()) << d_->error();
  auto run = run_stream_client({"exec", "--url", exec_url(id, {"/bin/echo", "back"}), "--stdout", "--stderr"});
  EXPECT_EQ(run.out, "back\n") << run.err;
}

// ---- attach ----------------------------------------------------------------------

TEST_F(CriStreamingTest, AttachJoinsTheContainersOwnStdio) {
  auto config = d_->container_config(
      "attach", {"/bin/sh", "-c", "read a; echo \"got $a\"; echo \"err $a\" >&2; read b; echo \"got $b\"; exit 0"});
  config.set_stdin(true);
  std::string id = start(config);
  auto run = run_stream_client({"attach", "--url", attach_url(id, true, false), "--stdin", "--stdout", "--stderr",
                                "--stdin-data", "one\ntwo\n", "--keep-stdin-open"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
  EXPECT_EQ(run.out, "got one\ngot two\n");
  EXPECT_EQ(run.err, "err one\n");
  EXPECT_EQ(run.result["status"]["status"], "Success") << run.result.dump();
  // The container's own log has the same output.
  ASSERT_TRUE(d_->wait_exited(id, 10s));
  auto log = read_text_file(pod_.log_directory() + "/attach.log");
  EXPECT_EQ(cri_log_lines(log), (std::vector<std::string>{"got one", "got two"}));
}

TEST_F(CriStreamingTest, AttachWithTerminalResizes) {
  auto config = d_->container_config("attachtty", {"/bin/sh"});
  config.set_stdin(true);
  config.set_tty(true);
  std::string id = start(config);
  std::string script = "for i in $(seq 100); do s=$(stty size); [ \"$s\" = \"24 80\" ] && break; sleep 0.05; done; "
                       "echo size=$s; exit 3\n";
  auto run = run_stream_client({"attach", "--url", attach_url(id, true, true), "--stdin", "--stdout", "--tty",
                                "--resize", "80x24", "--stdin-data", script, "--keep-stdin-open"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
  EXPECT_NE(run.out.find("size=24 80"), std::string::npos) << run.out;
  auto status = d_->wait_exited(id, 10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code(), 3);
}

TEST_F(CriStreamingTest, AttachRequestsAreChecked) {
  std::string plain = sleeper("plain");
  v1::AttachRequest req;
  req.set_container_id(plain);
  req.set_stdin(true);
  req.set_stdout(true);
  v1::AttachResponse resp;
  // No stdin was kept open for this container, and it has no terminal.
  EXPECT_EQ(d_->runtime().Attach(call_context().get(), req, &resp).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  req.set_stdin(false);
  req.set_tty(true);
  EXPECT_EQ(d_->runtime().Attach(call_context().get(), req, &resp).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  req.set_container_id("nope");
  req.set_tty(false);
  EXPECT_EQ(d_->runtime().Attach(call_context().get(), req, &resp).error_code(), ::grpc::StatusCode::NOT_FOUND);
}

// ---- port forward ----------------------------------------------------------------

class CriPortForwardTest : public CriStreamingTest {
 protected:
  void SetUp() override {
    CriStreamingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    start(d_->container_config(
        "web", {"/bin/sh", "-c",
                "mkdir -p /www && echo hello-from-the-pod > /www/index.html && exec httpd -f -p 8080 -h /www"}));
    // httpd listens once its log... it has none: poll the port from inside.
    v1::ExecSyncResponse out;
    for (int i = 0; i < 100; ++i) {
      auto ids = d_->list_containers();
      std::string web;
      for (auto& c : ids)
        if (c.metadata().name() == "web" && c.pod_sandbox_id() == pod_id_) web = c.id();
      if (!web.empty() && d_->exec_sync(web, {"/bin/sh", "-c", "netstat -ltn | grep -q :8080"}, &out, 5).ok() &&
          out.exit_code() == 0)
        return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "httpd did not listen on 8080";
  }
};

TEST_F(CriPortForwardTest, SpdyForwardsManyConnectionsAtOnce) {
  BackgroundStreamClient pf({"portforward", "--url", port_forward_url({8080}), "--port", "8080", "--listen",
                             "127.0.0.1:0"});
  ASSERT_TRUE(pf.ok()) << pf.error();
  std::vector<std::future<std::string>> gets;
  for (int i = 0; i < 6; ++i)
    gets.push_back(std::async(std::launch::async,
                              [port = pf.port()] { return http_get(port, "GET /index.html HTTP/1.0\r\n\r\n"); }));
  for (auto& g : gets) {
    std::string reply = g.get();
    EXPECT_TRUE(reply.starts_with("HTTP/1.")) << reply;
    EXPECT_NE(reply.find("hello-from-the-pod"), std::string::npos) << reply;
  }
  // One-shot mode: several pairs on one connection, concurrently.
  auto run = run_stream_client({"portforward", "--url", port_forward_url(), "--port", "8080", "--send",
                                "GET / HTTP/1.0\r\n\r\n", "--connections", "4"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
  ASSERT_EQ(run.result["responses"].size(), 4u) << run.result.dump();
  for (auto& r : run.result["responses"])
    EXPECT_NE(r["data"].get<std::string>().find("hello-from-the-pod"), std::string::npos) << r.dump();
}

TEST_F(CriPortForwardTest, WebSocketForwardsEachPort) {
  auto run = run_stream_client({"portforward", "--url", port_forward_url(), "--transport", "ws", "--port", "8080",
                                "--send", "GET / HTTP/1.0\r\n\r\n"});
  ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
  ASSERT_FALSE(run.result["responses"].empty()) << run.result.dump();
  EXPECT_NE(run.result["responses"][0]["data"].get<std::string>().find("hello-from-the-pod"), std::string::npos)
      << run.result.dump();
}

TEST_F(CriPortForwardTest, ClosedPortsAndBadRequestsAreReported) {
  auto run = run_stream_client(
      {"portforward", "--url", port_forward_url(), "--port", "9", "--send", "x", "--connections", "1"});
  ASSERT_FALSE(run.result["responses"].empty()) << run.err << run.result.dump();
  std::string error = run.result["responses"][0]["error"];
  EXPECT_NE(error.find("error forwarding port 9 to pod " + pod_id_), std::string::npos) << error;
  EXPECT_NE(error.find("Connection refused"), std::string::npos) << error;

  v1::PortForwardRequest req;
  req.set_pod_sandbox_id(pod_id_);
  req.add_port(70000);
  v1::PortForwardResponse resp;
  EXPECT_EQ(d_->runtime().PortForward(call_context().get(), req, &resp).error_code(),
            ::grpc::StatusCode::INVALID_ARGUMENT);
  req.clear_port();
  req.set_pod_sandbox_id("nope");
  EXPECT_EQ(d_->runtime().PortForward(call_context().get(), req, &resp).error_code(), ::grpc::StatusCode::NOT_FOUND);
  // The websocket form needs its ports in the URL.
  run = run_stream_client({"portforward", "--url", port_forward_url(), "--transport", "ws", "--port", "0", "--send",
                           "x"});
  EXPECT_EQ(run.result["http_status"], 400) << run.result.dump();
}

}  // namespace
}  // namespace berth::testing

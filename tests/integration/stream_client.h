// berth-stream-client from C++ tests. The client (tests/support/streamclient/main.go) is
// a Go program built on the libraries Kubernetes uses (moby/spdystream, gorilla/websocket)
// that speaks to the URLs berthd's Exec/Attach/PortForward return the way kubelet and
// kubectl do: SPDY/3.1 or WebSocket, remote-command protocols channel.k8s.io to
// v5.channel.k8s.io, portforward.k8s.io. Its path comes from STREAM_CLIENT_BINARY (set
// by tests/support/streamclient/streamclient.cmake); $BERTH_STREAM_CLIENT overrides it.
//
// Typical use:
//   if (!stream_client_available()) GTEST_SKIP() << stream_client_unavailable_reason();
//   auto run = run_stream_client({"exec", "--url", url, "--stdin", "--stdout", "--stderr",
//                                 "--stdin-data", "hi"});
//   ASSERT_EQ(run.exit_status, 0) << run.err << run.result.dump();
//   EXPECT_EQ(run.result["exit_code"], 3);
//   EXPECT_EQ(run.out, "hi");
//
//   BackgroundStreamClient pf({"portforward", "--url", url, "--port", "8080",
//                              "--listen", "127.0.0.1:0"});
//   ASSERT_TRUE(pf.ok()) << pf.error();
//   // connect to 127.0.0.1:pf.port() ...
//
// The --result file (see main.go) is a temp file these helpers add for exec, attach and
// portforward unless the arguments name one, then parse into StreamClientRun::result
// and remove. Children get --die-with-parent (PR_SET_PDEATHSIG, which follows the
// thread that started them: start them from the test's own thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::testing {

struct StreamClientRun {
  // The client's exit status: 0 the session ran (whatever the remote exit code), 1
  // connection or protocol failure, 2 usage error; 128+N when killed by signal N (137
  // when the helper's timeout killed it); -1 when it could not be started.
  int exit_status = -1;
  std::string out, err;    // its stdout and stderr
  nlohmann::json result;   // the parsed --result file; null when there is none
};

// The client's path ("" when the build had no Go and nothing overrides it).
std::string stream_client_binary();
bool stream_client_available();
std::string stream_client_unavailable_reason();

// Runs berth-stream-client with args (mode first: "exec", "attach", "portforward",
// "bench-exec"), stdin_data on its stdin (then EOF), killing it after timeout. Unless
// args set --timeout-sec, exec/attach/portforward get timeout - 2 s, so that the client
// times out first and still writes its result (error "timed out after ...", exit 1).
StreamClientRun run_stream_client(std::vector<std::string> args,
                                  std::chrono::seconds timeout = std::chrono::seconds(60),
                                  std::string stdin_data = {});

// A client left running: portforward --listen (ports() are the local ports it printed
// in its "listening <port>" lines, in --listen order), or an interactive exec/attach
// (pipe_stdin + "--stdin-file -"). The destructor stops it (SIGTERM, then SIGKILL) and
// reaps it.
class BackgroundStreamClient {
 public:
  struct Options {
    bool pipe_stdin = false;  // else stdin is /dev/null
    std::chrono::seconds start_timeout{15};  // to wait for the "listening" lines
  };
  explicit BackgroundStreamClient(std::vector<std::string> args);
  BackgroundStreamClient(std::vector<std::string> args, Options options);
  ~BackgroundStreamClient();
  BackgroundStreamClient(const BackgroundStreamClient&) = delete;
  BackgroundStreamClient& operator=(const BackgroundStreamClient&) = delete;

  // Started, and printed one "listening" line per --listen.
  bool ok() const { return pid_ > 0 && error_.empty(); }
  const std::string& error() const { return error_; }
  const std::vector<int>& ports() const { return ports_; }
  int port(size_t i = 0) const { return i < ports_.size() ? ports_[i] : 0; }
  pid_t pid() const { return pid_; }
  bool running();

  bool write_stdin(std::string_view data);  // with Options::pipe_stdin
  void close_stdin();
  std::string out_so_far() const;
  std::string err_so_far() const;

  // Waits for it to end by itself (SIGKILL after timeout); then as stop().
  StreamClientRun wait(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGTERM, SIGKILL after grace; returns what it printed and its result file. Later
  // calls (and wait()) return the same.
  StreamClientRun stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

 private:
  StreamClientRun collect(int status);
  StreamClientRun not_started() const;

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string dir_, out_path_, err_path_, result_path_;
  std::vector<int> ports_;
  std::string error_;
  std::optional<StreamClientRun> finished_;
};

}  // namespace berth::testing

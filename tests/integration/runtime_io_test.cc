// The parts of berth a container manager talks to: the console socket protocol,
// JSON logs, and process settings applied from the runtime side.
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/linux/console.h"
#include "tests/integration/runtime_fixture.h"

namespace berth::testing {
namespace {

using RuntimeIo = RuntimeTest;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_F(RuntimeIo, ConsoleSocketReceivesThePtyMaster) {
  std::string path = tmp_ + "/console.sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  // A manager (containerd's shim) accepts the connection and keeps the master.
  int master = -1;
  std::thread manager([&] {
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return;
    auto fd = receive_fd(conn);
    if (fd) master = fd->release();
    ::close(conn);
  });
  auto id = unique_id("console");
  auto bundle = make_bundle(sh("tty; echo hello-console; sleep 1000"), [](nlohmann::json& j) {
    j["process"]["terminal"] = true;
    j["process"]["consoleSize"] = {{"height", 40}, {"width", 120}};
  });
  auto r = berth({"create", "--console-socket", path, "--bundle", bundle, id});
  manager.join();
  ::close(listener);
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_GE(master, 0) << "no fd arrived on the console socket";
  ASSERT_EQ(berth({"start", id}).code, 0);
  std::string seen;
  char buf[512];
  for (int i = 0; i < 100 && seen.find("hello-console") == std::string::npos; ++i) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) seen.append(buf, static_cast<size_t>(n));
    }
  }
  EXPECT_NE(seen.find("/dev/pts/0"), std::string::npos) << seen;
  EXPECT_NE(seen.find("hello-console"), std::string::npos) << seen;
  winsize ws{};
  ASSERT_EQ(::ioctl(master, TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_row, 40);
  EXPECT_EQ(ws.ws_col, 120);
  ::close(master);
}

TEST_F(RuntimeIo, OomScoreAdjIsAppliedOrDegradesWithWarning) {
  auto id = unique_id("oom");
  auto bundle = make_bundle({"/bin/sleep", "1000"}, [](nlohmann::json& j) { j["process"]["oomScoreAdj"] = 500; });
  ASSERT_EQ(berth({"run", "--detach", "--bundle", bundle, id}).code, 0);
  int pid = state(id)["pid"];
  EXPECT_EQ(slurp("/proc/" + std::to_string(pid) + "/oom_score_adj"), "500\n");

  // Lowering it needs CAP_SYS_RESOURCE; where root lacks it the container still runs.
  auto low = unique_id("oomlow");
  auto low_bundle = make_bundle({"/bin/sleep", "1000"}, [](nlohmann::json& j) { j["process"]["oomScoreAdj"] = -500; });
  auto r = berth({"run", "--detach", "--bundle", low_bundle, low});
  ASSERT_EQ(r.code, 0) << r.err;
  int low_pid = state(low)["pid"];
  std::string value = slurp("/proc/" + std::to_string(low_pid) + "/oom_score_adj");
  if (value != "-500\n") {
    EXPECT_NE(r.err.find("oom_score_adj"), std::string::npos) << "no warning: " << r.err;
  }
}

TEST_F(RuntimeIo, JsonLogCarriesErrors) {
  std::string log = tmp_ + "/berth.log";
  auto r = berth({"--log", log, "--log-format", "json", "state", "no-such-container"});
  EXPECT_NE(r.code, 0);
  auto line = slurp(log);
  auto j = nlohmann::json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["level"], "error");
  EXPECT_NE(j["msg"].get<std::string>().find("does not exist"), std::string::npos);
  EXPECT_TRUE(j.contains("time"));
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << "the error reaches stderr too";
}

}  // namespace
}  // namespace berth::testing

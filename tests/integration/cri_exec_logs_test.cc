// ExecSync (output, exit codes, the container's namespaces, the timeout that must
// kill the whole exec'd process tree) and the CRI log: the line format, long lines
// split into 16 KiB partial pieces, and ReopenContainerLog for kubelet's rotation.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <regex>
#include <thread>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

class CriExecLogsTest : public SharedBerthdTest<CriExecLogsTest> {
 protected:
  void SetUp() override {
    SharedBerthdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    pod_ = d_->pod_config("execlog");
    pod_id_ = d_->run_pod(pod_);
    ASSERT_FALSE(pod_id_.empty());
  }
  void TearDown() override {
    if (!pod_id_.empty()) {
      EXPECT_TRUE(d_->remove_pod(pod_id_).ok());
    }
    SharedBerthdTest::TearDown();
  }
  std::string sleeper(const std::string& name) {
    std::string id = d_->create_container(pod_id_, d_->container_config(name, {"/bin/sleep", "1000"}), pod_);
    EXPECT_TRUE(d_->start_container(id));
    return id;
  }
  std::string log_path(const std::string& name) const { return pod_.log_directory() + "/" + name + ".log"; }

  v1::PodSandboxConfig pod_;
  std::string pod_id_;
};

TEST_F(CriExecLogsTest, ExecSyncOutputAndExitCode) {
  std::string id = sleeper("exec");
  v1::ExecSyncResponse out;
  auto s = d_->exec_sync(id, {"/bin/sh", "-c", "echo out; echo err >&2; exit 5"}, &out, 10);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.stdout(), "out\n");
  EXPECT_EQ(out.stderr(), "err\n");
  EXPECT_EQ(out.exit_code(), 5);

  // In the container: its pid namespace (pid 1 is its sleep), hostname, root.
  s = d_->exec_sync(id, {"/bin/sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; hostname; ls /"}, &out, 10);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(out.stdout().starts_with("/bin/sleep 1000 execlog\n")) << out.stdout();
  EXPECT_NE(out.stdout().find("\nbin\n"), std::string::npos);
  EXPECT_EQ(out.exit_code(), 0);

  // A command that does not exist fails, one way (exit status) or the other
  // (an error, as containerd gives), and says so.
  s = d_->exec_sync(id, {"/no/such/binary"}, &out, 10);
  if (s.ok()) {
    EXPECT_NE(out.exit_code(), 0);
  } else {
    EXPECT_NE(s.error_message().find("/no/such/binary"), std::string::npos) << s.error_message();
  }

  // Large output comes back whole.
  s = d_->exec_sync(id, {"/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"}, &out, 10);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.stdout(), std::string(300000, 'x'));
  EXPECT_EQ(d_->container_status(id).state(), v1::CONTAINER_RUNNING);
}

TEST_F(CriExecLogsTest, ExecSyncTimeoutKillsTheTreeAndReturnsOnTime) {
  std::string id = sleeper("exec-timeout");
  v1::ExecSyncResponse out;
  auto began = std::chrono::steady_clock::now();
  // A child in the background and one in the foreground, both far longer than the timeout.
  auto s = d_->exec_sync(id, {"/bin/sh", "-c", "sleep 4242 & sleep 4343; echo never"}, &out, 1);
  auto took = std::chrono::steady_clock::now() - began;
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(4)) << "ExecSync must return close to its timeout";
  // Gone at once (zombies have no command line left).
  std::vector<pid_t> left;
  for (int i = 0; i < 20; ++i) {
    left = processes_with("sleep 4242");
    auto more = processes_with("sleep 4343");
    left.insert(left.end(), more.begin(), more.end());
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(left.empty()) << left.size() << " exec'd processes outlived the timeout";
  EXPECT_EQ(d_->container_status(id).state(), v1::CONTAINER_RUNNING) << "the container itself keeps running";
  // And exec still works afterwards.
  s = d_->exec_sync(id, {"/bin/echo", "again"}, &out, 5);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.stdout(), "again\n");
}

TEST_F(CriExecLogsTest, LogLinesAndPartialPieces) {
  // One 40000-byte line, an empty line, an ordinary one on stderr, and a last one
  // without a newline.
  auto c = d_->container_config(
      "long", {"/bin/sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; echo; echo short >&2; printf tail"});
  auto st = d_->run_to_exit(pod_id_, c, pod_);
  ASSERT_TRUE(st.has_value());
  std::string log = read_text_file(log_path("long"));
  std::regex time(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$)");
  std::vector<std::pair<std::string, size_t>> stdout_pieces;  // tag, size
  for (auto& l : parse_cri_log(log)) {
    ASSERT_TRUE(std::regex_match(l.time, time)) << "bad timestamp \"" << l.time << "\"";
    ASSERT_TRUE(l.stream == "stdout" || l.stream == "stderr") << l.stream;
    ASSERT_TRUE(l.tag == "P" || l.tag == "F") << l.tag;
    EXPECT_LE(l.message.size(), 16384u) << "a piece larger than 16 KiB";
    if (l.stream == "stdout") stdout_pieces.emplace_back(l.tag, l.message.size());
  }
  ASSERT_GE(stdout_pieces.size(), 4u) << log.substr(0, 200);
  EXPECT_EQ(stdout_pieces[0], (std::pair<std::string, size_t>{"P", 16384}));
  EXPECT_EQ(stdout_pieces[1], (std::pair<std::string, size_t>{"P", 16384}));
  EXPECT_EQ(stdout_pieces[2], (std::pair<std::string, size_t>{"F", 40000 - 2 * 16384}));
  auto lines = cri_log_lines(log);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], std::string(40000, 'a'));
  EXPECT_EQ(lines[1], "");
  EXPECT_EQ(lines[2], "tail") << "an unterminated last line is kept";
  EXPECT_EQ(stdout_pieces.back().first, "P") << "and marked partial";
  EXPECT_EQ(cri_log_lines(log, "stderr"), std::vector<std::string>{"short"});
}

TEST_F(CriExecLogsTest, ReopenContainerLogAfterRotation) {
  auto c = d_->container_config("rotating",
                                {"/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.05; done"});
  c.set_log_path("rotating/0.log");  // kubelet's layout: <container name>/<restart count>.log
  std::string id = d_->create_container(pod_id_, c, pod_);
  ASSERT_TRUE(d_->start_container(id));
  std::string path = pod_.log_directory() + "/rotating/0.log";
  auto wait_lines = [&](const std::string& file, size_t n) {
    for (int i = 0; i < 200; ++i) {
      if (cri_log_lines(read_text_file(file)).size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  };
  ASSERT_TRUE(wait_lines(path, 3));
  // kubelet's rotation: rename, then ask for a fresh file at the same path.
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  v1::ReopenContainerLogRequest req;
  req.set_container_id(id);
  v1::ReopenContainerLogResponse resp;
  auto s = d_->runtime().ReopenContainerLog(call_context().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(wait_lines(path, 3)) << "nothing written to the reopened log";
  // The rotated file is no longer written to, while the new one grows.
  std::string rotated = read_text_file(path + ".1");
  ASSERT_TRUE(wait_lines(path, 6));
  EXPECT_EQ(read_text_file(path + ".1"), rotated);
  // Not a line lost or repeated across the two files.
  auto before = cri_log_lines(rotated);
  auto after = cri_log_lines(read_text_file(path));
  std::vector<std::string> all(before.begin(), before.end());
  all.insert(all.end(), after.begin(), after.end());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], "line-" + std::to_string(i + 1)) << "at " << i;
}

}  // namespace
}  // namespace berth::testing

// Seccomp as root: filters loaded on CAP_SYS_ADMIN alone (no no_new_privs), and
// the SCMP_ACT_NOTIFY path end to end: child loads, hands the listener fd to the
// "runtime", which sends it to a seccomp agent socket that answers the syscall.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/unique_fd.h"
#include "isolators/seccomp/seccomp.h"

namespace berth::seccomp {
namespace {

class SeccompRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      std::cerr << "\n*** SeccompRootTest SKIPPED: needs root (CAP_SYS_ADMIN), running as uid "
                << ::geteuid() << " ***\n\n";
      GTEST_SKIP() << "needs root";
    }
    char tmpl[] = "/tmp/berth-seccomp-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Reaps the child; returns its exit code, or -signal.
  int reap() {
    int status = 0;
    EXPECT_EQ(::waitpid(child_, &status, 0), child_);
    child_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

  std::string dir_;
  pid_t child_ = -1;
};

oci::Seccomp deny_mkdirat(const std::string& action, std::optional<uint32_t> errno_ret = std::nullopt) {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  s.syscalls = {oci::SyscallRule{{"mkdirat"}, action, errno_ret, {}}};
  return s;
}

long raw_mkdirat() { return ::syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-berth-dir/x", 0700); }

std::string status_field(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(key + ":")) {
      auto v = line.substr(key.size() + 1);
      return v.substr(v.find_first_not_of(" \t"));
    }
  return {};
}

// Test-side stand-in for the launcher's child -> parent fd passing.
bool pass_fd(int sock, int fd) {
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == 1;
}

// Receives bytes until EOF; the first SCM_RIGHTS fd goes to *fd.
std::string receive_all(int sock, int* fd) {
  std::string data;
  *fd = -1;
  for (;;) {
    char buf[4096];
    iovec iov{buf, sizeof(buf)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) break;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && *fd < 0)
        std::memcpy(fd, CMSG_DATA(c), sizeof(int));
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

TEST_F(SeccompRootTest, LoadsWithLogFlagOnCapSysAdminAlone) {
  auto spec = deny_mkdirat("SCMP_ACT_ERRNO", EXDEV);
  spec.flags = {"SECCOMP_FILTER_FLAG_LOG"};
  auto program = compile(spec);
  ASSERT_TRUE(program) << program.error().message;
  ASSERT_EQ(program->flags, static_cast<unsigned>(SECCOMP_FILTER_FLAG_LOG));

  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  child_ = ::fork();
  if (child_ == 0) {
    ::close(pipefd[0]);
    // No PR_SET_NO_NEW_PRIVS here: root's CAP_SYS_ADMIN must be enough.
    auto fd = load(*program);
    if (!fd) ::_exit(100);
    if (*fd != -1) ::_exit(101);
    int err = raw_mkdirat() < 0 ? errno : 0;
    std::ifstream in("/proc/self/status");
    std::stringstream all;
    all << in.rdbuf();
    std::string out = std::to_string(err) + "\n" + all.str();
    (void)!::write(pipefd[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  ASSERT_EQ(reap(), 0) << "100: load failed, 101: unexpected listener fd";
  EXPECT_EQ(std::atoi(got.c_str()), EXDEV);
  EXPECT_EQ(status_field(got, "Seccomp"), "2");
  EXPECT_EQ(status_field(got, "Seccomp_filters"), "1");
  EXPECT_EQ(status_field(got, "NoNewPrivs"), "0");
}

TEST_F(SeccompRootTest, NotifyListenerGetsFdAndStateAndAnswersTheSyscall) {
  std::string path = dir_ + "/agent.sock";
  auto spec = deny_mkdirat("SCMP_ACT_NOTIFY");
  spec.listener_path = path;
  spec.listener_metadata = "MKNOD=/dev/null;x=1";
  auto program = compile(spec);
  ASSERT_TRUE(program) << program.error().message;
  ASSERT_TRUE(program->wants_listener);

  // The seccomp agent's socket.
  UniqueFd agent(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(agent);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(agent.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(agent.get(), 1), 0);

  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd parent_end(pair[0]), child_end(pair[1]);
  child_ = ::fork();
  if (child_ == 0) {
    parent_end.reset();
    int listener = -1;
    if (load_raw(*program, &listener) != 0 || listener < 0) ::_exit(100);
    if (!pass_fd(child_end.get(), listener)) ::_exit(101);
    ::close(listener);
    child_end.reset();  // EOF tells the parent everything was sent
    // Blocks until the agent answers; with no agent left the kernel says ENOSYS.
    ::_exit(raw_mkdirat() < 0 ? errno : 0);
  }
  child_end.reset();

  int listener = -1;
  receive_all(parent_end.get(), &listener);
  UniqueFd listener_fd(listener);
  ASSERT_TRUE(listener_fd) << "child sent no listener fd";

  std::string state = nlohmann::json{{"ociVersion", "1.0.2"},
                                     {"id", "c-notify"},
                                     {"status", "creating"},
                                     {"pid", child_},
                                     {"bundle", dir_},
                                     {"annotations", {{"k", "v"}}}}
                          .dump();
  auto sent = send_listener_fd(path, listener_fd.get(), child_, spec.listener_metadata, state);
  ASSERT_TRUE(sent) << sent.error().message;
  listener_fd.reset();  // the agent's copy is now the only one

  UniqueFd conn(::accept4(agent.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn) << std::strerror(errno);
  int received = -1;
  std::string payload = receive_all(conn.get(), &received);
  UniqueFd notify_fd(received);
  ASSERT_TRUE(notify_fd) << "no fd in SCM_RIGHTS";

  auto j = nlohmann::json::parse(payload, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << payload;
  EXPECT_EQ(j["ociVersion"], "1.0.2");
  EXPECT_EQ(j["fds"], nlohmann::json::array({"seccompFd"}));
  EXPECT_EQ(j["pid"], child_);
  EXPECT_EQ(j["metadata"], "MKNOD=/dev/null;x=1");
  EXPECT_EQ(j["state"]["id"], "c-notify");
  EXPECT_EQ(j["state"]["status"], "creating");
  EXPECT_EQ(j["state"]["pid"], child_);
  EXPECT_EQ(j["state"]["annotations"]["k"], "v");

  // The fd is a live listener: take the child's mkdirat and fail it with EXDEV.
  pollfd pfd{notify_fd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "no notification within 10s";
  seccomp_notif req{};
  ASSERT_EQ(::ioctl(notify_fd.get(), SECCOMP_IOCTL_NOTIF_RECV, &req), 0) << std::strerror(errno);
  EXPECT_EQ(req.data.nr, SYS_mkdirat);
  EXPECT_EQ(static_cast<pid_t>(req.pid), child_);
  seccomp_notif_resp resp{};
  resp.id = req.id;
  resp.error = -EXDEV;
  ASSERT_EQ(::ioctl(notify_fd.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp), 0) << std::strerror(errno);
  EXPECT_EQ(reap(), EXDEV) << "100: load failed, 101: fd passing failed";
}

TEST_F(SeccompRootTest, SendListenerFdToClosedSocketFails) {
  std::string path = dir_ + "/gone.sock";
  {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }  // bound but never listening, then closed: connect is refused
  auto r = send_listener_fd(path, 0, ::getpid(), "", R"({"id":"x"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ECONNREFUSED) << r.error().message;
}

}  // namespace
}  // namespace berth::seccomp

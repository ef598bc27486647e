// Integration tests for runtime/linux/pinned_namespaces: namespaces pinned by bind
// mounts (hostname, lo, sysctls inside them), all-or-nothing failure, release, and
// the PID namespace holder. Root only.
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "runtime/linux/container_state.h"
#include "runtime/linux/pinned_namespaces.h"
#include "tests/integration/runtime_fixture.h"
#include "tests/support/test_files.h"

namespace berth::linux_ns {
namespace {

using ::testing::HasSubstr;
using testing::run_command;

constexpr const char* kNsenter = "/usr/bin/nsenter";

ino_t inode_of(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string trimmed(const std::string& s) { return std::string(trim(s)); }

// Running and not a zombie (the host's init may be slow to reap an orphan), waiting
// up to wait_ms for it to go.
bool alive(pid_t pid, int wait_ms) {
  for (int waited = 0;; waited += 10) {
    std::string stat = testing::slurp("/proc/" + std::to_string(pid) + "/stat").value_or("");
    bool running = !stat.empty() && stat.find(") Z") == std::string::npos;
    if (!running || waited >= wait_ms) return running;
    ::usleep(10000);
  }
}

class PinnedNamespacesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/berth-pin-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    dir_ = tmp_ + "/pod";
  }
  void TearDown() override {
    if (tmp_.empty()) return;
    if (holder_.pid > 0) (void)stop_pid_namespace_holder(holder_.pid, holder_.start_time);
    (void)release_pinned_namespaces(dir_);
    EXPECT_TRUE(mounts_under(tmp_).empty());
    (void)remove_tree(tmp_);
  }

  // Mount points below `prefix` according to /proc/self/mountinfo (field 5).
  static std::vector<std::string> mounts_under(const std::string& prefix) {
    std::vector<std::string> out;
    for (auto& line : testing::lines_of(testing::slurp("/proc/self/mountinfo").value_or(""))) {
      auto w = testing::words(line);
      if (w.size() > 4 && starts_with(w[4], prefix)) out.push_back(w[4]);
    }
    return out;
  }

  std::string in_ns(const std::string& flag, const std::vector<std::string>& cmd) {
    std::vector<std::string> argv = {kNsenter, flag};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    auto r = run_command(argv);
    EXPECT_EQ(r.code, 0) << r.err;
    return trimmed(r.out);
  }

  std::string tmp_, dir_;
  PidNamespaceHolder holder_;
};

TEST_F(PinnedNamespacesTest, PinsNewNamespacesWithHostnameLoopbackAndSysctls) {
  std::string host_port_start = trimmed(testing::slurp("/proc/sys/net/ipv4/ip_unprivileged_port_start").value_or(""));
  std::string host_shmmni = trimmed(testing::slurp("/proc/sys/kernel/shmmni").value_or(""));
  char host_name[256] = {};
  ::gethostname(host_name, sizeof host_name - 1);

  PinRequest req;
  req.hostname = "pod-host-1";
  req.net_sysctls = {{"net.ipv4.ip_unprivileged_port_start", "80"}, {"net.ipv4.ping_group_range", "0 1000"}};
  req.ipc_sysctls = {{"kernel.shmmni", "1234"}};
  auto pinned = pin_new_namespaces(dir_, req);
  ASSERT_TRUE(pinned.has_value()) << pinned.error().message;
  EXPECT_EQ(pinned->dir, dir_);
  EXPECT_EQ(pinned->net, dir_ + "/net");
  EXPECT_EQ(pinned->ipc, dir_ + "/ipc");
  EXPECT_EQ(pinned->uts, dir_ + "/uts");

  for (const char* kind : {"net", "ipc", "uts"}) {
    ino_t pin = inode_of(dir_ + "/" + kind);
    EXPECT_NE(pin, 0u) << kind;
    EXPECT_NE(pin, inode_of(std::string("/proc/self/ns/") + kind)) << kind;
  }
  EXPECT_EQ(mounts_under(dir_).size(), 3u);

  EXPECT_EQ(in_ns("--uts=" + pinned->uts, {"/bin/hostname"}), "pod-host-1");
  char now[256] = {};
  ::gethostname(now, sizeof now - 1);
  EXPECT_STREQ(now, host_name);

  EXPECT_THAT(in_ns("--net=" + pinned->net, {"/usr/sbin/ip", "-o", "link", "show", "lo"}), HasSubstr("UP"));
  EXPECT_EQ(in_ns("--net=" + pinned->net, {"/bin/cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"}), "80");
  EXPECT_EQ(in_ns("--net=" + pinned->net, {"/bin/cat", "/proc/sys/net/ipv4/ping_group_range"}), "0\t1000");
  EXPECT_EQ(trimmed(testing::slurp("/proc/sys/net/ipv4/ip_unprivileged_port_start").value_or("")), host_port_start);
  EXPECT_EQ(in_ns("--ipc=" + pinned->ipc, {"/bin/cat", "/proc/sys/kernel/shmmni"}), "1234");
  EXPECT_EQ(trimmed(testing::slurp("/proc/sys/kernel/shmmni").value_or("")), host_shmmni);

  // Pinned a second time: refused, and the first pins are untouched.
  auto again = pin_new_namespaces(dir_, PinRequest{});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, EEXIST);
  EXPECT_EQ(mounts_under(dir_).size(), 3u);

  ASSERT_TRUE(release_pinned_namespaces(dir_).has_value());
  EXPECT_TRUE(mounts_under(dir_).empty());
  for (const char* kind : {"net", "ipc", "uts"}) EXPECT_FALSE(exists(dir_ + "/" + kind)) << kind;
  EXPECT_TRUE(release_pinned_namespaces(dir_).has_value());
  EXPECT_TRUE(release_pinned_namespaces(tmp_ + "/never-made").has_value());
}

// The daemon pins from many threads at once; each pod gets its own namespaces and
// no calling thread ever leaves its own.
TEST_F(PinnedNamespacesTest, ConcurrentPinsFromThreadsStayApart) {
  constexpr int kPods = 6;
  std::vector<Result<PinnedNamespaces>> results(kPods, fail(EIO, "not run"));
  std::vector<ino_t> thread_net(kPods), thread_net_after(kPods);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] {
      thread_net[i] = inode_of("/proc/thread-self/ns/net");
      PinRequest req;
      req.hostname = "pod-" + std::to_string(i);
      results[i] = pin_new_namespaces(dir_ + std::to_string(i), req);
      thread_net_after[i] = inode_of("/proc/thread-self/ns/net");
    });
  }
  for (auto& t : threads) t.join();
  std::set<ino_t> inodes;
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(results[i].has_value()) << results[i].error().message;
    EXPECT_EQ(thread_net[i], thread_net_after[i]);
    EXPECT_EQ(thread_net[i], inode_of("/proc/self/ns/net"));
    inodes.insert(inode_of(results[i]->net));
    EXPECT_EQ(in_ns("--uts=" + results[i]->uts, {"/bin/hostname"}), "pod-" + std::to_string(i));
  }
  EXPECT_EQ(inodes.size(), static_cast<size_t>(kPods));
  for (int i = 0; i < kPods; ++i) ASSERT_TRUE(release_pinned_namespaces(dir_ + std::to_string(i)).has_value());
}

TEST_F(PinnedNamespacesTest, PinsOnlyTheRequestedKinds) {
  PinRequest req;
  req.net = false;
  req.uts = false;
  auto pinned = pin_new_namespaces(dir_, req);
  ASSERT_TRUE(pinned.has_value()) << pinned.error().message;
  EXPECT_EQ(pinned->net, "");
  EXPECT_EQ(pinned->uts, "");
  EXPECT_TRUE(exists(dir_ + "/ipc"));
  EXPECT_FALSE(exists(dir_ + "/net"));
  EXPECT_FALSE(exists(dir_ + "/uts"));
  EXPECT_EQ(mounts_under(dir_), std::vector<std::string>{dir_ + "/ipc"});
}

struct BadRequest {
  const char* what;
  PinRequest request;
  const char* message;
};

PinRequest with_net_sysctl(const std::string& name, const std::string& value) {
  PinRequest r;
  r.net_sysctls[name] = value;
  return r;
}

PinRequest with_ipc_sysctl(const std::string& name, const std::string& value) {
  PinRequest r;
  r.ipc_sysctls[name] = value;
  return r;
}

TEST_F(PinnedNamespacesTest, BadRequestLeavesNothingBehind) {
  PinRequest hostname_without_uts;
  hostname_without_uts.uts = false;
  hostname_without_uts.hostname = "x";
  std::vector<BadRequest> cases = {
      {"not namespaced", with_net_sysctl("net.core.rmem_max", "1000000"), "read-only in the new network"},
      {"unknown", with_net_sysctl("net.ipv4.no_such_knob", "1"), "does not exist in the new network"},
      {"bad value", with_net_sysctl("net.ipv4.ip_unprivileged_port_start", "lots"), "set sysctl"},
      {"not net", with_net_sysctl("kernel.shmmax", "1"), "not a network namespace sysctl"},
      {"not ipc", with_ipc_sysctl("kernel.hostname", "x"), "not an IPC namespace sysctl"},
      {"escape", with_net_sysctl("net/../kernel/hostname", "x"), "invalid sysctl name"},
      {"hostname", hostname_without_uts, "needs a new uts namespace"},
  };
  for (auto& c : cases) {
    auto pinned = pin_new_namespaces(dir_, c.request);
    ASSERT_FALSE(pinned.has_value()) << c.what;
    EXPECT_EQ(pinned.error().code, EINVAL) << c.what << ": " << pinned.error().message;
    EXPECT_THAT(pinned.error().message, HasSubstr(c.message)) << c.what;
    EXPECT_TRUE(mounts_under(tmp_).empty()) << c.what;
    EXPECT_FALSE(exists(dir_)) << c.what;
  }
}

TEST_F(PinnedNamespacesTest, FailureWhilePinningUndoesEarlierPins) {
  // net and ipc get pinned, then uts is in the way: both must be undone, and the
  // file that was there before stays.
  ASSERT_TRUE(make_dirs(dir_).has_value());
  ASSERT_TRUE(testing::write_str(dir_ + "/uts", "someone else's"));
  auto pinned = pin_new_namespaces(dir_, PinRequest{});
  ASSERT_FALSE(pinned.has_value());
  EXPECT_EQ(pinned.error().code, EEXIST);
  EXPECT_TRUE(mounts_under(tmp_).empty());
  EXPECT_FALSE(exists(dir_ + "/net"));
  EXPECT_FALSE(exists(dir_ + "/ipc"));
  EXPECT_EQ(testing::slurp(dir_ + "/uts").value_or(""), "someone else's");
}

TEST_F(PinnedNamespacesTest, PidHolderIsPid1OfItsNamespaceAndDiesOnStop) {
  auto holder = start_pid_namespace_holder(dir_, "/bin/busybox", {"sleep", "1000000"});
  ASSERT_TRUE(holder.has_value()) << holder.error().message;
  holder_ = *holder;
  EXPECT_GT(holder->pid, 0);
  EXPECT_EQ(holder->start_time, process_start_time(holder->pid));
  EXPECT_EQ(holder->pid_ns, dir_ + "/pid");

  std::string proc = "/proc/" + std::to_string(holder->pid);
  std::string status = testing::slurp(proc + "/status").value_or("");
  EXPECT_THAT(status, HasSubstr("NSpid:\t" + std::to_string(holder->pid) + "\t1\n"));
  // Not our child, not in our session.
  EXPECT_THAT(status, ::testing::Not(HasSubstr("PPid:\t" + std::to_string(::getpid()) + "\n")));
  EXPECT_NE(::getsid(holder->pid), ::getsid(0));
  EXPECT_EQ(inode_of(dir_ + "/pid"), inode_of(proc + "/ns/pid"));
  EXPECT_NE(inode_of(dir_ + "/pid"), inode_of("/proc/self/ns/pid"));
  EXPECT_EQ(mounts_under(dir_), std::vector<std::string>{dir_ + "/pid"});
  // Something joining by path lands in it.
  EXPECT_EQ(trimmed(run_command({kNsenter, "--pid=" + holder->pid_ns, "--", "/bin/busybox", "sh", "-c",
                                 "echo $$"}).out),
            "2");

  // A wrong start time (pid reuse) leaves the process alone.
  EXPECT_TRUE(stop_pid_namespace_holder(holder->pid, holder->start_time + 1).has_value());
  EXPECT_TRUE(alive(holder->pid, 0));

  ASSERT_TRUE(stop_pid_namespace_holder(holder->pid, holder->start_time).has_value());
  EXPECT_FALSE(alive(holder->pid, 1000));
  EXPECT_TRUE(stop_pid_namespace_holder(holder->pid, holder->start_time).has_value());
  ASSERT_TRUE(release_pinned_namespaces(dir_).has_value());
  EXPECT_TRUE(mounts_under(tmp_).empty());
  EXPECT_FALSE(exists(dir_ + "/pid"));
}

TEST_F(PinnedNamespacesTest, PidHolderThatCannotStartLeavesNothing) {
  auto missing = start_pid_namespace_holder(dir_, tmp_ + "/no-such-binary", {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);

  // Passes the access() check but execve refuses it: reported from the child.
  auto not_a_program = start_pid_namespace_holder(dir_, tmp_, {});
  ASSERT_FALSE(not_a_program.has_value());
  EXPECT_EQ(not_a_program.error().code, EACCES);
  EXPECT_THAT(not_a_program.error().message, HasSubstr("exec PID namespace holder"));
  EXPECT_FALSE(exists(dir_ + "/pid"));
  EXPECT_TRUE(mounts_under(tmp_).empty());
}

}  // namespace
}  // namespace berth::linux_ns

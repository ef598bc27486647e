// Unit tests for runtime/linux/container_state: state.json round trip, the OCI state
// document, and pid-reuse protection through /proc/<pid>/stat start times.
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <regex>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/linux/container_state.h"

namespace berth {
namespace {

using nlohmann::json;

ContainerState sample_state() {
  ContainerState s;
  s.id = "web-1";
  s.pid = 4242;
  s.start_time = 123456789012ULL;
  s.bundle = "/var/lib/berth/bundles/web-1";
  s.rootfs = "/var/lib/berth/bundles/web-1/rootfs";
  s.created = "2024-05-01T10:20:30.123456789Z";
  s.cgroup_path = "/berth/web-1";
  s.annotations = {{"io.kubernetes.pod", "p"}, {"x", "y z"}};
  s.created_done = true;
  return s;
}

// Forks a child that blocks until release() and then exits with status 7.
class BlockedChild {
 public:
  BlockedChild() {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[1]);
      char c;
      while (::read(fds[0], &c, 1) < 0) {
      }
      ::_exit(7);
    }
    ::close(fds[0]);
    release_fd_ = fds[1];
  }
  ~BlockedChild() {
    release();
    if (pid_ > 0 && !reaped_) ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  void release() {
    if (release_fd_ >= 0) ::close(release_fd_);
    release_fd_ = -1;
  }
  // Waits until the child has exited without reaping it (it stays a zombie).
  bool wait_zombie() {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) == 0 && info.si_pid == pid_;
  }
  bool reap() {
    int status = 0;
    reaped_ = ::waitpid(pid_, &status, 0) == pid_;
    return reaped_ && WIFEXITED(status) && WEXITSTATUS(status) == 7;
  }

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
  bool reaped_ = false;
};

TEST(ContainerStateJson, RoundTrip) {
  ContainerState s = sample_state();
  auto back = ContainerState::from_json(s.to_json());
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->id, s.id);
  EXPECT_EQ(back->pid, s.pid);
  EXPECT_EQ(back->start_time, s.start_time);
  EXPECT_EQ(back->bundle, s.bundle);
  EXPECT_EQ(back->rootfs, s.rootfs);
  EXPECT_EQ(back->created, s.created);
  EXPECT_EQ(back->cgroup_path, s.cgroup_path);
  EXPECT_EQ(back->annotations, s.annotations);
  EXPECT_TRUE(back->created_done);

  // created_done false survives as false, and a huge start time is not truncated.
  s.created_done = false;
  s.start_time = 18446744073709551000ULL;
  back = ContainerState::from_json(s.to_json());
  ASSERT_TRUE(back.has_value());
  EXPECT_FALSE(back->created_done);
  EXPECT_EQ(back->start_time, 18446744073709551000ULL);
}

TEST(ContainerStateJson, MissingFieldsTakeDefaults) {
  auto s = ContainerState::from_json(R"({"id": "a"})");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->id, "a");
  EXPECT_EQ(s->pid, 0);
  EXPECT_EQ(s->start_time, 0u);
  EXPECT_TRUE(s->annotations.empty());
  EXPECT_FALSE(s->created_done);
}

TEST(ContainerStateJson, CorruptInputIsAnError) {
  for (const char* bad : {"", "{", "{\"id\": \"a\",", "[1,2]", "\"x\"", "null", "{\"pid\": \"12\"}",
                          "{\"annotations\": {\"a\": 1}}"}) {
    auto s = ContainerState::from_json(bad);
    ASSERT_FALSE(s.has_value()) << bad;
    EXPECT_EQ(s.error().code, EIO) << bad;
    EXPECT_THAT(s.error().message, ::testing::HasSubstr("corrupt")) << bad;
  }
}

TEST(ContainerStateOci, Fields) {
  ContainerState s = sample_state();
  json j = json::parse(oci_state_json(s, Status::running));
  EXPECT_TRUE(j.value("ociVersion", "").starts_with("1.")) << j.dump();
  EXPECT_EQ(j["id"], "web-1");
  EXPECT_EQ(j["status"], "running");
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["bundle"], s.bundle);
  EXPECT_EQ(j["rootfs"], s.rootfs);
  EXPECT_EQ(j["created"], s.created);
  EXPECT_EQ(j["owner"], "");
  EXPECT_EQ(j["annotations"]["io.kubernetes.pod"], "p");
  EXPECT_EQ(j["annotations"]["x"], "y z");

  EXPECT_EQ(json::parse(oci_state_json(s, Status::created))["status"], "created");
  EXPECT_EQ(json::parse(oci_state_json(s, Status::created))["pid"], 4242);
  EXPECT_EQ(json::parse(oci_state_json(s, Status::paused))["status"], "paused");
  EXPECT_EQ(json::parse(oci_state_json(s, Status::creating))["status"], "creating");
}

TEST(ContainerStateOci, StoppedReportsPidZero) {
  ContainerState s = sample_state();
  json j = json::parse(oci_state_json(s, Status::stopped));
  EXPECT_EQ(j["status"], "stopped");
  EXPECT_EQ(j["pid"], 0);
}

TEST(ContainerStateOci, StatusNames) {
  EXPECT_STREQ(status_name(Status::creating), "creating");
  EXPECT_STREQ(status_name(Status::created), "created");
  EXPECT_STREQ(status_name(Status::running), "running");
  EXPECT_STREQ(status_name(Status::paused), "paused");
  EXPECT_STREQ(status_name(Status::stopped), "stopped");
}

TEST(ContainerStateProcess, SelfMatchesItsStartTime) {
  unsigned long long st = process_start_time(::getpid());
  ASSERT_GT(st, 0u);
  EXPECT_EQ(process_start_time(::getpid()), st);  // stable
  EXPECT_TRUE(process_matches(::getpid(), st));
  EXPECT_FALSE(process_matches(::getpid(), st + 1));
  EXPECT_FALSE(process_matches(::getpid(), 0));
  EXPECT_EQ(process_start_time(0), 0u);
  EXPECT_EQ(process_start_time(-1), 0u);
  EXPECT_FALSE(process_matches(0, 0));
}

TEST(ContainerStateProcess, ChildStartsAfterParent) {
  BlockedChild child;
  ASSERT_GT(child.pid(), 0);
  unsigned long long mine = process_start_time(::getpid());
  unsigned long long its = process_start_time(child.pid());
  ASSERT_GT(its, 0u);
  EXPECT_GE(its, mine);
  EXPECT_TRUE(process_matches(child.pid(), its));
}

TEST(ContainerStateProcess, ZombieChildDoesNotMatch) {
  BlockedChild child;
  ASSERT_GT(child.pid(), 0);
  unsigned long long st = process_start_time(child.pid());
  ASSERT_GT(st, 0u);
  ASSERT_TRUE(process_matches(child.pid(), st));
  child.release();
  ASSERT_TRUE(child.wait_zombie());
  // Exited but not reaped: /proc/<pid> still exists, in state Z.
  EXPECT_EQ(::access(("/proc/" + std::to_string(child.pid())).c_str(), F_OK), 0);
  EXPECT_EQ(process_start_time(child.pid()), 0u);
  EXPECT_FALSE(process_matches(child.pid(), st));
  ASSERT_TRUE(child.reap());
}

TEST(ContainerStateProcess, ReapedChildDoesNotMatch) {
  BlockedChild child;
  ASSERT_GT(child.pid(), 0);
  unsigned long long st = process_start_time(child.pid());
  ASSERT_GT(st, 0u);
  child.release();
  ASSERT_TRUE(child.reap());
  EXPECT_EQ(process_start_time(child.pid()), 0u);
  EXPECT_FALSE(process_matches(child.pid(), st));
}

TEST(ContainerStateTime, NowIsRfc3339Utc) {
  std::string now = now_rfc3339();
  EXPECT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z)"))) << now;
  time_t t = ::time(nullptr);
  tm utc{};
  ::gmtime_r(&t, &utc);
  char year[8];
  ::strftime(year, sizeof year, "%Y", &utc);
  EXPECT_EQ(now.substr(0, 4), year);
}

}  // namespace
}  // namespace berth

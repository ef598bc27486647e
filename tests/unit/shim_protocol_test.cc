// The files berth-shim leaves for berthd, and how it finds a container's memory
// cgroup on v1, v2 and hybrid hosts (fake /proc and mountinfo text, fake cgroupfs).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "runtime/shim/memory_cgroup.h"
#include "runtime/shim/shim_client.h"
#include "runtime/shim/shim_protocol.h"

namespace berth::shim {
namespace {

TEST(ShimProtocol, ShimStateRoundTrips) {
  ShimState s{1234, 987654321012ULL, 5678, 42};
  char buf[512];
  size_t n = format_shim_state(s, buf, sizeof buf);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(std::string(buf, n),
            "version=1\nshim_pid=1234\nshim_start_time=987654321012\ncontainer_pid=5678\ncontainer_start_time=42\n");
  auto back = parse_shim_state(std::string_view(buf, n));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->shim_pid, 1234);
  EXPECT_EQ(back->shim_start_time, 987654321012ULL);
  EXPECT_EQ(back->container_pid, 5678);
  EXPECT_EQ(back->container_start_time, 42ULL);
}

TEST(ShimProtocol, ExitStateRoundTrips) {
  ExitState s{137, 9, 1795255200123456789LL, true};
  char buf[512];
  size_t n = format_exit_state(s, buf, sizeof buf);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(std::string(buf, n),
            "version=1\nexit_code=137\nsignal=9\nexited_at_ns=1795255200123456789\noom_killed=1\n");
  auto back = parse_exit_state(std::string_view(buf, n));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->exit_code, 137);
  EXPECT_EQ(back->signal, 9);
  EXPECT_EQ(back->exited_at_ns, 1795255200123456789LL);
  EXPECT_TRUE(back->oom_killed);
}

TEST(ShimProtocol, FormatRefusesATooSmallBuffer) {
  char buf[16];
  EXPECT_EQ(format_exit_state(ExitState{}, buf, sizeof buf), 0u);
}

TEST(ShimProtocol, ReadersIgnoreUnknownKeysAndRejectMissingOnes) {
  auto ok = parse_exit_state("version=1\nexit_code=3\nfuture=x\nsignal=0\nexited_at_ns=5\noom_killed=0\n");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->exit_code, 3);
  auto missing = parse_exit_state("version=1\nexit_code=3\nsignal=0\noom_killed=0\n");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("exited_at_ns"), std::string::npos) << missing.error().message;
  EXPECT_FALSE(parse_exit_state("version=1\nexit_code=x\nsignal=0\nexited_at_ns=5\noom_killed=0\n"));
  EXPECT_FALSE(parse_shim_state("version=2\nshim_pid=1\nshim_start_time=1\ncontainer_pid=1\ncontainer_start_time=1\n"));
  EXPECT_FALSE(parse_shim_state(""));
}

class StateDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-shim-unit.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  void put(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }
  std::string dir_;
};

TEST_F(StateDir, ClientReadsStateFiles) {
  auto none = read_exit_state(dir_);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(read_shim_state(dir_).error().code, ENOENT);
  put(kShimStateFile, "version=1\nshim_pid=10\nshim_start_time=11\ncontainer_pid=12\ncontainer_start_time=13\n");
  put(kExitStateFile, "version=1\nexit_code=0\nsignal=0\nexited_at_ns=99\noom_killed=0\n");
  auto shim = read_shim_state(dir_);
  ASSERT_TRUE(shim) << shim.error().message;
  EXPECT_EQ(shim->container_pid, 12);
  auto exit = read_exit_state(dir_);
  ASSERT_TRUE(exit && exit->has_value());
  EXPECT_EQ((*exit)->exited_at_ns, 99);
  put(kExitStateFile, "garbage");
  EXPECT_FALSE(read_exit_state(dir_));
}

TEST_F(StateDir, RequestWithoutAShimIsRefused) {
  auto r = shim_request(dir_, "ping", std::chrono::milliseconds(200));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().code == ENOENT || r.error().code == ECONNREFUSED) << r.error().message;
}

TEST_F(StateDir, LaunchValidatesItsInput) {
  ShimLaunch l;
  l.id = "x";
  auto r = launch_shim(l);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
}

// This host's layout: v1 memory next to a controller-less cgroup2 mount.
constexpr char kHybridMountinfo[] =
    "25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(MemoryCgroupLookup, HybridPrefersTheV1MemoryHierarchy) {
  auto m = MemoryCgroup::resolve("9:name=systemd:/\n4:memory:/berth/c1\n1:cpu:/\n0::/\n", kHybridMountinfo);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->dir(), "/sys/fs/cgroup/memory/berth/c1");
  EXPECT_FALSE(m->unified());
}

TEST(MemoryCgroupLookup, CombinedControllersAndEscapedMountpoint) {
  auto m = MemoryCgroup::resolve("3:memory,hugetlb:/pods/a\n",
                                 "40 31 0:40 / /mnt/cg\\040v1 rw - cgroup cgroup rw,hugetlb,memory\n");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->dir(), "/mnt/cg v1/pods/a");
}

TEST(MemoryCgroupLookup, PureV2) {
  auto m = MemoryCgroup::resolve("0::/berth/c2\n", "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->dir(), "/sys/fs/cgroup/berth/c2");
  EXPECT_TRUE(m->unified());
}

TEST(MemoryCgroupLookup, MountOfASubtree) {
  // A cgroupfs mounted from inside a cgroup namespace or bind-mounted subtree.
  auto m = MemoryCgroup::resolve("0::/outer/berth/c3\n", "30 1 0:26 /outer /cg rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->dir(), "/cg/berth/c3");
  EXPECT_FALSE(MemoryCgroup::resolve("0::/elsewhere/c3\n", "30 1 0:26 /outer /cg rw - cgroup2 cgroup2 rw\n"));
  EXPECT_FALSE(MemoryCgroup::resolve("0::/outerx/c3\n", "30 1 0:26 /outer /cg rw - cgroup2 cgroup2 rw\n"));
}

TEST(MemoryCgroupLookup, NothingToFind) {
  EXPECT_FALSE(MemoryCgroup::resolve("4:memory:/x\n", "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"));
  EXPECT_FALSE(MemoryCgroup::resolve("1:cpu:/x\n", kHybridMountinfo));
}

TEST(MemoryCgroupLookup, OomKillCounterFromFlatKeyedFiles) {
  EXPECT_EQ(MemoryCgroup::flat_keyed_value("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill").value(), 2u);
  EXPECT_EQ(MemoryCgroup::flat_keyed_value("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n", "oom_kill")
                .value(),
            1u);
  EXPECT_FALSE(MemoryCgroup::flat_keyed_value("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"));
}

TEST_F(StateDir, OomCounterFromAFakeCgroupfs) {
  ::mkdir((dir_ + "/memory").c_str(), 0755);
  ::mkdir((dir_ + "/memory/c").c_str(), 0755);
  put("memory/c/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  auto v1 = MemoryCgroup::resolve("4:memory:/c\n", "1 1 0:1 / " + dir_ + "/memory rw - cgroup cgroup rw,memory\n");
  ASSERT_TRUE(v1) << v1.error().message;
  EXPECT_EQ(v1->oom_kills().value(), 3u);

  ::mkdir((dir_ + "/unified").c_str(), 0755);
  ::mkdir((dir_ + "/unified/c").c_str(), 0755);
  put("unified/c/memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  auto v2 = MemoryCgroup::resolve("0::/c\n", "1 1 0:1 / " + dir_ + "/unified rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(v2) << v2.error().message;
  EXPECT_EQ(v2->oom_kills().value(), 0u);
  ::rmdir((dir_ + "/unified/c/memory.events").c_str());
  ::unlink((dir_ + "/unified/c/memory.events").c_str());
  EXPECT_FALSE(v2->oom_kills());
}

}  // namespace
}  // namespace berth::shim

// Integration tests for isolators/cgroups on the real host cgroupfs (root only).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "isolators/cgroups/cgroups.h"
#include "isolators/cgroups/device_filter.h"

namespace berth::cgroups {
namespace {

namespace fs = std::filesystem;

std::string read_trimmed(const std::string& path) {
  auto r = read_file(path);
  return r ? std::string(trim(*r)) : "<" + r.error().message + ">";
}

// A forked child that blocks until told to go, then runs `body` and exits with its
// return value. Killed and reaped on destruction.
class Child {
 public:
  template <typename F>
  explicit Child(F body) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[1]);
      char c;
      if (::read(p[0], &c, 1) != 1) _exit(100);
      _exit(body());
    }
    ::close(p[0]);
    go_ = p[1];
  }
  ~Child() {
    if (go_ >= 0) ::close(go_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void go() {
    char c = 'g';
    ASSERT_EQ(::write(go_, &c, 1), 1);
  }
  int wait() {
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool reaped_ = false;
};

class CgroupsIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto l = Layout::detect();
    ASSERT_TRUE(l) << l.error().message;
    layout_ = *l;
    for (auto [v1, v2] : {std::pair{"memory", "memory"}, {"cpu", "cpu"}, {"pids", "pids"}, {"cpuset", "cpuset"}}) {
      if (!layout_.has_v1(v1) && !layout_.has_unified(v2))
        GTEST_SKIP() << "SKIPPING: controller " << v1 << " is not available on this host";
    }
    static int counter = 0;
    path_ = resolve_path("itest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++), "x").value();
  }
  void TearDown() override {
    if (manager_) (void)manager_->destroy();
  }
  CgroupManager& create() {
    auto m = CgroupManager::create(layout_, path_);
    EXPECT_TRUE(m) << m.error().message;
    if (!m) std::abort();
    manager_.emplace(std::move(*m));
    return *manager_;
  }
  std::string file(const std::string& controller, const std::string& v1, const std::string& v2) const {
    return manager_->dir(controller) + "/" + (layout_.has_v1(controller) ? v1 : v2);
  }
  void expect_gone() {
    for (const auto& d : manager_->dirs()) EXPECT_FALSE(fs::exists(d)) << d;
    EXPECT_FALSE(manager_->exists());
  }

  Layout layout_;
  std::string path_;
  std::optional<CgroupManager> manager_;
};

TEST_F(CgroupsIntegration, CreateApplyReadBackUpdateDestroy) {
  auto& m = create();
  for (const auto& d : m.dirs()) EXPECT_TRUE(fs::is_directory(d)) << d;
  const bool v1mem = layout_.has_v1("memory");
  const bool swap_accounting = fs::exists(file("memory", "memory.memsw.limit_in_bytes", "memory.swap.max"));

  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 64 << 20;
  if (swap_accounting) r.memory->swap = 128 << 20;
  r.cpu = oci::CpuResources{};
  r.cpu->shares = 512;
  r.cpu->quota = 20000;
  r.cpu->period = 100000;
  r.cpu->cpus = "0";
  r.cpu->mems = "0";
  r.pids_limit = 50;
  ASSERT_TRUE(m.apply(r)) << m.apply(r).error().message;

  EXPECT_EQ(read_trimmed(file("memory", "memory.limit_in_bytes", "memory.max")), "67108864");
  if (swap_accounting) {
    EXPECT_EQ(read_trimmed(file("memory", "memory.memsw.limit_in_bytes", "memory.swap.max")),
              v1mem ? "134217728" : "67108864");
  }
  if (layout_.has_v1("cpu")) {
    EXPECT_EQ(read_trimmed(m.dir("cpu") + "/cpu.shares"), "512");
    EXPECT_EQ(read_trimmed(m.dir("cpu") + "/cpu.cfs_quota_us"), "20000");
    EXPECT_EQ(read_trimmed(m.dir("cpu") + "/cpu.cfs_period_us"), "100000");
  } else {
    EXPECT_EQ(read_trimmed(m.dir("cpu") + "/cpu.max"), "20000 100000");
  }
  EXPECT_EQ(read_trimmed(m.dir("pids") + "/pids.max"), "50");
  EXPECT_EQ(read_trimmed(m.dir("cpuset") + "/cpuset.cpus"), "0");
  EXPECT_EQ(read_trimmed(m.dir("cpuset") + "/cpuset.mems"), "0");

  // Live updates in both directions: v1 must order limit and memsw differently.
  if (swap_accounting) {
    r.memory->limit = 32 << 20;
    r.memory->swap = 48 << 20;  // below the old limit: limit must go first
    ASSERT_TRUE(m.apply(r)) << m.apply(r).error().message;
    EXPECT_EQ(read_trimmed(file("memory", "memory.limit_in_bytes", "memory.max")), "33554432");
    r.memory->limit = 256 << 20;
    r.memory->swap = 512 << 20;  // above the old memsw: memsw must go first
    ASSERT_TRUE(m.apply(r)) << m.apply(r).error().message;
    EXPECT_EQ(read_trimmed(file("memory", "memory.limit_in_bytes", "memory.max")), "268435456");
    if (v1mem) {
      EXPECT_EQ(read_trimmed(m.dir("memory") + "/memory.memsw.limit_in_bytes"), "536870912");
    }
  }
  r = oci::Resources{};
  r.pids_limit = -1;
  ASSERT_TRUE(m.apply(r));
  EXPECT_EQ(read_trimmed(m.dir("pids") + "/pids.max"), "max");

  // A bad value is refused by us before the kernel sees anything.
  oci::Resources bad;
  bad.pids_limit = -4;
  EXPECT_FALSE(m.apply(bad));
  EXPECT_EQ(read_trimmed(m.dir("pids") + "/pids.max"), "max");

  ASSERT_TRUE(m.destroy()) << m.destroy().error().message;
  expect_gone();
  EXPECT_TRUE(m.destroy());  // idempotent
}

TEST_F(CgroupsIntegration, ProcessesFreezeThawPidsLimitAndKill) {
  auto& m = create();
  // Shared counter: a running child keeps bumping it, a frozen one cannot.
  auto* counter = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(counter, MAP_FAILED);
  new (counter) std::atomic<uint64_t>(0);
  Child spinner([counter] {
    for (;;) {
      counter->fetch_add(1);
      ::usleep(100);
    }
    return 0;
  });
  ASSERT_GT(spinner.pid(), 0);
  ASSERT_TRUE(m.add_process(spinner.pid())) << m.add_process(spinner.pid()).error().message;
  spinner.go();
  for (const auto& d : m.dirs())
    EXPECT_NE(read_trimmed(d + "/cgroup.procs").find(std::to_string(spinner.pid())), std::string::npos) << d;
  auto pids = m.pids();
  ASSERT_TRUE(pids) << pids.error().message;
  EXPECT_EQ(*pids, std::vector<pid_t>{spinner.pid()});

  auto progress = [&] {
    uint64_t a = counter->load();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return counter->load() - a;
  };
  EXPECT_GT(progress(), 0u);
  EXPECT_FALSE(m.frozen().value());
  ASSERT_TRUE(m.freeze()) << m.freeze().error().message;
  EXPECT_TRUE(m.frozen().value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(progress(), 0u) << "a frozen child kept running";
  ASSERT_TRUE(m.thaw());
  EXPECT_FALSE(m.frozen().value());
  EXPECT_GT(progress(), 0u) << "a thawed child did not resume";

  // pids.max = 2 with the spinner and the forker in: the next fork fails with EAGAIN.
  Child forker([] {
    pid_t p = ::fork();
    if (p == 0) _exit(0);
    if (p > 0) {
      ::waitpid(p, nullptr, 0);
      return 1;  // fork unexpectedly worked
    }
    return errno == EAGAIN ? 42 : 2;
  });
  oci::Resources two;
  two.pids_limit = 2;
  ASSERT_TRUE(m.apply(two));
  ASSERT_TRUE(m.add_process(forker.pid()));
  forker.go();
  int status = forker.wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 42) << "fork in a full pids cgroup did not fail with EAGAIN";

  ASSERT_TRUE(m.signal_all(SIGKILL)) << m.signal_all(SIGKILL).error().message;
  status = spinner.wait();
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_FALSE(m.frozen().value());  // signal_all thawed after killing
  ::munmap(counter, sizeof(*counter));

  ASSERT_TRUE(m.destroy()) << m.destroy().error().message;
  expect_gone();
}

TEST_F(CgroupsIntegration, HybridHugetlbGoesToUnified) {
  if (layout_.mode != Mode::hybrid || !layout_.has_unified("hugetlb") || layout_.has_v1("hugetlb"))
    GTEST_SKIP() << "SKIPPING: host is not hybrid with hugetlb in the unified hierarchy";
  std::string size;
  for (const auto& e : fs::directory_iterator("/sys/kernel/mm/hugepages")) {
    std::string n = e.path().filename();  // hugepages-2048kB
    if (n == "hugepages-2048kB") size = "2MB";
  }
  if (size.empty()) GTEST_SKIP() << "SKIPPING: no 2MB huge page size";
  auto& m = create();
  const std::string dir = m.dir("hugetlb");
  EXPECT_EQ(dir, layout_.unified_mount + path_);
  oci::Resources r;
  r.hugepage_limits.push_back({size, 4 << 20});
  ASSERT_TRUE(m.apply(r)) << m.apply(r).error().message;
  EXPECT_EQ(read_trimmed(dir + "/hugetlb." + size + ".max"), "4194304");
  ASSERT_TRUE(m.destroy());
  expect_gone();
}

// Needs a cgroup2 mount; on this host it is the hybrid one at /sys/fs/cgroup/unified.
TEST_F(CgroupsIntegration, DeviceFilterDeniesDevNull) {
  if (layout_.unified_mount.empty()) GTEST_SKIP() << "SKIPPING: no cgroup2 mount";
  Layout v2only;
  v2only.mode = Mode::v2;
  v2only.unified_mount = layout_.unified_mount;
  v2only.unified_controllers = layout_.unified_controllers;
  auto created = CgroupManager::create(v2only, path_);
  ASSERT_TRUE(created) << created.error().message;
  manager_.emplace(std::move(*created));
  auto& m = *manager_;

  auto open_result = [&](const char* dev) {
    Child c([dev] {
      int fd = ::open(dev, O_RDWR | O_CLOEXEC);
      if (fd >= 0) return 0;
      return errno == EPERM ? 1 : 2;
    });
    EXPECT_TRUE(m.add_process(c.pid()));
    c.go();
    int status = c.wait();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };

  std::vector<oci::DeviceRule> rules = {
      {true, "a", std::nullopt, std::nullopt, "rwm"},
      {false, "c", 1, 3, "rwm"},  // /dev/null
  };
  auto attached = attach_device_filter(m.dir("unified"), rules);
  if (!attached && (attached.error().code == EPERM || attached.error().code == ENOSYS))
    GTEST_SKIP() << "SKIPPING: bpf() not permitted here: " << attached.error().message;
  ASSERT_TRUE(attached) << attached.error().message;
  EXPECT_EQ(open_result("/dev/null"), 1) << "/dev/null should be denied with EPERM";
  EXPECT_EQ(open_result("/dev/zero"), 0) << "/dev/zero should stay allowed";

  // A live update through apply() replaces the program instead of stacking it.
  oci::Resources allow_all;
  allow_all.devices = {{true, "a", std::nullopt, std::nullopt, "rwm"}};
  ASSERT_TRUE(m.apply(allow_all)) << m.apply(allow_all).error().message;
  EXPECT_EQ(open_result("/dev/null"), 0) << "the old deny program is still attached";

  ASSERT_TRUE(m.destroy());
  expect_gone();
}

}  // namespace
}  // namespace berth::cgroups

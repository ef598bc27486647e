// Unit tests for isolators/cgroups: layout detection, path resolution, the resource
// mapping, CgroupManager on fake cgroupfs trees and the device BPF generator.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "isolators/cgroups/cgroups.h"
#include "isolators/cgroups/device_filter.h"

namespace berth::cgroups {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-cgroups-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void put(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << content;
}

std::string get(const std::string& path) {
  auto r = read_file(path);
  return r ? std::string(trim(*r)) : std::string("<missing>");
}

// ---- Layout ------------------------------------------------------------------------

const char* kV1Only =
    "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,clone_children\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw shared:9 - cgroup cgroup rw,xattr,name=systemd\n"
    "50 22 0:32 /docker/x /mnt/memory\\040copy rw - cgroup cgroup rw,memory\n";

TEST(CgroupLayout, DetectsV1OnlyWithComountsAndNamedHierarchy) {
  auto l = Layout::parse(kV1Only);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->mode, Mode::v1);
  EXPECT_EQ(l->v1_mounts.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l->v1_mounts.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l->v1_mounts.at("cpuset"), "/sys/fs/cgroup/cpuset");
  EXPECT_EQ(l->v1_mounts.at("net_prio"), "/sys/fs/cgroup/net_cls,net_prio");
  EXPECT_EQ(l->v1_mounts.at("name=systemd"), "/sys/fs/cgroup/systemd");
  // The bind mount of a sub-cgroup does not replace the root mount.
  EXPECT_EQ(l->v1_mounts.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_FALSE(l->v1_mounts.contains("clone_children"));
  EXPECT_FALSE(l->v1_mounts.contains("xattr"));
  EXPECT_FALSE(l->v1_mounts.contains("rw"));
  EXPECT_TRUE(l->unified_mount.empty());
  EXPECT_TRUE(l->has_v1("memory"));
  EXPECT_FALSE(l->has_v1("name=systemd"));
  EXPECT_FALSE(l->has_unified("hugetlb"));
}

TEST(CgroupLayout, UnescapesMountpoints) {
  auto l = Layout::parse("50 22 0:32 / /mnt/my\\040memory rw - cgroup cgroup rw,memory\n");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->v1_mounts.at("memory"), "/mnt/my memory");
}

TEST(CgroupLayout, DetectsHybridLikeThisHost) {
  TempDir unified;
  put(unified.path() + "/cgroup.controllers", "hugetlb\n");
  std::string text =
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
      "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
      "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
      "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / " + unified.path() + " rw,relatime - cgroup2 cgroup2 rw\n";
  auto l = Layout::parse(text);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->mode, Mode::hybrid);
  EXPECT_EQ(l->v1_mounts.size(), 9u);
  EXPECT_EQ(l->v1_mounts.at("cpuacct"), "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(l->unified_mount, unified.path());
  EXPECT_EQ(l->unified_controllers, std::set<std::string>{"hugetlb"});
  EXPECT_TRUE(l->has_unified("hugetlb"));
  EXPECT_FALSE(l->has_unified("memory"));

  // Through a file, as detect() is used.
  put(unified.path() + "/mountinfo", text);
  auto d = Layout::detect(unified.path() + "/mountinfo");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mode, Mode::hybrid);
}

TEST(CgroupLayout, DetectsPureV2) {
  TempDir unified;
  put(unified.path() + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  auto l = Layout::parse("30 23 0:26 / " + unified.path() +
                         " rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n");
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->mode, Mode::v2);
  EXPECT_TRUE(l->v1_mounts.empty());
  EXPECT_EQ(l->unified_controllers.size(), 8u);
  EXPECT_TRUE(l->unified_controllers.contains("io"));
}

TEST(CgroupLayout, NamedHierarchyAloneDoesNotMakeHybrid) {
  TempDir unified;
  put(unified.path() + "/cgroup.controllers", "cpu memory\n");
  auto l = Layout::parse("30 23 0:26 / " + unified.path() + " rw - cgroup2 cgroup2 rw\n"
                         "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->mode, Mode::v2);
}

TEST(CgroupLayout, NoCgroupMountIsAnError) {
  auto l = Layout::parse("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n");
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, ENOENT);
  EXPECT_FALSE(Layout::detect("/nonexistent/mountinfo"));
}

TEST(CgroupLayout, DetectsTheRealHost) {
  auto l = Layout::detect();
  if (!l) GTEST_SKIP() << "no cgroup mounted: " << l.error().message;
  EXPECT_TRUE(!l->v1_mounts.empty() || !l->unified_mount.empty());
}

// ---- resolve_path -------------------------------------------------------------------

TEST(CgroupPath, Resolves) {
  EXPECT_EQ(resolve_path("", "c1").value(), "/berth/c1");
  EXPECT_EQ(resolve_path("a/b", "c1").value(), "/berth/a/b");
  EXPECT_EQ(resolve_path("a/./b/", "c1").value(), "/berth/a/b");
  EXPECT_EQ(resolve_path("/kubepods/pod1/c1", "x").value(), "/kubepods/pod1/c1");
  EXPECT_EQ(resolve_path("//a//b/../c/", "x").value(), "/a/c");
  EXPECT_EQ(resolve_path("a/../b", "x").value(), "/berth/b");
}

TEST(CgroupPath, RejectsEscapesAndRoot) {
  for (const char* bad : {"../x", "a/../../x", "/../etc", "/a/../..", "/", "/.", "a/b:c"}) {
    auto r = resolve_path(bad, "c1");
    EXPECT_FALSE(r) << bad << " -> " << r.value_or("");
    if (!r) {
      EXPECT_EQ(r.error().code, EINVAL);
    }
  }
  EXPECT_FALSE(resolve_path("", ""));
  EXPECT_FALSE(resolve_path("", ".."));
  EXPECT_FALSE(resolve_path("", "a/b"));
}

TEST(CgroupPath, SystemdForm) {
  EXPECT_EQ(resolve_path("system.slice:docker:abc", "x").value(), "/system.slice/docker-abc.scope");
  EXPECT_EQ(resolve_path("kubepods-besteffort-pod12.slice:cri-containerd:abc", "x").value(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope");
  EXPECT_EQ(resolve_path("-.slice:berth:c", "x").value(), "/berth-c.scope");
  EXPECT_EQ(resolve_path(":berth:c", "x").value(), "/berth-c.scope");
  EXPECT_EQ(resolve_path("user.slice:berth:", "id7").value(), "/user.slice/berth-id7.scope");
  EXPECT_EQ(resolve_path("a.slice::n", "x").value(), "/a.slice/n.scope");
  EXPECT_EQ(resolve_path("a.slice:p:sub.slice", "x").value(), "/a.slice/sub.slice");
  EXPECT_FALSE(resolve_path("notaslice:p:n", "x"));
  EXPECT_FALSE(resolve_path("a--b.slice:p:n", "x"));
  EXPECT_FALSE(resolve_path("-a.slice:p:n", "x"));
  EXPECT_FALSE(resolve_path("a.slice:p:..", "x"));
  EXPECT_FALSE(resolve_path("a.slice:p/q:n", "x"));
  EXPECT_FALSE(resolve_path("a.slice:p", "x"));
}

// ---- writes_v1 / writes_v2 ------------------------------------------------------

std::optional<Write> find(const std::vector<Write>& ws, const std::string& file) {
  for (const auto& w : ws)
    if (w.file == file) return w;
  return std::nullopt;
}

std::vector<std::string> values(const std::vector<Write>& ws, const std::string& file) {
  std::vector<std::string> out;
  for (const auto& w : ws)
    if (w.file == file) out.push_back(w.value);
  return out;
}

size_t index_of(const std::vector<Write>& ws, const std::string& file) {
  for (size_t i = 0; i < ws.size(); ++i)
    if (ws[i].file == file) return i;
  return ws.size();
}

oci::Resources full_resources() {
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 256 << 20;
  r.memory->swap = 512 << 20;
  r.memory->reservation = 128 << 20;
  r.memory->kernel = 64 << 20;
  r.memory->kernel_tcp = 16 << 20;
  r.memory->swappiness = 10;
  r.memory->disable_oom_killer = true;
  r.cpu = oci::CpuResources{};
  r.cpu->shares = 1024;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.cpu->cpus = "0-1";
  r.cpu->mems = "0";
  r.pids_limit = 100;
  r.block_io = oci::BlockIoResources{};
  r.block_io->weight = 500;
  r.block_io->weight_device.push_back({8, 0, 300, std::nullopt});
  r.block_io->throttle_read_bps.push_back({8, 0, 1048576});
  r.block_io->throttle_write_iops.push_back({8, 0, 100});
  r.block_io->throttle_read_iops.push_back({8, 16, 0});
  r.hugepage_limits.push_back({"2MB", 4194304});
  return r;
}

TEST(CgroupWrites, V1Mapping) {
  oci::Resources r = full_resources();
  r.network = oci::NetworkResources{};
  r.network->class_id = 0x100001;
  r.network->priorities = {{"eth0", 5}, {"lo", 2}};
  auto ws = writes_v1(r);
  ASSERT_TRUE(ws) << ws.error().message;
  auto w = find(*ws, "memory.limit_in_bytes");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->controller, "memory");
  EXPECT_EQ(w->value, "268435456");
  EXPECT_FALSE(w->v2);
  EXPECT_EQ(find(*ws, "memory.memsw.limit_in_bytes")->value, "536870912");
  EXPECT_EQ(find(*ws, "memory.soft_limit_in_bytes")->value, "134217728");
  EXPECT_TRUE(find(*ws, "memory.kmem.limit_in_bytes")->if_exists);
  EXPECT_TRUE(find(*ws, "memory.kmem.tcp.limit_in_bytes")->if_exists);
  EXPECT_EQ(find(*ws, "memory.swappiness")->value, "10");
  EXPECT_EQ(find(*ws, "memory.oom_control")->value, "1");
  EXPECT_EQ(find(*ws, "cpu.shares")->value, "1024");
  EXPECT_EQ(find(*ws, "cpu.cfs_quota_us")->value, "50000");
  EXPECT_LT(index_of(*ws, "cpu.cfs_period_us"), index_of(*ws, "cpu.cfs_quota_us"));
  EXPECT_EQ(find(*ws, "cpuset.cpus")->value, "0-1");
  EXPECT_EQ(find(*ws, "cpuset.mems")->value, "0");
  EXPECT_EQ(index_of(*ws, "cpuset.cpus"), 0u);  // cpuset before anything else
  EXPECT_EQ(find(*ws, "pids.max")->value, "100");
  auto bw = find(*ws, "blkio.weight");
  EXPECT_EQ(bw->value, "500");
  EXPECT_EQ(bw->fallback_file, "blkio.bfq.weight");
  EXPECT_EQ(find(*ws, "blkio.weight_device")->value, "8:0 300");
  EXPECT_EQ(find(*ws, "blkio.throttle.read_bps_device")->value, "8:0 1048576");
  EXPECT_EQ(find(*ws, "blkio.throttle.write_iops_device")->value, "8:0 100");
  EXPECT_EQ(find(*ws, "blkio.throttle.read_iops_device")->value, "8:16 0");
  EXPECT_EQ(find(*ws, "hugetlb.2MB.limit_in_bytes")->value, "4194304");
  EXPECT_TRUE(find(*ws, "hugetlb.2MB.rsvd.limit_in_bytes")->if_exists);
  EXPECT_EQ(find(*ws, "net_cls.classid")->value, "1048577");
  EXPECT_EQ(values(*ws, "net_prio.ifpriomap"), (std::vector<std::string>{"eth0 5", "lo 2"}));
  EXPECT_FALSE(find(*ws, "memory.max"));
  EXPECT_FALSE(find(*ws, "cpu.max"));
}

TEST(CgroupWrites, V2MappingAndConversions) {
  oci::Resources r = full_resources();
  r.unified["memory.high"] = "200000000";
  r.unified["cgroup.max.descendants"] = "10";
  auto ws = writes_v2(r);
  ASSERT_TRUE(ws) << ws.error().message;
  for (const auto& w : *ws) EXPECT_TRUE(w.v2) << w.file;
  EXPECT_EQ(find(*ws, "memory.max")->value, "268435456");
  // OCI swap is memory+swap; v2 wants swap alone.
  EXPECT_EQ(find(*ws, "memory.swap.max")->value, std::to_string(256 << 20));
  EXPECT_EQ(find(*ws, "memory.low")->value, "134217728");
  EXPECT_FALSE(find(*ws, "memory.kmem.limit_in_bytes"));
  EXPECT_FALSE(find(*ws, "memory.swappiness"));
  EXPECT_EQ(find(*ws, "cpu.weight")->value, "39");  // 1 + (1022*9999)/262142
  EXPECT_EQ(find(*ws, "cpu.max")->value, "50000 100000");
  EXPECT_EQ(find(*ws, "cpuset.cpus")->value, "0-1");
  EXPECT_EQ(find(*ws, "pids.max")->value, "100");
  EXPECT_EQ(values(*ws, "io.weight"),
            (std::vector<std::string>{"default " + std::to_string(1 + (500 - 10) * 9999 / 990),
                                      "8:0 " + std::to_string(1 + (300 - 10) * 9999 / 990)}));
  EXPECT_EQ(find(*ws, "io.weight")->controller, "io");
  EXPECT_EQ(values(*ws, "io.max"), (std::vector<std::string>{"8:0 rbps=1048576 wiops=100", "8:16 riops=max"}));
  EXPECT_EQ(find(*ws, "hugetlb.2MB.max")->value, "4194304");
  EXPECT_TRUE(find(*ws, "hugetlb.2MB.rsvd.max")->if_exists);
  auto high = find(*ws, "memory.high");
  ASSERT_TRUE(high);
  EXPECT_EQ(high->controller, "memory");
  EXPECT_EQ(find(*ws, "cgroup.max.descendants")->controller, "cgroup");
  // The unified map is written last so it overrides structured fields.
  EXPECT_GT(index_of(*ws, "memory.high"), index_of(*ws, "memory.max"));
  EXPECT_GT(index_of(*ws, "memory.high"), index_of(*ws, "hugetlb.2MB.max"));
}

TEST(CgroupWrites, UnlimitedValues) {
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = -1;
  r.memory->reservation = -1;
  r.cpu = oci::CpuResources{};
  r.cpu->quota = -1;
  r.cpu->period = 100000;
  r.pids_limit = -1;
  auto v1 = writes_v1(r);
  ASSERT_TRUE(v1) << v1.error().message;
  EXPECT_EQ(find(*v1, "memory.limit_in_bytes")->value, "-1");
  // Unlimited memory with swap unset lifts swap too, so memsw >= limit holds.
  EXPECT_EQ(find(*v1, "memory.memsw.limit_in_bytes")->value, "-1");
  EXPECT_EQ(find(*v1, "cpu.cfs_quota_us")->value, "-1");
  EXPECT_EQ(find(*v1, "pids.max")->value, "max");
  auto v2 = writes_v2(r);
  ASSERT_TRUE(v2) << v2.error().message;
  EXPECT_EQ(find(*v2, "memory.max")->value, "max");
  EXPECT_EQ(find(*v2, "memory.swap.max")->value, "max");
  EXPECT_EQ(find(*v2, "memory.low")->value, "max");
  EXPECT_EQ(find(*v2, "cpu.max")->value, "max 100000");
  EXPECT_EQ(find(*v2, "pids.max")->value, "max");

  oci::Resources q;
  q.cpu = oci::CpuResources{};
  q.cpu->quota = 20000;
  EXPECT_EQ(find(writes_v2(q).value(), "cpu.max")->value, "20000");
  EXPECT_TRUE(writes_v1(oci::Resources{}).value().empty());
  EXPECT_TRUE(writes_v2(oci::Resources{}).value().empty());
}

TEST(CgroupWrites, Conversions) {
  EXPECT_EQ(cpu_weight_from_shares(0), 0u);
  EXPECT_EQ(cpu_weight_from_shares(2), 1u);
  EXPECT_EQ(cpu_weight_from_shares(1), 1u);  // clamped to 2
  EXPECT_EQ(cpu_weight_from_shares(1024), 39u);
  EXPECT_EQ(cpu_weight_from_shares(262144), 10000u);
  EXPECT_EQ(cpu_weight_from_shares(1000000), 10000u);
  EXPECT_EQ(io_weight_from_blkio(10), 1u);
  EXPECT_EQ(io_weight_from_blkio(1000), 10000u);
  EXPECT_EQ(io_weight_from_blkio(100), 1u + 90u * 9999u / 990u);
}

TEST(CgroupWrites, RejectsNegativeAndInvalidValues) {
  auto expect_rejected = [](const oci::Resources& r, const std::string& field) {
    auto a = writes_v1(r);
    auto b = writes_v2(r);
    ASSERT_FALSE(a) << field;
    ASSERT_FALSE(b) << field;
    EXPECT_EQ(a.error().code, EINVAL);
    EXPECT_NE(a.error().message.find(field), std::string::npos) << a.error().message;
    EXPECT_NE(b.error().message.find(field), std::string::npos) << b.error().message;
  };
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = -2;
  expect_rejected(r, "memory.limit");
  r.memory->limit = 100;
  r.memory->swap = -5;
  expect_rejected(r, "memory.swap");
  r.memory->swap = 50;  // memory+swap below memory
  expect_rejected(r, "memory.swap");
  r.memory->swap.reset();
  r.memory->reservation = -3;
  expect_rejected(r, "memory.reservation");
  r.memory->reservation.reset();
  r.memory->swappiness = 101;
  expect_rejected(r, "swappiness");

  oci::Resources c;
  c.cpu = oci::CpuResources{};
  c.cpu->quota = -7;
  expect_rejected(c, "cpu.quota");
  c.cpu->quota.reset();
  c.cpu->cpus = "0-1;rm";
  expect_rejected(c, "cpu.cpus");

  oci::Resources p;
  p.pids_limit = -2;
  expect_rejected(p, "pids.limit");

  oci::Resources b;
  b.block_io = oci::BlockIoResources{};
  b.block_io->weight = 5;
  expect_rejected(b, "blockIO.weight");
  b.block_io->weight.reset();
  b.block_io->throttle_read_bps.push_back({-1, 0, 10});
  expect_rejected(b, "throttleReadBpsDevice");

  oci::Resources h;
  h.hugepage_limits.push_back({"2XB", 1});
  expect_rejected(h, "pageSize");

  oci::Resources d;
  d.devices.push_back({true, "x", std::nullopt, std::nullopt, "rwm"});
  expect_rejected(d, "devices");
  d.devices[0] = {true, "c", 1, 3, "rwx"};
  expect_rejected(d, "devices");

  oci::Resources u;
  for (const char* key : {"../memory.max", "memory/max", "nodot", ".max", "memory."}) {
    u.unified = {{key, "1"}};
    EXPECT_FALSE(writes_v2(u)) << key;
  }
  u.unified = {{"memory.max", "1"}};
  auto v1 = writes_v1(u);
  ASSERT_FALSE(v1);
  EXPECT_NE(v1.error().message.find("unified"), std::string::npos);

  // Swap without a memory limit cannot be converted for v2; v1 takes memsw alone.
  oci::Resources s;
  s.memory = oci::MemoryResources{};
  s.memory->swap = 1000;
  EXPECT_FALSE(writes_v2(s));
  EXPECT_TRUE(writes_v1(s));
  // Realtime and network controllers do not exist on v2.
  oci::Resources rt;
  rt.cpu = oci::CpuResources{};
  rt.cpu->realtime_runtime = 1000;
  EXPECT_FALSE(writes_v2(rt));
  EXPECT_EQ(find(writes_v1(rt).value(), "cpu.rt_runtime_us")->value, "1000");
  oci::Resources net;
  net.network = oci::NetworkResources{};
  net.network->class_id = 1;
  EXPECT_FALSE(writes_v2(net));
}

TEST(CgroupWrites, V1DevicesDenyAllThenRulesInOrder) {
  oci::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  r.devices.push_back({true, "c", 1, 3, "rwm"});
  r.devices.push_back({true, "c", 136, std::nullopt, "rw"});
  r.devices.push_back({false, "b", 8, 0, "m"});
  auto ws = writes_v1(r);
  ASSERT_TRUE(ws);
  ASSERT_EQ(ws->size(), 5u);
  EXPECT_EQ((*ws)[0], (Write{"devices", "devices.deny", "a"}));
  EXPECT_EQ((*ws)[1], (Write{"devices", "devices.deny", "a"}));
  EXPECT_EQ((*ws)[2], (Write{"devices", "devices.allow", "c 1:3 rwm"}));
  EXPECT_EQ((*ws)[3], (Write{"devices", "devices.allow", "c 136:* rw"}));
  EXPECT_EQ((*ws)[4], (Write{"devices", "devices.deny", "b 8:0 m"}));
  EXPECT_TRUE(writes_v2(r).value().empty());  // v2 uses the BPF program
  EXPECT_TRUE(writes_v1(oci::Resources{}).value().empty());
}

TEST(CgroupWrites, V1MemoryOrderKeepsMemswAboveLimit) {
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 200;
  r.memory->swap = 400;
  auto ws = writes_v1(r).value();
  // Growing (current limit 100 < new memsw 400): memsw first.
  order_v1_memory_writes(ws, 100);
  EXPECT_LT(index_of(ws, "memory.memsw.limit_in_bytes"), index_of(ws, "memory.limit_in_bytes"));
  // Shrinking (current limit 1000 >= new memsw 400): limit first.
  order_v1_memory_writes(ws, 1000);
  EXPECT_LT(index_of(ws, "memory.limit_in_bytes"), index_of(ws, "memory.memsw.limit_in_bytes"));
  EXPECT_EQ(find(ws, "memory.limit_in_bytes")->value, "200");
  EXPECT_EQ(find(ws, "memory.memsw.limit_in_bytes")->value, "400");
  // Unlimited memsw always goes first.
  r.memory->limit = -1;
  r.memory->swap = -1;
  ws = writes_v1(r).value();
  order_v1_memory_writes(ws, 1ull << 62);
  EXPECT_LT(index_of(ws, "memory.memsw.limit_in_bytes"), index_of(ws, "memory.limit_in_bytes"));
}

TEST(CgroupWrites, HybridRoutesPerController) {
  Layout l;
  l.mode = Mode::hybrid;
  l.v1_mounts = {{"memory", "/m"}, {"cpu", "/c"}, {"pids", "/p"}, {"devices", "/d"}};
  l.unified_mount = "/u";
  l.unified_controllers = {"hugetlb"};
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 1000;
  r.pids_limit = 5;
  r.hugepage_limits.push_back({"2MB", 2097152});
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  r.unified["hugetlb.1GB.max"] = "0";
  auto ws = writes_for(l, r);
  ASSERT_TRUE(ws) << ws.error().message;
  EXPECT_FALSE(find(*ws, "memory.limit_in_bytes")->v2);
  EXPECT_FALSE(find(*ws, "pids.max")->v2);
  EXPECT_FALSE(find(*ws, "devices.deny")->v2);
  auto huge = find(*ws, "hugetlb.2MB.max");  // v2 file name, not limit_in_bytes
  ASSERT_TRUE(huge);
  EXPECT_TRUE(huge->v2);
  EXPECT_FALSE(find(*ws, "hugetlb.2MB.limit_in_bytes"));
  EXPECT_TRUE(find(*ws, "hugetlb.1GB.max")->v2);

  oci::Resources missing;
  missing.block_io = oci::BlockIoResources{};
  missing.block_io->weight = 100;
  auto e = writes_for(l, missing);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("controller blkio not available"), std::string::npos) << e.error().message;
  oci::Resources bad_key;
  bad_key.unified["memory.max"] = "1";
  auto k = writes_for(l, bad_key);
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message.find("controller memory not available"), std::string::npos) << k.error().message;
  // Groups the resources leave alone need no controller.
  EXPECT_TRUE(writes_for(l, oci::Resources{}).value().empty());
}

// ---- CgroupManager on fake trees ---------------------------------------------------

struct FakeV2 {
  TempDir root;
  Layout layout;
  FakeV2() {
    put(root.path() + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids");
    put(root.path() + "/cgroup.subtree_control", "");
    put(root.path() + "/cgroup.procs", "1\n");
    layout.mode = Mode::v2;
    layout.unified_mount = root.path();
    layout.unified_controllers = {"cpuset", "cpu", "io", "memory", "hugetlb", "pids"};
  }
};

CgroupManager::Options fake() {
  CgroupManager::Options o;
  o.fake_tree = true;
  o.freeze_timeout_ms = 200;
  return o;
}

TEST(CgroupManagerFake, V2CreateEnablesControllersAppliesAndDestroys) {
  FakeV2 f;
  auto m = CgroupManager::create(f.layout, "/berth/c1", fake());
  ASSERT_TRUE(m) << m.error().message;
  const std::string leaf = f.root.path() + "/berth/c1";
  EXPECT_TRUE(fs::is_directory(leaf));
  EXPECT_EQ(m->dir("memory"), leaf);
  EXPECT_EQ(m->dir("unified"), leaf);
  EXPECT_EQ(m->dir("net_cls"), "");
  EXPECT_EQ(m->dirs(), std::vector<std::string>{leaf});
  EXPECT_EQ(m->path(), "/berth/c1");
  EXPECT_TRUE(m->exists());
  // Every ancestor enables the controllers; the leaf stays a leaf.
  for (const auto& dir : {f.root.path(), f.root.path() + "/berth"}) {
    std::string sc = get(dir + "/cgroup.subtree_control");
    for (const char* c : {"+cpu", "+io", "+memory", "+pids", "+hugetlb", "+cpuset"})
      EXPECT_NE(sc.find(c), std::string::npos) << dir << ": " << sc;
  }
  EXPECT_FALSE(fs::exists(leaf + "/cgroup.subtree_control"));

  oci::Resources r = full_resources();
  r.unified["memory.high"] = "300000000";
  ASSERT_TRUE(m->apply(r)) << m->apply(r).error().message;
  EXPECT_EQ(get(leaf + "/memory.max"), "268435456");
  EXPECT_EQ(get(leaf + "/memory.swap.max"), "268435456");
  EXPECT_EQ(get(leaf + "/memory.high"), "300000000");
  EXPECT_EQ(get(leaf + "/cpu.max"), "50000 100000");
  EXPECT_EQ(get(leaf + "/cpu.weight"), "39");
  EXPECT_EQ(get(leaf + "/pids.max"), "100");
  EXPECT_EQ(get(leaf + "/cpuset.cpus"), "0-1");
  EXPECT_EQ(get(leaf + "/hugetlb.2MB.max"), "4194304");
  // Optional files are only written where the kernel (here: the test) made them.
  EXPECT_FALSE(fs::exists(leaf + "/hugetlb.2MB.rsvd.max"));
  put(leaf + "/hugetlb.2MB.rsvd.max", "max");
  ASSERT_TRUE(m->apply(r));
  EXPECT_EQ(get(leaf + "/hugetlb.2MB.rsvd.max"), "4194304");
  EXPECT_EQ(get(leaf + "/io.max"), "8:16 riops=max");  // last line written

  // Unknown controller in the unified map: error, nothing half-checked.
  oci::Resources bad;
  bad.unified["rdma.max"] = "x";
  auto e = m->apply(bad);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("rdma"), std::string::npos);
  // Device rules on v2 are validated (the BPF program needs a real cgroup2 dir).
  oci::Resources dev;
  dev.devices.push_back({true, "q", std::nullopt, std::nullopt, "rwm"});
  EXPECT_FALSE(m->apply(dev));

  ASSERT_TRUE(m->add_process(4242));
  EXPECT_EQ(get(leaf + "/cgroup.procs"), "4242");

  ASSERT_TRUE(m->destroy()) << m->destroy().error().message;
  EXPECT_FALSE(fs::exists(leaf));
  EXPECT_TRUE(fs::exists(f.root.path() + "/berth"));  // shared parent stays
  EXPECT_FALSE(m->exists());
  EXPECT_TRUE(m->destroy());  // idempotent
}

TEST(CgroupManagerFake, V2PidsFreezeAndSignal) {
  FakeV2 f;
  auto m = CgroupManager::create(f.layout, "/berth/c2", fake());
  ASSERT_TRUE(m);
  const std::string leaf = f.root.path() + "/berth/c2";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  put(leaf + "/cgroup.procs", std::to_string(child) + "\n");
  put(leaf + "/sub/cgroup.procs", "777777\n" + std::to_string(child) + "\n");
  auto pids = m->pids();
  ASSERT_TRUE(pids) << pids.error().message;
  EXPECT_EQ(*pids, (std::vector<pid_t>{std::min<pid_t>(child, 777777), std::max<pid_t>(child, 777777)}));

  // Freeze waits for cgroup.events to say frozen; a fake tree that never says so times out.
  put(leaf + "/cgroup.events", "populated 1\nfrozen 0\n");
  auto timeout = m->freeze();
  ASSERT_FALSE(timeout);
  EXPECT_EQ(timeout.error().code, EBUSY);
  EXPECT_EQ(get(leaf + "/cgroup.freeze"), "0");  // rolled back
  put(leaf + "/cgroup.events", "populated 1\nfrozen 1\n");
  ASSERT_TRUE(m->freeze());
  EXPECT_EQ(get(leaf + "/cgroup.freeze"), "1");
  EXPECT_TRUE(m->frozen().value());
  ASSERT_TRUE(m->thaw());
  EXPECT_EQ(get(leaf + "/cgroup.freeze"), "0");

  // SIGTERM goes to every listed pid (777777 does not exist: ESRCH is fine).
  put(leaf + "/sub/cgroup.procs", std::to_string(child) + "\n");
  ASSERT_TRUE(m->signal_all(SIGTERM));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);

  // Pure v2 with cgroup.kill uses it for SIGKILL.
  put(leaf + "/cgroup.kill", "");
  ASSERT_TRUE(m->signal_all(SIGKILL));
  EXPECT_EQ(get(leaf + "/cgroup.kill"), "1");

  ASSERT_TRUE(m->destroy());
  EXPECT_FALSE(fs::exists(leaf));
}

struct FakeV1 {
  TempDir root;
  Layout layout;
  std::string m(const std::string& name) const { return root.path() + "/" + name; }
  FakeV1() {
    for (const char* dir : {"memory", "cpu,cpuacct", "cpuset", "freezer", "pids", "devices", "systemd"})
      fs::create_directories(m(dir));
    put(m("cpuset") + "/cpuset.cpus", "0-3\n");
    put(m("cpuset") + "/cpuset.mems", "0\n");
    layout.mode = Mode::v1;
    layout.v1_mounts = {{"memory", m("memory")},   {"cpu", m("cpu,cpuacct")},  {"cpuacct", m("cpu,cpuacct")},
                        {"cpuset", m("cpuset")},   {"freezer", m("freezer")},  {"pids", m("pids")},
                        {"devices", m("devices")}, {"name=systemd", m("systemd")}};
  }
};

TEST(CgroupManagerFake, V1CreateCopiesCpusetAndWritesEveryHierarchy) {
  FakeV1 f;
  auto m = CgroupManager::create(f.layout, "/berth/c1", fake());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->dirs().size(), 7u);  // cpu,cpuacct counted once
  EXPECT_EQ(m->dir("cpuacct"), f.m("cpu,cpuacct") + "/berth/c1");
  EXPECT_EQ(m->dir("cpu"), m->dir("cpuacct"));
  EXPECT_EQ(m->dir("name=systemd"), f.m("systemd") + "/berth/c1");
  EXPECT_EQ(m->dir("hugetlb"), "");
  EXPECT_EQ(m->dir("unified"), "");
  for (const auto& d : m->dirs()) EXPECT_TRUE(fs::is_directory(d)) << d;
  // Every new level inherits the parent's cpus/mems.
  EXPECT_EQ(get(f.m("cpuset") + "/berth/cpuset.cpus"), "0-3");
  EXPECT_EQ(get(f.m("cpuset") + "/berth/c1/cpuset.cpus"), "0-3");
  EXPECT_EQ(get(f.m("cpuset") + "/berth/c1/cpuset.mems"), "0");

  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 1 << 20;
  r.memory->swap = 2 << 20;
  r.cpu = oci::CpuResources{};
  r.cpu->shares = 512;
  r.cpu->cpus = "1";
  r.pids_limit = 10;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  r.devices.push_back({true, "c", 1, 3, "rwm"});
  ASSERT_TRUE(m->apply(r)) << m->apply(r).error().message;
  const std::string c1 = "/berth/c1";
  EXPECT_EQ(get(f.m("memory") + c1 + "/memory.limit_in_bytes"), "1048576");
  EXPECT_EQ(get(f.m("memory") + c1 + "/memory.memsw.limit_in_bytes"), "2097152");
  EXPECT_EQ(get(f.m("cpu,cpuacct") + c1 + "/cpu.shares"), "512");
  EXPECT_EQ(get(f.m("cpuset") + c1 + "/cpuset.cpus"), "1");
  EXPECT_EQ(get(f.m("pids") + c1 + "/pids.max"), "10");
  EXPECT_EQ(get(f.m("devices") + c1 + "/devices.deny"), "a");
  EXPECT_EQ(get(f.m("devices") + c1 + "/devices.allow"), "c 1:3 rwm");
  EXPECT_FALSE(fs::exists(f.m("memory") + c1 + "/memory.kmem.limit_in_bytes"));

  // Controllers without a mount are reported, not silently dropped.
  oci::Resources huge;
  huge.hugepage_limits.push_back({"2MB", 0});
  auto e = m->apply(huge);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("controller hugetlb not available"), std::string::npos);

  ASSERT_TRUE(m->add_process(99));
  for (const auto& d : m->dirs()) EXPECT_EQ(get(d + "/cgroup.procs"), "99") << d;

  ASSERT_TRUE(m->freeze());
  EXPECT_EQ(get(f.m("freezer") + c1 + "/freezer.state"), "FROZEN");
  EXPECT_TRUE(m->frozen().value());
  ASSERT_TRUE(m->thaw());
  EXPECT_FALSE(m->frozen().value());

  // open() on the same path sees the same cgroup.
  auto again = CgroupManager::open(f.layout, "/berth/c1", fake());
  EXPECT_TRUE(again.exists());
  ASSERT_TRUE(again.destroy());
  for (const auto& d : m->dirs()) EXPECT_FALSE(fs::exists(d)) << d;
  EXPECT_TRUE(fs::is_directory(f.m("memory") + "/berth"));
}

TEST(CgroupManagerFake, CreateFailureRemovesWhatItMade) {
  FakeV1 f;
  fs::remove(f.m("cpuset") + "/cpuset.mems");  // parent has nothing to copy
  auto m = CgroupManager::create(f.layout, "/berth/x/c1", fake());
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("cpuset.mems"), std::string::npos) << m.error().message;
  for (const char* dir : {"memory", "cpu,cpuacct", "cpuset", "freezer", "pids", "devices", "systemd"})
    EXPECT_FALSE(fs::exists(f.m(dir) + "/berth")) << dir;
}

TEST(CgroupManagerFake, CreateRejectsUnresolvedPaths) {
  FakeV1 f;
  for (const char* bad : {"", "relative", "/", "/a/../b"}) EXPECT_FALSE(CgroupManager::create(f.layout, bad, fake())) << bad;
}

TEST(CgroupManagerFake, HybridWritesHugetlbToUnified) {
  FakeV1 f;
  TempDir unified;
  put(unified.path() + "/cgroup.controllers", "hugetlb");
  put(unified.path() + "/cgroup.subtree_control", "");
  f.layout.mode = Mode::hybrid;
  f.layout.unified_mount = unified.path();
  f.layout.unified_controllers = {"hugetlb"};
  auto m = CgroupManager::create(f.layout, "/berth/h1", fake());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->dirs().size(), 8u);
  EXPECT_EQ(m->dir("hugetlb"), unified.path() + "/berth/h1");
  // Hybrid: the host's unified hierarchy is left alone until a limit needs it.
  EXPECT_EQ(get(unified.path() + "/cgroup.subtree_control"), "");
  oci::Resources r;
  r.hugepage_limits.push_back({"2MB", 2097152});
  r.pids_limit = 3;
  ASSERT_TRUE(m->apply(r)) << m->apply(r).error().message;
  EXPECT_EQ(get(unified.path() + "/cgroup.subtree_control"), "+hugetlb");
  EXPECT_EQ(get(unified.path() + "/berth/h1/hugetlb.2MB.max"), "2097152");
  EXPECT_EQ(get(f.m("pids") + "/berth/h1/pids.max"), "3");
  ASSERT_TRUE(m->destroy());
  EXPECT_FALSE(fs::exists(unified.path() + "/berth/h1"));
}

// ---- device BPF program --------------------------------------------------------

// A tiny interpreter for the instructions the generator emits, so the tests check
// what the program decides, not just its shape.
int run(const std::vector<bpf_insn>& prog, uint32_t type, uint32_t access, uint32_t major, uint32_t minor) {
  uint32_t ctx[3] = {(access << 16) | type, major, minor};
  uint64_t reg[11] = {};
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const bpf_insn& i = prog[pc];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: reg[i.dst_reg] = ctx[i.off / 4]; break;
      case BPF_ALU | BPF_AND | BPF_K: reg[i.dst_reg] = static_cast<uint32_t>(reg[i.dst_reg] & i.imm); break;
      case BPF_ALU | BPF_RSH | BPF_K: reg[i.dst_reg] = static_cast<uint32_t>(reg[i.dst_reg]) >> i.imm; break;
      case BPF_ALU | BPF_MOV | BPF_X: reg[i.dst_reg] = static_cast<uint32_t>(reg[i.src_reg]); break;
      case BPF_ALU | BPF_MOV | BPF_K: reg[i.dst_reg] = static_cast<uint32_t>(i.imm); break;
      case BPF_JMP | BPF_JNE | BPF_K: if (reg[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off; break;
      case BPF_JMP | BPF_JNE | BPF_X: if (reg[i.dst_reg] != reg[i.src_reg]) pc += i.off; break;
      case BPF_JMP | BPF_EXIT: return static_cast<int>(reg[0]);
      default: ADD_FAILURE() << "unexpected opcode " << int(i.code); return -1;
    }
  }
  ADD_FAILURE() << "fell off the end";
  return -1;
}

constexpr uint32_t kChar = BPF_DEVCG_DEV_CHAR, kBlock = BPF_DEVCG_DEV_BLOCK;
constexpr uint32_t kR = BPF_DEVCG_ACC_READ, kW = BPF_DEVCG_ACC_WRITE, kM = BPF_DEVCG_ACC_MKNOD;

TEST(DeviceFilter, AllowAll) {
  auto p = device_filter_program({{true, "a", std::nullopt, std::nullopt, "rwm"}});
  ASSERT_TRUE(p);
  ASSERT_EQ(p->size(), 8u);  // 6 prologue + mov + exit, no default block
  EXPECT_EQ((*p)[6].code, BPF_ALU | BPF_MOV | BPF_K);
  EXPECT_EQ((*p)[6].imm, 1);
  EXPECT_EQ((*p)[7].code, BPF_JMP | BPF_EXIT);
  EXPECT_EQ(run(*p, kChar, kR | kW, 1, 3), 1);
  EXPECT_EQ(run(*p, kBlock, kM, 8, 0), 1);
}

TEST(DeviceFilter, DenyAllAndEmpty) {
  for (const auto& rules : {std::vector<oci::DeviceRule>{{false, "a", std::nullopt, std::nullopt, "rwm"}},
                            std::vector<oci::DeviceRule>{}}) {
    auto p = device_filter_program(rules);
    ASSERT_TRUE(p);
    ASSERT_EQ(p->size(), 8u);
    EXPECT_EQ((*p)[6].imm, 0);
    EXPECT_EQ(run(*p, kChar, kR, 1, 3), 0);
  }
}

TEST(DeviceFilter, SpecificRulesLastMatchWins) {
  std::vector<oci::DeviceRule> rules = {
      {false, "a", std::nullopt, std::nullopt, "rwm"},
      {true, "c", 1, 3, "rwm"},             // /dev/null
      {true, "c", 136, std::nullopt, "rw"},  // any pty, no mknod
      {false, "c", 136, 5, "w"},             // but pty 5 is read-only
  };
  auto p = device_filter_program(rules);
  ASSERT_TRUE(p) << p.error().message;
  // Reverse order: c 136:5 w (type+3 access+major+minor+2 = 8), c 136:* rw (type+3+major+2 = 7),
  // c 1:3 rwm (type+major+minor+2 = 5), deny-all catch-all (2); no default after it.
  ASSERT_EQ(p->size(), 6u + 8u + 7u + 5u + 2u);
  EXPECT_EQ((*p)[6].code, BPF_JMP | BPF_JNE | BPF_K);
  EXPECT_EQ((*p)[6].imm, static_cast<int32_t>(kChar));
  EXPECT_EQ((*p)[6].off, 7);  // to the start of the next rule
  EXPECT_EQ(run(*p, kChar, kR | kW, 1, 3), 1);
  EXPECT_EQ(run(*p, kChar, kM, 1, 3), 1);
  EXPECT_EQ(run(*p, kBlock, kR, 1, 3), 0);   // type mismatch
  EXPECT_EQ(run(*p, kChar, kR, 1, 5), 0);    // minor mismatch
  EXPECT_EQ(run(*p, kChar, kR | kW, 136, 0), 1);
  EXPECT_EQ(run(*p, kChar, kM, 136, 0), 0);  // rule lacks m
  EXPECT_EQ(run(*p, kChar, kR, 136, 5), 1);  // deny-w rule does not cover a pure read
  EXPECT_EQ(run(*p, kChar, kW, 136, 5), 0);  // later deny wins
  EXPECT_EQ(run(*p, kBlock, kR, 8, 0), 0);

  // Without a catch-all the default is deny.
  auto q = device_filter_program({{true, "b", 8, std::nullopt, "r"}});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->size(), 6u + (1 + 3 + 1 + 2) + 2u);
  EXPECT_EQ(run(*q, kBlock, kR, 8, 1), 1);
  EXPECT_EQ(run(*q, kBlock, kW, 8, 1), 0);
  EXPECT_EQ(run(*q, kChar, kR, 8, 1), 0);

  // Allow-all after specific denies makes the denies irrelevant.
  auto all = device_filter_program({{false, "c", 1, 3, "rwm"}, {true, "", std::nullopt, std::nullopt, ""}});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 8u);
  EXPECT_EQ(run(*all, kChar, kR, 1, 3), 1);
}

TEST(DeviceFilter, RejectsBadRules) {
  EXPECT_FALSE(device_filter_program({{true, "z", std::nullopt, std::nullopt, "r"}}));
  EXPECT_FALSE(device_filter_program({{true, "c", 1, 3, "rx"}}));
  EXPECT_FALSE(device_filter_program({{true, "c", -5, 3, "r"}}));
  EXPECT_FALSE(device_filter_program({{true, "c", 1ll << 40, 3, "r"}}));
}

}  // namespace
}  // namespace berth::cgroups

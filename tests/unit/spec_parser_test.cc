// Unit tests for runtime/oci/spec_parser: every config.json section lands in the
// right field, type errors name their JSON path, validate_spec rejects what the
// runtime must not act on, and parse_process / parse_resources work alone.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/oci/spec.h"
#include "runtime/oci/spec_parser.h"

namespace berth::oci {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SpecBundleDir {
 public:
  SpecBundleDir() {
    char tmpl[] = "/tmp/berth-spec-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
    fs::create_directories(path_ + "/rootfs");
  }
  ~SpecBundleDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const char* kFullConfig = R"json({
  "ociVersion": "1.1.0",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [5, 6, 4294967295]},
    "args": ["/bin/sh", "-c", "echo hi"],
    "env": ["PATH=/bin", "TERM=xterm"],
    "cwd": "/work",
    "capabilities": {
      "bounding": ["CAP_KILL", "CAP_CHOWN"],
      "effective": ["CAP_KILL"],
      "inheritable": ["CAP_NET_RAW"],
      "permitted": ["CAP_KILL", "CAP_SETUID"],
      "ambient": ["CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "apparmorProfile": "berth-default",
    "oomScoreAdj": -500,
    "selinuxLabel": "system_u:system_r:container_t:s0"
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "box",
  "domainname": "example.org",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "nosuid"]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/pre", "args": ["pre", "a"], "env": ["X=1"], "timeout": 5}],
    "createRuntime": [{"path": "/usr/bin/cr"}],
    "createContainer": [{"path": "/usr/bin/cc", "timeout": 7}],
    "startContainer": [{"path": "/usr/bin/sc"}],
    "poststart": [{"path": "/usr/bin/ps1"}, {"path": "/usr/bin/ps2", "timeout": 30}],
    "poststop": [{"path": "/usr/bin/stop", "args": ["stop"]}]
  },
  "annotations": {"org.example.key": "value", "b": "2"},
  "linux": {
    "namespaces": [
      {"type": "pid"},
      {"type": "network", "path": "/var/run/netns/x"},
      {"type": "mount"},
      {"type": "ipc"},
      {"type": "uts"},
      {"type": "user"},
      {"type": "cgroup"},
      {"type": "time"}
    ],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1000}, {"containerID": 1000, "hostID": 5, "size": 1}],
    "timeOffsets": {"monotonic": {"secs": -3600, "nanosecs": 500}, "boottime": {"secs": 86400, "nanosecs": 0}},
    "devices": [
      {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
      {"type": "b", "path": "/dev/sdz", "major": 8, "minor": 16}
    ],
    "cgroupsPath": "/berth/test",
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
      ],
      "memory": {"limit": 536870912, "reservation": 268435456, "swap": 1073741824, "kernel": -1,
                 "kernelTCP": 1048576, "swappiness": 60, "disableOOMKiller": true, "useHierarchy": false,
                 "checkBeforeUpdate": true},
      "cpu": {"shares": 512, "quota": 50000, "burst": 10000, "period": 100000, "realtimeRuntime": 950,
              "realtimePeriod": 1000, "cpus": "0-3", "mems": "0", "idle": 1},
      "pids": {"limit": 128},
      "blockIO": {
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 700}, {"major": 8, "minor": 16}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 1, "rate": 2097152}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 2, "rate": 300}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 3, "rate": 400}]
      },
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}, {"name": "lo", "priority": 1}]},
      "unified": {"memory.high": "400000000", "io.weight": "default 100"}
    },
    "rootfsPropagation": "rslave",
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      "flags": ["SECCOMP_FILTER_FLAG_LOG"],
      "listenerPath": "/run/seccomp.sock",
      "listenerMetadata": "meta",
      "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 255, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"}]}
      ]
    },
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.msgmax": "65536"},
    "maskedPaths": ["/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys", "/proc/bus"],
    "mountLabel": "system_u:object_r:container_file_t:s0"
  }
})json";

Spec parse_full() {
  auto spec = parse_spec(kFullConfig);
  EXPECT_TRUE(spec.has_value()) << (spec ? "" : spec.error().message);
  return spec ? *spec : Spec{};
}

// A minimal config that validate_spec accepts; tests mutate one thing at a time.
json minimal_config() {
  return json::parse(R"json({
    "ociVersion": "1.0.2",
    "process": {"args": ["sh"], "cwd": "/"},
    "root": {"path": "rootfs"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
  })json");
}

Spec parse_json(const json& j) {
  auto spec = parse_spec(j.dump());
  EXPECT_TRUE(spec.has_value()) << (spec ? "" : spec.error().message);
  return spec ? *spec : Spec{};
}

// Validates `j` against a fresh bundle with a rootfs dir; returns the error message
// ("" when valid).
std::string validate_error(const json& j) {
  SpecBundleDir bundle;
  auto spec = parse_spec(j.dump());
  if (!spec) return "PARSE: " + spec.error().message;
  auto r = validate_spec(*spec, bundle.path());
  return r ? "" : r.error().message;
}

std::string parse_error(const std::string& text) {
  auto spec = parse_spec(text);
  return spec ? "" : spec.error().message;
}

// ---- Full parse ---------------------------------------------------------------------

TEST(SpecParserFull, TopLevelAndRoot) {
  Spec s = parse_full();
  EXPECT_EQ(s.oci_version, "1.1.0");
  EXPECT_EQ(s.root.path, "rootfs");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "box");
  EXPECT_EQ(s.domainname, "example.org");
  EXPECT_EQ(s.annotations.size(), 2u);
  EXPECT_EQ(s.annotations.at("org.example.key"), "value");
  EXPECT_EQ(s.annotations.at("b"), "2");
}

TEST(SpecParserFull, Process) {
  Spec s = parse_full();
  ASSERT_TRUE(s.process);
  const Process& p = *s.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size);
  EXPECT_EQ(p.console_size->height, 25u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 100u);
  ASSERT_TRUE(p.user.umask);
  EXPECT_EQ(*p.user.umask, 18u);
  EXPECT_THAT(p.user.additional_gids, ElementsAre(5u, 6u, 4294967295u));
  EXPECT_THAT(p.args, ElementsAre("/bin/sh", "-c", "echo hi"));
  EXPECT_THAT(p.env, ElementsAre("PATH=/bin", "TERM=xterm"));
  EXPECT_EQ(p.cwd, "/work");
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.apparmor_profile, "berth-default");
  ASSERT_TRUE(p.oom_score_adj);
  EXPECT_EQ(*p.oom_score_adj, -500);
  EXPECT_EQ(p.selinux_label, "system_u:system_r:container_t:s0");
}

TEST(SpecParserFull, CapabilitiesAndRlimits) {
  Spec s = parse_full();
  ASSERT_TRUE(s.process && s.process->capabilities);
  const Capabilities& c = *s.process->capabilities;
  EXPECT_THAT(c.bounding, ElementsAre("CAP_KILL", "CAP_CHOWN"));
  EXPECT_THAT(c.effective, ElementsAre("CAP_KILL"));
  EXPECT_THAT(c.inheritable, ElementsAre("CAP_NET_RAW"));
  EXPECT_THAT(c.permitted, ElementsAre("CAP_KILL", "CAP_SETUID"));
  EXPECT_THAT(c.ambient, ElementsAre("CAP_NET_BIND_SERVICE"));
  ASSERT_EQ(s.process->rlimits.size(), 2u);
  EXPECT_EQ(s.process->rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(s.process->rlimits[0].hard, 4096u);
  EXPECT_EQ(s.process->rlimits[0].soft, 1024u);
  EXPECT_EQ(s.process->rlimits[1].type, "RLIMIT_CORE");
  EXPECT_EQ(s.process->rlimits[1].hard, UINT64_MAX);  // RLIM_INFINITY as written by runc
  EXPECT_EQ(s.process->rlimits[1].soft, 0u);
}

TEST(SpecParserFull, Mounts) {
  Spec s = parse_full();
  ASSERT_EQ(s.mounts.size(), 2u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  EXPECT_EQ(s.mounts[0].type, "proc");
  EXPECT_EQ(s.mounts[0].source, "proc");
  EXPECT_TRUE(s.mounts[0].options.empty());
  EXPECT_EQ(s.mounts[1].destination, "/data");
  EXPECT_EQ(s.mounts[1].type, "bind");
  EXPECT_EQ(s.mounts[1].source, "/srv/data");
  EXPECT_THAT(s.mounts[1].options, ElementsAre("rbind", "ro", "nosuid"));
}

TEST(SpecParserFull, HooksWithTimeouts) {
  Spec s = parse_full();
  ASSERT_EQ(s.hooks.prestart.size(), 1u);
  EXPECT_EQ(s.hooks.prestart[0].path, "/usr/bin/pre");
  EXPECT_THAT(s.hooks.prestart[0].args, ElementsAre("pre", "a"));
  EXPECT_THAT(s.hooks.prestart[0].env, ElementsAre("X=1"));
  ASSERT_TRUE(s.hooks.prestart[0].timeout);
  EXPECT_EQ(*s.hooks.prestart[0].timeout, 5);
  ASSERT_EQ(s.hooks.create_runtime.size(), 1u);
  EXPECT_EQ(s.hooks.create_runtime[0].path, "/usr/bin/cr");
  EXPECT_FALSE(s.hooks.create_runtime[0].timeout);
  ASSERT_EQ(s.hooks.create_container.size(), 1u);
  EXPECT_EQ(s.hooks.create_container[0].path, "/usr/bin/cc");
  EXPECT_EQ(s.hooks.create_container[0].timeout, 7);
  ASSERT_EQ(s.hooks.start_container.size(), 1u);
  EXPECT_EQ(s.hooks.start_container[0].path, "/usr/bin/sc");
  ASSERT_EQ(s.hooks.poststart.size(), 2u);
  EXPECT_EQ(s.hooks.poststart[0].path, "/usr/bin/ps1");
  EXPECT_EQ(s.hooks.poststart[1].path, "/usr/bin/ps2");
  EXPECT_EQ(s.hooks.poststart[1].timeout, 30);
  ASSERT_EQ(s.hooks.poststop.size(), 1u);
  EXPECT_EQ(s.hooks.poststop[0].path, "/usr/bin/stop");
  EXPECT_THAT(s.hooks.poststop[0].args, ElementsAre("stop"));
}

TEST(SpecParserFull, NamespacesMappingsTimeOffsets) {
  Spec s = parse_full();
  ASSERT_TRUE(s.linux);
  const Linux& l = *s.linux;
  ASSERT_EQ(l.namespaces.size(), 8u);
  EXPECT_EQ(l.namespaces[0].type, "pid");
  EXPECT_EQ(l.namespaces[0].path, "");
  EXPECT_EQ(l.namespaces[1].type, "network");
  EXPECT_EQ(l.namespaces[1].path, "/var/run/netns/x");
  EXPECT_EQ(l.namespaces[7].type, "time");
  ASSERT_NE(s.find_namespace("network"), nullptr);
  EXPECT_EQ(s.find_namespace("network")->path, "/var/run/netns/x");
  EXPECT_NE(s.find_namespace("cgroup"), nullptr);

  ASSERT_EQ(l.uid_mappings.size(), 1u);
  EXPECT_EQ(l.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(l.uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(l.uid_mappings[0].size, 65536u);
  ASSERT_EQ(l.gid_mappings.size(), 2u);
  EXPECT_EQ(l.gid_mappings[0].host_id, 200000u);
  EXPECT_EQ(l.gid_mappings[0].size, 1000u);
  EXPECT_EQ(l.gid_mappings[1].container_id, 1000u);
  EXPECT_EQ(l.gid_mappings[1].host_id, 5u);
  EXPECT_EQ(l.gid_mappings[1].size, 1u);

  ASSERT_EQ(l.time_offsets.size(), 2u);
  EXPECT_EQ(l.time_offsets.at("monotonic").secs, -3600);
  EXPECT_EQ(l.time_offsets.at("monotonic").nanosecs, 500u);
  EXPECT_EQ(l.time_offsets.at("boottime").secs, 86400);
  EXPECT_EQ(l.time_offsets.at("boottime").nanosecs, 0u);
}

TEST(SpecParserFull, DevicesCgroupsPathAndMisc) {
  Spec s = parse_full();
  ASSERT_TRUE(s.linux);
  const Linux& l = *s.linux;
  ASSERT_EQ(l.devices.size(), 2u);
  EXPECT_EQ(l.devices[0].type, "c");
  EXPECT_EQ(l.devices[0].path, "/dev/fuse");
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(l.devices[0].minor, 229);
  EXPECT_EQ(l.devices[0].file_mode, 438u);
  EXPECT_EQ(l.devices[0].uid, 0u);
  EXPECT_EQ(l.devices[0].gid, 0u);
  EXPECT_EQ(l.devices[1].type, "b");
  EXPECT_EQ(l.devices[1].major, 8);
  EXPECT_EQ(l.devices[1].minor, 16);
  EXPECT_FALSE(l.devices[1].file_mode);
  EXPECT_FALSE(l.devices[1].uid);
  EXPECT_EQ(l.cgroups_path, "/berth/test");
  EXPECT_EQ(l.rootfs_propagation, "rslave");
  EXPECT_EQ(l.sysctl.size(), 2u);
  EXPECT_EQ(l.sysctl.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(l.sysctl.at("kernel.msgmax"), "65536");
  EXPECT_THAT(l.masked_paths, ElementsAre("/proc/kcore", "/sys/firmware"));
  EXPECT_THAT(l.readonly_paths, ElementsAre("/proc/sys", "/proc/bus"));
  EXPECT_EQ(l.mount_label, "system_u:object_r:container_file_t:s0");
}

TEST(SpecParserFull, ResourcesMemoryCpuPids) {
  Spec s = parse_full();
  ASSERT_TRUE(s.linux && s.linux->resources);
  const Resources& r = *s.linux->resources;
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[0].type, "");
  EXPECT_FALSE(r.devices[0].major);
  EXPECT_FALSE(r.devices[0].minor);
  EXPECT_EQ(r.devices[0].access, "rwm");
  EXPECT_TRUE(r.devices[1].allow);
  EXPECT_EQ(r.devices[1].type, "c");
  EXPECT_EQ(r.devices[1].major, 10);
  EXPECT_EQ(r.devices[1].minor, 229);
  EXPECT_EQ(r.devices[1].access, "rw");

  ASSERT_TRUE(r.memory);
  EXPECT_EQ(r.memory->limit, 536870912);
  EXPECT_EQ(r.memory->reservation, 268435456);
  EXPECT_EQ(r.memory->swap, 1073741824);
  EXPECT_EQ(r.memory->kernel, -1);
  EXPECT_EQ(r.memory->kernel_tcp, 1048576);
  EXPECT_EQ(r.memory->swappiness, 60u);
  EXPECT_EQ(r.memory->disable_oom_killer, true);
  EXPECT_EQ(r.memory->use_hierarchy, false);
  EXPECT_EQ(r.memory->check_before_update, true);

  ASSERT_TRUE(r.cpu);
  EXPECT_EQ(r.cpu->shares, 512u);
  EXPECT_EQ(r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->burst, 10000u);
  EXPECT_EQ(r.cpu->period, 100000u);
  EXPECT_EQ(r.cpu->realtime_runtime, 950);
  EXPECT_EQ(r.cpu->realtime_period, 1000u);
  EXPECT_EQ(r.cpu->cpus, "0-3");
  EXPECT_EQ(r.cpu->mems, "0");
  EXPECT_EQ(r.cpu->idle, 1);

  EXPECT_EQ(r.pids_limit, 128);
}

TEST(SpecParserFull, ResourcesBlockIoHugepagesNetworkUnified) {
  Spec s = parse_full();
  ASSERT_TRUE(s.linux && s.linux->resources);
  const Resources& r = *s.linux->resources;
  ASSERT_TRUE(r.block_io);
  const BlockIoResources& io = *r.block_io;
  EXPECT_EQ(io.weight, 500);
  EXPECT_EQ(io.leaf_weight, 300);
  ASSERT_EQ(io.weight_device.size(), 2u);
  EXPECT_EQ(io.weight_device[0].major, 8);
  EXPECT_EQ(io.weight_device[0].minor, 0);
  EXPECT_EQ(io.weight_device[0].weight, 600);
  EXPECT_EQ(io.weight_device[0].leaf_weight, 700);
  EXPECT_EQ(io.weight_device[1].minor, 16);
  EXPECT_FALSE(io.weight_device[1].weight);
  EXPECT_FALSE(io.weight_device[1].leaf_weight);
  ASSERT_EQ(io.throttle_read_bps.size(), 1u);
  EXPECT_EQ(io.throttle_read_bps[0].major, 8);
  EXPECT_EQ(io.throttle_read_bps[0].minor, 0);
  EXPECT_EQ(io.throttle_read_bps[0].rate, 1048576u);
  ASSERT_EQ(io.throttle_write_bps.size(), 1u);
  EXPECT_EQ(io.throttle_write_bps[0].minor, 1);
  EXPECT_EQ(io.throttle_write_bps[0].rate, 2097152u);
  ASSERT_EQ(io.throttle_read_iops.size(), 1u);
  EXPECT_EQ(io.throttle_read_iops[0].minor, 2);
  EXPECT_EQ(io.throttle_read_iops[0].rate, 300u);
  ASSERT_EQ(io.throttle_write_iops.size(), 1u);
  EXPECT_EQ(io.throttle_write_iops[0].minor, 3);
  EXPECT_EQ(io.throttle_write_iops[0].rate, 400u);

  ASSERT_EQ(r.hugepage_limits.size(), 2u);
  EXPECT_EQ(r.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(r.hugepage_limits[0].limit, 209715200u);
  EXPECT_EQ(r.hugepage_limits[1].page_size, "1GB");
  EXPECT_EQ(r.hugepage_limits[1].limit, 0u);

  ASSERT_TRUE(r.network);
  EXPECT_EQ(r.network->class_id, 1048577u);
  ASSERT_EQ(r.network->priorities.size(), 2u);
  EXPECT_EQ(r.network->priorities[0].first, "eth0");
  EXPECT_EQ(r.network->priorities[0].second, 500u);
  EXPECT_EQ(r.network->priorities[1].first, "lo");
  EXPECT_EQ(r.network->priorities[1].second, 1u);

  EXPECT_EQ(r.unified.size(), 2u);
  EXPECT_EQ(r.unified.at("memory.high"), "400000000");
  EXPECT_EQ(r.unified.at("io.weight"), "default 100");
}

TEST(SpecParserFull, SeccompWithArgs) {
  Spec s = parse_full();
  ASSERT_TRUE(s.linux && s.linux->seccomp);
  const Seccomp& sc = *s.linux->seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc.default_errno_ret, 1u);
  EXPECT_THAT(sc.architectures, ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"));
  EXPECT_THAT(sc.flags, ElementsAre("SECCOMP_FILTER_FLAG_LOG"));
  EXPECT_EQ(sc.listener_path, "/run/seccomp.sock");
  EXPECT_EQ(sc.listener_metadata, "meta");
  ASSERT_EQ(sc.syscalls.size(), 2u);
  EXPECT_THAT(sc.syscalls[0].names, ElementsAre("read", "write"));
  EXPECT_EQ(sc.syscalls[0].action, "SCMP_ACT_ALLOW");
  EXPECT_FALSE(sc.syscalls[0].errno_ret);
  EXPECT_TRUE(sc.syscalls[0].args.empty());
  EXPECT_THAT(sc.syscalls[1].names, ElementsAre("personality"));
  EXPECT_EQ(sc.syscalls[1].errno_ret, 38u);
  ASSERT_EQ(sc.syscalls[1].args.size(), 2u);
  EXPECT_EQ(sc.syscalls[1].args[0].index, 0u);
  EXPECT_EQ(sc.syscalls[1].args[0].value, 8u);
  EXPECT_EQ(sc.syscalls[1].args[0].op, "SCMP_CMP_EQ");
  EXPECT_EQ(sc.syscalls[1].args[1].index, 1u);
  EXPECT_EQ(sc.syscalls[1].args[1].value, 255u);
  EXPECT_EQ(sc.syscalls[1].args[1].value_two, 4u);
  EXPECT_EQ(sc.syscalls[1].args[1].op, "SCMP_CMP_MASKED_EQ");
}

TEST(SpecParserFull, FullConfigValidates) {
  SpecBundleDir bundle;
  Spec s = parse_full();
  auto r = validate_spec(s, bundle.path());
  EXPECT_TRUE(r.has_value()) << r.error().message;
}

TEST(SpecParserFull, DefaultsWhenSectionsAreAbsent) {
  auto s = parse_spec(R"({"ociVersion": "1.0.0", "root": {"path": "r"}})");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_FALSE(s->process);
  EXPECT_FALSE(s->linux);
  EXPECT_FALSE(s->root.readonly);
  EXPECT_TRUE(s->mounts.empty());
  EXPECT_TRUE(s->hooks.prestart.empty());
  EXPECT_EQ(s->find_namespace("pid"), nullptr);

  auto p = parse_spec(R"({"ociVersion": "1.0.0", "process": {"args": ["x"]}})");
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE(p->process);
  EXPECT_EQ(p->process->cwd, "/");
  EXPECT_FALSE(p->process->user.umask);
  EXPECT_FALSE(p->process->capabilities);
  EXPECT_FALSE(p->process->console_size);
  EXPECT_FALSE(p->process->oom_score_adj);
}

// ---- Type errors name their JSON path ------------------------------------------------

TEST(SpecParserTypeErrors, StringUidNamesProcessUserUid) {
  json j = minimal_config();
  j["process"]["user"] = {{"uid", "1000"}, {"gid", 0}};
  std::string err = parse_error(j.dump());
  EXPECT_THAT(err, HasSubstr("process.user.uid"));
  EXPECT_THAT(err, HasSubstr("integer"));
}

TEST(SpecParserTypeErrors, StringMemoryLimitNamesItsPath) {
  json j = minimal_config();
  j["linux"]["resources"] = {{"memory", {{"limit", "512m"}}}};
  EXPECT_THAT(parse_error(j.dump()), HasSubstr("linux.resources.memory.limit"));
}

TEST(SpecParserTypeErrors, ArrayElementPathsCarryIndexes) {
  json j = minimal_config();
  j["process"]["args"] = {"sh", 5};
  EXPECT_THAT(parse_error(j.dump()), HasSubstr("process.args[1]"));

  j = minimal_config();
  j["mounts"] = {{{"destination", "/a"}}, {{"destination", 7}}};
  EXPECT_THAT(parse_error(j.dump()), HasSubstr("mounts[1].destination"));

  j = minimal_config();
  j["linux"]["namespaces"] = {{{"type", "pid"}}, {{"type", "mount"}, {"path", 3}}};
  EXPECT_THAT(parse_error(j.dump()), HasSubstr("linux.namespaces[1].path"));
}

TEST(SpecParserTypeErrors, NestedPathsForOtherSections) {
  struct Case {
    const char* patch;  // merged into the minimal config
    const char* path;
  };
  const Case cases[] = {
      {R"({"process": {"args": ["sh"], "terminal": "yes"}})", "process.terminal"},
      {R"({"process": {"args": ["sh"], "user": {"uid": 0, "additionalGids": [1, "x"]}}})",
       "process.user.additionalGids[1]"},
      {R"({"process": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE", "hard": -1, "soft": 1}]}})",
       "process.rlimits[0].hard"},
      {R"({"process": {"args": ["sh"], "capabilities": {"bounding": "CAP_KILL"}}})", "process.capabilities.bounding"},
      {R"({"process": {"args": ["sh"], "consoleSize": {"height": "25"}}})", "process.consoleSize.height"},
      {R"({"root": {"path": 1}})", "root.path"},
      {R"({"hooks": {"prestart": [{"path": "/x", "timeout": "5"}]}})", "hooks.prestart[0].timeout"},
      {R"({"annotations": {"a": 1}})", "annotations.a"},
      {R"({"linux": {"uidMappings": [{"containerID": 0, "hostID": -1, "size": 1}]}})", "linux.uidMappings[0].hostID"},
      {R"({"linux": {"timeOffsets": {"monotonic": {"secs": "1"}}}})", "linux.timeOffsets.monotonic.secs"},
      {R"({"linux": {"devices": [{"type": "c", "path": "/dev/x", "major": "1"}]}})", "linux.devices[0].major"},
      {R"({"linux": {"resources": {"pids": {"limit": "10"}}}})", "linux.resources.pids.limit"},
      {R"({"linux": {"resources": {"cpu": {"shares": -2}}}})", "linux.resources.cpu.shares"},
      {R"({"linux": {"resources": {"blockIO": {"weight": 70000}}}})", "linux.resources.blockIO.weight"},
      {R"({"linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": "1"}]}}}})",
       "linux.resources.blockIO.throttleReadBpsDevice[0].rate"},
      {R"({"linux": {"resources": {"unified": {"memory.max": 5}}}})", "linux.resources.unified.memory.max"},
      {R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "args": [{"index": "0"}]}]}}})",
       "linux.seccomp.syscalls[0].args[0].index"},
      {R"({"linux": {"sysctl": {"net.x": 1}}})", "linux.sysctl.net.x"},
      {R"({"linux": {"maskedPaths": "/proc"}})", "linux.maskedPaths"},
  };
  for (auto& c : cases) {
    json j = minimal_config();
    j.merge_patch(json::parse(c.patch));
    EXPECT_THAT(parse_error(j.dump()), HasSubstr(c.path)) << c.patch;
  }
}

TEST(SpecParserTypeErrors, BadJsonAndNonObject) {
  auto e = parse_spec("{\"ociVersion\": ");
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, EINVAL);
  EXPECT_THAT(e.error().message, HasSubstr("not valid JSON"));
  EXPECT_FALSE(parse_spec("").has_value());
  EXPECT_FALSE(parse_spec("{\"a\": 1,}").has_value());
  auto arr = parse_spec("[1, 2]");
  ASSERT_FALSE(arr.has_value());
  EXPECT_EQ(arr.error().code, EINVAL);
  EXPECT_FALSE(parse_spec("\"string\"").has_value());
  // A section of the wrong JSON type names the section.
  EXPECT_THAT(parse_error(R"({"ociVersion": "1.0.0", "process": 5})"), HasSubstr("process"));
  EXPECT_THAT(parse_error(R"({"ociVersion": "1.0.0", "mounts": {}})"), HasSubstr("mounts"));
}

TEST(SpecParserTypeErrors, LoadSpecReadsBundleConfig) {
  SpecBundleDir bundle;
  auto missing = load_spec(bundle.path());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
  std::ofstream(bundle.path() + "/config.json") << minimal_config().dump();
  auto s = load_spec(bundle.path());
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->oci_version, "1.0.2");
  ASSERT_TRUE(s->process);
  EXPECT_THAT(s->process->args, ElementsAre("sh"));
}

// ---- validate_spec ---------------------------------------------------------------------

TEST(SpecValidate, MinimalConfigIsValid) { EXPECT_EQ(validate_error(minimal_config()), ""); }

TEST(SpecValidate, OciVersion) {
  json j = minimal_config();
  j.erase("ociVersion");
  EXPECT_THAT(validate_error(j), HasSubstr("ociVersion"));
  j["ociVersion"] = "2.0.0";
  EXPECT_THAT(validate_error(j), HasSubstr("2.0.0"));
  j["ociVersion"] = "2.0";
  EXPECT_THAT(validate_error(j), HasSubstr("not supported"));
  j["ociVersion"] = "1.2.0";
  EXPECT_EQ(validate_error(j), "");
}

TEST(SpecValidate, Root) {
  json j = minimal_config();
  j.erase("root");
  EXPECT_THAT(validate_error(j), HasSubstr("root.path"));

  SpecBundleDir bundle;
  j = minimal_config();
  j["root"]["path"] = "no-such-rootfs";
  auto spec = parse_json(j);
  auto r = validate_spec(spec, bundle.path());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_THAT(r.error().message, HasSubstr(bundle.path() + "/no-such-rootfs"));

  std::ofstream(bundle.path() + "/afile") << "x";
  j["root"]["path"] = "afile";
  r = validate_spec(parse_json(j), bundle.path());
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("not a directory"));

  // An absolute root.path is used as it is, whatever the bundle.
  j["root"]["path"] = bundle.path() + "/rootfs";
  EXPECT_TRUE(validate_spec(parse_json(j), "/nonexistent-bundle").has_value());
}

TEST(SpecValidate, Process) {
  json j = minimal_config();
  j.erase("process");
  EXPECT_THAT(validate_error(j), HasSubstr("process is required"));

  j = minimal_config();
  j["process"].erase("args");
  EXPECT_THAT(validate_error(j), HasSubstr("process.args"));
  j["process"]["args"] = json::array();
  EXPECT_THAT(validate_error(j), HasSubstr("process.args"));

  j = minimal_config();
  j["process"]["cwd"] = "work";
  EXPECT_THAT(validate_error(j), HasSubstr("process.cwd"));
  j["process"]["cwd"] = "";
  EXPECT_THAT(validate_error(j), HasSubstr("process.cwd"));
  j["process"]["cwd"] = "/work";
  EXPECT_EQ(validate_error(j), "");

  j = minimal_config();
  j["process"]["oomScoreAdj"] = 1001;
  EXPECT_THAT(validate_error(j), HasSubstr("oomScoreAdj"));
  j["process"]["oomScoreAdj"] = -1000;
  EXPECT_EQ(validate_error(j), "");

  j = minimal_config();
  j["process"]["rlimits"] = {{{"type", "NOFILE"}, {"hard", 1}, {"soft", 1}}};
  EXPECT_THAT(validate_error(j), HasSubstr("NOFILE"));
  j["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", 1}, {"soft", 2}}};
  EXPECT_THAT(validate_error(j), HasSubstr("soft limit exceeds hard"));
}

TEST(SpecValidate, Namespaces) {
  json j = minimal_config();
  j["linux"]["namespaces"].push_back({{"type", "net"}});
  EXPECT_THAT(validate_error(j), HasSubstr("unknown namespace type \"net\""));

  j = minimal_config();
  j["linux"]["namespaces"].push_back({{"type", "pid"}});
  EXPECT_THAT(validate_error(j), HasSubstr("\"pid\" listed twice"));

  j = minimal_config();
  j["linux"]["namespaces"].push_back({{"type", "network"}, {"path", "proc/1/ns/net"}});
  EXPECT_THAT(validate_error(j), HasSubstr("must be absolute"));

  j = minimal_config();
  for (auto t : {"network", "ipc", "uts", "cgroup"}) j["linux"]["namespaces"].push_back({{"type", t}});
  EXPECT_EQ(validate_error(j), "");
}

TEST(SpecValidate, UserNamespaceAndMappings) {
  json j = minimal_config();
  j["linux"]["namespaces"].push_back({{"type", "user"}});
  EXPECT_THAT(validate_error(j), HasSubstr("needs uidMappings and gidMappings"));
  j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
  EXPECT_THAT(validate_error(j), HasSubstr("needs uidMappings and gidMappings"));  // gid still missing
  j["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
  EXPECT_EQ(validate_error(j), "");
  j["linux"]["gidMappings"][0]["size"] = 0;
  EXPECT_THAT(validate_error(j), HasSubstr("size 0"));

  j = minimal_config();
  j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
  EXPECT_THAT(validate_error(j), HasSubstr("need a user namespace"));

  // Joining an existing user namespace needs no mappings.
  j = minimal_config();
  j["linux"]["namespaces"].push_back({{"type", "user"}, {"path", "/proc/1/ns/user"}});
  EXPECT_EQ(validate_error(j), "");
}

TEST(SpecValidate, MountDestinations) {
  for (auto dest : {"/../etc", "a/../../x", "/a/../../b", "../x"}) {
    json j = minimal_config();
    j["mounts"] = {{{"destination", dest}, {"type", "tmpfs"}, {"source", "tmpfs"}}};
    EXPECT_THAT(validate_error(j), HasSubstr("escapes")) << dest;
  }
  json j = minimal_config();
  j["mounts"] = {{{"destination", "data"}, {"type", "tmpfs"}, {"source", "tmpfs"}}};
  EXPECT_THAT(validate_error(j), HasSubstr("must be an absolute path"));
  j["mounts"][0]["destination"] = "";
  EXPECT_THAT(validate_error(j), HasSubstr("destination is required"));
  j["mounts"][0]["destination"] = "/a/../b";  // stays inside: accepted
  EXPECT_EQ(validate_error(j), "");
}

TEST(SpecValidate, MemoryAndPidsLimits) {
  json j = minimal_config();
  j["linux"]["resources"] = {{"memory", {{"limit", -2}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("linux.resources.memory.limit"));
  j["linux"]["resources"] = {{"memory", {{"limit", -1}}}};
  EXPECT_EQ(validate_error(j), "");

  j["linux"]["resources"] = {{"pids", {{"limit", -5}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("linux.resources.pids.limit"));
  j["linux"]["resources"] = {{"pids", {{"limit", -1}}}};
  EXPECT_EQ(validate_error(j), "");
  j["linux"]["resources"] = {{"pids", {{"limit", 0}}}};
  EXPECT_EQ(validate_error(j), "");

  j["linux"]["resources"] = {{"memory", {{"swappiness", 101}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("swappiness"));
  j["linux"]["resources"] = {{"memory", {{"swappiness", 100}}}};
  EXPECT_EQ(validate_error(j), "");

  j["linux"]["resources"] = {{"memory", {{"limit", 1000}, {"swap", 500}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("memory.swap"));
}

TEST(SpecValidate, CpuBlkioDevices) {
  json j = minimal_config();
  j["linux"]["resources"] = {{"cpu", {{"period", 999}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("cpu.period"));
  j["linux"]["resources"] = {{"cpu", {{"period", 1000001}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("cpu.period"));
  j["linux"]["resources"] = {{"cpu", {{"period", 1000}}}};
  EXPECT_EQ(validate_error(j), "");
  j["linux"]["resources"] = {{"cpu", {{"quota", 0}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("cpu.quota"));
  j["linux"]["resources"] = {{"cpu", {{"quota", -1}}}};
  EXPECT_EQ(validate_error(j), "");

  j["linux"]["resources"] = {{"blockIO", {{"weight", 5}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("blockIO.weight"));
  j["linux"]["resources"] = {{"blockIO", {{"weight", 10}}}};
  EXPECT_EQ(validate_error(j), "");
  j["linux"]["resources"] = {{"blockIO", {{"weightDevice", {{{"major", 8}, {"minor", 0}, {"weight", 1001}}}}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("weightDevice"));

  j["linux"]["resources"] = {{"devices", {{{"allow", true}, {"type", "x"}, {"access", "r"}}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("type must be a, b or c"));
  j["linux"]["resources"] = {{"devices", {{{"allow", true}, {"type", "c"}, {"access", "rwx"}}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("\"rwx\""));
  j["linux"]["resources"] = {{"devices", {{{"allow", true}, {"type", "b"}, {"access", "rwm"}}}}};
  EXPECT_EQ(validate_error(j), "");

  j["linux"]["resources"] = {{"unified", {{"../memory.max", "1"}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("unified"));
  j["linux"]["resources"] = {{"hugepageLimits", {{{"limit", 1}}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("pageSize"));
}

TEST(SpecValidate, TimeOffsetsNeedNewTimeNamespace) {
  json j = minimal_config();
  j["linux"]["timeOffsets"] = {{"monotonic", {{"secs", 10}, {"nanosecs", 0}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("timeOffsets"));
  j["linux"]["namespaces"].push_back({{"type", "time"}, {"path", "/proc/1/ns/time"}});
  EXPECT_THAT(validate_error(j), HasSubstr("timeOffsets"));  // joined, not new
  j["linux"]["namespaces"].back().erase("path");
  EXPECT_EQ(validate_error(j), "");
  j["linux"]["timeOffsets"] = {{"realtime", {{"secs", 10}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("unknown clock"));
  j["linux"]["timeOffsets"] = {{"boottime", {{"secs", 1}, {"nanosecs", 1000000000}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("nanosecs"));
}

TEST(SpecValidate, HostnameNeedsNewUtsNamespace) {
  json j = minimal_config();
  j["hostname"] = "box";
  EXPECT_THAT(validate_error(j), HasSubstr("hostname"));
  j["linux"]["namespaces"].push_back({{"type", "uts"}, {"path", "/proc/1/ns/uts"}});
  EXPECT_THAT(validate_error(j), HasSubstr("hostname"));
  j["linux"]["namespaces"].back().erase("path");
  EXPECT_EQ(validate_error(j), "");
}

// The launcher calls setdomainname() whenever domainname is set: without a new uts
// namespace that renames the host (runc rejects this config for the same reason).
TEST(SpecValidate, DomainnameNeedsNewUtsNamespace) {
  json j = minimal_config();
  j["domainname"] = "example.org";
  EXPECT_THAT(validate_error(j), HasSubstr("domainname"));
  j["linux"]["namespaces"].push_back({{"type", "uts"}, {"path", "/proc/1/ns/uts"}});
  EXPECT_THAT(validate_error(j), HasSubstr("domainname"));
  j["linux"]["namespaces"].back().erase("path");
  EXPECT_EQ(validate_error(j), "");
}

TEST(SpecValidate, RootfsPropagationDevicesMaskedPathsSysctl) {
  json j = minimal_config();
  j["linux"]["rootfsPropagation"] = "rslavish";
  EXPECT_THAT(validate_error(j), HasSubstr("rootfsPropagation"));
  for (auto v : {"shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"}) {
    j["linux"]["rootfsPropagation"] = v;
    EXPECT_EQ(validate_error(j), "") << v;
  }

  j = minimal_config();
  j["linux"]["maskedPaths"] = {"proc/kcore"};
  EXPECT_THAT(validate_error(j), HasSubstr("proc/kcore"));
  j["linux"]["maskedPaths"] = {"/proc/../../etc"};
  EXPECT_THAT(validate_error(j), HasSubstr("must be absolute and inside"));
  j = minimal_config();
  j["linux"]["readonlyPaths"] = {"sys"};
  EXPECT_THAT(validate_error(j), HasSubstr("\"sys\""));

  j = minimal_config();
  j["linux"]["devices"] = {{{"type", "x"}, {"path", "/dev/x"}}};
  EXPECT_THAT(validate_error(j), HasSubstr("linux.devices"));
  j["linux"]["devices"] = {{{"type", "c"}, {"path", "dev/x"}}};
  EXPECT_THAT(validate_error(j), HasSubstr("linux.devices"));
  j["linux"]["devices"] = {{{"type", "c"}, {"path", "/../dev/x"}}};
  EXPECT_THAT(validate_error(j), HasSubstr("linux.devices"));

  j = minimal_config();
  j["linux"]["sysctl"] = {{"../../proc/x", "1"}};
  EXPECT_THAT(validate_error(j), HasSubstr("linux.sysctl"));
}

TEST(SpecValidate, HookPathsAndTimeouts) {
  json j = minimal_config();
  j["hooks"] = {{"prestart", {{{"path", "bin/hook"}}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("hooks.prestart"));
  j["hooks"] = {{"poststop", {{{"path", "hook"}}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("hooks.poststop"));
  j["hooks"] = {{"createRuntime", {{{"path", "/bin/hook"}, {"timeout", 0}}}}};
  EXPECT_THAT(validate_error(j), HasSubstr("timeout"));
  j["hooks"] = {{"createRuntime", {{{"path", "/bin/hook"}, {"timeout", 1}}}}};
  EXPECT_EQ(validate_error(j), "");
}

// ---- parse_process / parse_resources alone ---------------------------------------------

TEST(SpecParseParts, ProcessAlone) {
  auto p = parse_process(R"({"args": ["ls", "-l"], "cwd": "/tmp", "env": ["A=b"],
                              "user": {"uid": 7, "gid": 8, "additionalGids": [9]}, "terminal": true})");
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_THAT(p->args, ElementsAre("ls", "-l"));
  EXPECT_EQ(p->cwd, "/tmp");
  EXPECT_THAT(p->env, ElementsAre("A=b"));
  EXPECT_EQ(p->user.uid, 7u);
  EXPECT_EQ(p->user.gid, 8u);
  EXPECT_THAT(p->user.additional_gids, ElementsAre(9u));
  EXPECT_TRUE(p->terminal);

  auto bad = parse_process(R"({"args": ["ls"], "user": {"uid": "root"}})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, EINVAL);
  EXPECT_THAT(bad.error().message, HasSubstr("process.user.uid"));
  EXPECT_FALSE(parse_process("not json").has_value());
  EXPECT_FALSE(parse_process("[]").has_value());
}

TEST(SpecParseParts, ResourcesAlone) {
  auto r = parse_resources(R"({"memory": {"limit": 1048576, "swap": -1}, "cpu": {"shares": 2, "cpus": "1"},
                                "pids": {"limit": 20}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_TRUE(r->memory);
  EXPECT_EQ(r->memory->limit, 1048576);
  EXPECT_EQ(r->memory->swap, -1);
  ASSERT_TRUE(r->cpu);
  EXPECT_EQ(r->cpu->shares, 2u);
  EXPECT_EQ(r->cpu->cpus, "1");
  EXPECT_EQ(r->pids_limit, 20);
  EXPECT_FALSE(r->block_io);
  EXPECT_TRUE(validate_resources(*r).has_value());

  auto bad = parse_resources(R"({"memory": {"limit": "1g"}})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, HasSubstr("memory.limit"));

  auto neg = parse_resources(R"({"pids": {"limit": -5}})");
  ASSERT_TRUE(neg.has_value());
  auto v = validate_resources(*neg);
  ASSERT_FALSE(v.has_value());
  EXPECT_THAT(v.error().message, HasSubstr("pids.limit"));
}

// ---- rootfs_path -------------------------------------------------------------------------

TEST(SpecRootfsPath, RelativeAndAbsolute) {
  Spec s;
  s.root.path = "rootfs";
  EXPECT_EQ(rootfs_path(s, "/b/bundle"), "/b/bundle/rootfs");
  s.root.path = "./sub/../rootfs/";
  EXPECT_EQ(rootfs_path(s, "/b/bundle/"), "/b/bundle/rootfs");
  s.root.path = "../shared-root";
  EXPECT_EQ(rootfs_path(s, "/b/bundle"), "/b/shared-root");
  s.root.path = "/abs//root/.";
  EXPECT_EQ(rootfs_path(s, "/b/bundle"), "/abs/root");
}

}  // namespace
}  // namespace berth::oci

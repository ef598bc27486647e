// Unit tests for runtime/containerizer/container_spec_builder: every rule of the
// CRI -> OCI translation and every error, on a fake rootfs; each built config must
// parse and validate with the launcher's own spec parser.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "runtime/containerizer/container_spec_builder.h"
#include "runtime/oci/spec_parser.h"

namespace berth::pod {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::vector<std::string> strings(const json& j) {
  std::vector<std::string> out;
  for (auto& e : j) out.push_back(e.get<std::string>());
  return out;
}

// berthd's own effective capabilities, as the builder reads them.
uint64_t own_caps() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("CapEff:")) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

uint64_t caps_mask(const json& names) {
  static const std::map<std::string, int> bits = {
      {"CAP_CHOWN", 0},    {"CAP_DAC_OVERRIDE", 1}, {"CAP_DAC_READ_SEARCH", 2}, {"CAP_FOWNER", 3},
      {"CAP_FSETID", 4},   {"CAP_KILL", 5},         {"CAP_SETGID", 6},          {"CAP_SETUID", 7},
      {"CAP_SETPCAP", 8},  {"CAP_LINUX_IMMUTABLE", 9}, {"CAP_NET_BIND_SERVICE", 10}, {"CAP_NET_BROADCAST", 11},
      {"CAP_NET_ADMIN", 12}, {"CAP_NET_RAW", 13},   {"CAP_IPC_LOCK", 14},       {"CAP_IPC_OWNER", 15},
      {"CAP_SYS_MODULE", 16}, {"CAP_SYS_RAWIO", 17}, {"CAP_SYS_CHROOT", 18},    {"CAP_SYS_PTRACE", 19},
      {"CAP_SYS_PACCT", 20}, {"CAP_SYS_ADMIN", 21}, {"CAP_SYS_BOOT", 22},       {"CAP_SYS_NICE", 23},
      {"CAP_SYS_RESOURCE", 24}, {"CAP_SYS_TIME", 25}, {"CAP_SYS_TTY_CONFIG", 26}, {"CAP_MKNOD", 27},
      {"CAP_LEASE", 28},   {"CAP_AUDIT_WRITE", 29}, {"CAP_AUDIT_CONTROL", 30},  {"CAP_SETFCAP", 31},
      {"CAP_MAC_OVERRIDE", 32}, {"CAP_MAC_ADMIN", 33}, {"CAP_SYSLOG", 34},      {"CAP_WAKE_ALARM", 35},
      {"CAP_BLOCK_SUSPEND", 36}, {"CAP_AUDIT_READ", 37}, {"CAP_PERFMON", 38},  {"CAP_BPF", 39},
      {"CAP_CHECKPOINT_RESTORE", 40},
  };
  uint64_t mask = 0;
  for (auto& n : names) mask |= uint64_t{1} << bits.at(n.get<std::string>());
  return mask;
}

constexpr uint64_t kDefaultCapsMask = 0xa80425fbULL;  // docker's and containerd's well-known default

// The launcher's view of the host mount `path` lives on: shared, slave, or neither.
std::string host_propagation(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, best_mp, best = "private";
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::vector<std::string> f;
    for (std::string w; ss >> w;) f.push_back(w);
    if (f.size() < 7) continue;
    const std::string& mp = f[4];
    bool under = mp == "/" || path == mp || path.starts_with(mp + "/");
    if (!under || mp.size() < best_mp.size()) continue;
    best_mp = mp;
    best = "private";
    for (size_t i = 6; i < f.size() && f[i] != "-"; ++i) {
      if (f[i].starts_with("shared:")) best = "shared";
      else if (f[i].starts_with("master:") && best != "shared") best = "slave";
    }
  }
  return best;
}

class SpecBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-spec-builder-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    rootfs_ = dir_ + "/rootfs";
    write(rootfs_ + "/etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
          "bob:x:1001:1002::/home/bob:/bin/sh\n");
    write(rootfs_ + "/etc/group", "root:x:0:\nwheel:x:10:alice\naudio:x:29:alice,bob\nalice:x:1000:\n");
    write(dir_ + "/sandbox/hostname", "pod-host\n");
    write(dir_ + "/sandbox/hosts", "127.0.0.1 localhost\n");
    write(dir_ + "/sandbox/resolv.conf", "nameserver 10.0.0.10\n");
    fs::create_directories(dir_ + "/sandbox/shm");
    fs::create_directories(dir_ + "/volume/sub");
    write(dir_ + "/volume/hello", "hi\n");
    write(dir_ + "/notadevice", "x");

    pod_.name = "web";
    pod_.uid = "uid-1234";
    pod_.namespace_ = "default";
    pod_.hostname = "web-host";

    sandbox_.id = "sb-1";
    sandbox_.netns_path = "/run/netns/sb-1";
    sandbox_.ipc_ns_path = "/proc/4242/ns/ipc";
    sandbox_.uts_ns_path = "/proc/4242/ns/uts";
    sandbox_.hostname = "web-host";
    sandbox_.hostname_file = dir_ + "/sandbox/hostname";
    sandbox_.hosts_file = dir_ + "/sandbox/hosts";
    sandbox_.resolv_conf_file = dir_ + "/sandbox/resolv.conf";

    container_.name = "app";

    image_.entrypoint = {"/bin/entry"};
    image_.cmd = {"serve", "--port=80"};
    image_.env = {"PATH=/opt/bin:/bin", "LANG=C.UTF-8"};
    image_.working_dir = "/srv";

    inputs_.pod = &pod_;
    inputs_.sandbox = &sandbox_;
    inputs_.container = &container_;
    inputs_.image = &image_;
    inputs_.image_name = "registry.test/app:1";
    inputs_.container_id = "ctr-1";
    inputs_.rootfs = rootfs_;
    inputs_.cgroups_path = "kubepods/pod1/ctr-1";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Builds and checks the result parses and validates as the launcher will.
  json build() {
    auto built = build_container_spec(inputs_);
    EXPECT_TRUE(built) << built.error().message;
    if (!built) return json::object();
    last_ = *built;
    auto spec = oci::parse_spec(built->config.dump());
    EXPECT_TRUE(spec) << spec.error().message;
    if (spec) {
      auto valid = oci::validate_spec(*spec, dir_);
      EXPECT_TRUE(valid) << valid.error().message;
    }
    return built->config;
  }

  Error build_error() {
    auto built = build_container_spec(inputs_);
    EXPECT_FALSE(built) << "expected an error";
    return built ? Error{} : built.error();
  }

  static const json* mount_at(const json& config, const std::string& dest) {
    const json* found = nullptr;
    for (auto& m : config["mounts"])
      if (m["destination"] == dest) found = &m;
    return found;
  }

  static const json* ns_of(const json& config, const std::string& type) {
    for (auto& n : config["linux"]["namespaces"])
      if (n["type"] == type) return &n;
    return nullptr;
  }

  static std::vector<std::string> env_of(const json& config) { return strings(config["process"]["env"]); }

  std::string dir_, rootfs_;
  PodSandboxSpec pod_;
  SandboxRuntimeInfo sandbox_;
  ContainerSpec container_;
  storage::ContainerDefaults image_;
  ContainerSpecInputs inputs_;
  BuiltSpec last_;
};

// ---------------------------------------------------------------- process

TEST_F(SpecBuilderTest, DefaultsFromTheImage) {
  json c = build();
  EXPECT_EQ(c["ociVersion"], "1.1.0");
  EXPECT_EQ(strings(c["process"]["args"]), (std::vector<std::string>{"/bin/entry", "serve", "--port=80"}));
  EXPECT_EQ(last_.argv, (std::vector<std::string>{"/bin/entry", "serve", "--port=80"}));
  EXPECT_EQ(c["process"]["cwd"], "/srv");
  EXPECT_EQ(c["process"]["terminal"], false);
  EXPECT_EQ(c["process"]["noNewPrivileges"], true);
  EXPECT_FALSE(c["process"].contains("oomScoreAdj"));
  EXPECT_FALSE(c["process"].contains("rlimits"));
  EXPECT_FALSE(c["process"].contains("apparmorProfile"));
  EXPECT_EQ(env_of(c), (std::vector<std::string>{"PATH=/opt/bin:/bin", "HOSTNAME=web-host", "LANG=C.UTF-8", "HOME=/root"}));
  EXPECT_EQ(c["root"]["path"], rootfs_);
  EXPECT_EQ(c["root"]["readonly"], false);
  EXPECT_FALSE(c.contains("hostname"));
  EXPECT_EQ(c["linux"]["cgroupsPath"], "kubepods/pod1/ctr-1");
  EXPECT_EQ(last_.stop_signal, SIGTERM);
  EXPECT_EQ(last_.uid, 0u);
  EXPECT_EQ(last_.gid, 0u);
}

TEST_F(SpecBuilderTest, NoCommandIsEINVAL) {
  image_.entrypoint.clear();
  image_.cmd.clear();
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_EQ(err.message, "no command specified");
}

TEST_F(SpecBuilderTest, CommandAndArgsFollowKubernetesRules) {
  container_.args = {"--debug"};
  EXPECT_EQ(strings(build()["process"]["args"]), (std::vector<std::string>{"/bin/entry", "--debug"}));
  container_.command = {"/bin/sh", "-c"};
  container_.args = {"echo hi"};
  EXPECT_EQ(strings(build()["process"]["args"]), (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
}

TEST_F(SpecBuilderTest, EnvLayersDefaultPathImageAndRequest) {
  image_.env = {"LANG=C"};
  container_.envs = {{"LANG", "de_DE"}, {"HOSTNAME", "custom"}, {"HOME", "/data"}, {"EMPTY", ""}};
  EXPECT_EQ(env_of(build()), (std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                                       "HOSTNAME=custom", "LANG=de_DE", "HOME=/data", "EMPTY="}));
  container_.envs = {{"", "x"}};
  EXPECT_EQ(build_error().code, EINVAL);
}

TEST_F(SpecBuilderTest, HostnameFallsBackToThePodsThenTheHosts) {
  sandbox_.hostname.clear();
  EXPECT_THAT(env_of(build()), Contains("HOSTNAME=web-host"));
  pod_.hostname.clear();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_THAT(env_of(build()), Contains(std::string("HOSTNAME=") + host));
}

TEST_F(SpecBuilderTest, WorkingDirAndTty) {
  container_.working_dir = "/work";
  container_.tty = true;
  json c = build();
  EXPECT_EQ(c["process"]["cwd"], "/work");
  EXPECT_EQ(c["process"]["terminal"], true);
  image_.working_dir.clear();
  container_.working_dir.clear();
  EXPECT_EQ(build()["process"]["cwd"], "/");
  container_.working_dir = "relative";
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("must be an absolute path"));
}

TEST_F(SpecBuilderTest, NoNewPrivsFollowsTheRequest) {
  container_.security.no_new_privs = false;
  EXPECT_EQ(build()["process"]["noNewPrivileges"], false);
}

TEST_F(SpecBuilderTest, OomScoreAdjAndItsRestriction) {
  container_.resources = Resources{};
  container_.resources->oom_score_adj = 500;
  EXPECT_EQ(build()["process"]["oomScoreAdj"], 500);

  auto own = read_file("/proc/self/oom_score_adj");
  ASSERT_TRUE(own);
  int current = std::stoi(*own);
  container_.resources->oom_score_adj = -999;
  EXPECT_EQ(build()["process"]["oomScoreAdj"], -999);
  inputs_.restrict_oom_score_adj = true;
  EXPECT_EQ(build()["process"]["oomScoreAdj"], std::max(current, -999));
  container_.resources->oom_score_adj = 1000;
  EXPECT_EQ(build()["process"]["oomScoreAdj"], 1000);
  container_.resources->oom_score_adj = 1001;
  EXPECT_EQ(build_error().code, EINVAL);
}

TEST_F(SpecBuilderTest, StopSignal) {
  build();
  EXPECT_EQ(last_.stop_signal, SIGTERM);
  image_.stop_signal = "SIGUSR1";
  build();
  EXPECT_EQ(last_.stop_signal, SIGUSR1);
  container_.stop_signal = "QUIT";
  build();
  EXPECT_EQ(last_.stop_signal, SIGQUIT);
  container_.stop_signal = "9";
  build();
  EXPECT_EQ(last_.stop_signal, SIGKILL);
  container_.stop_signal = "SIGRTMIN+3";
  build();
  EXPECT_EQ(last_.stop_signal, 37);
  container_.stop_signal = "SIGBOGUS";
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("SIGBOGUS"));
  container_.stop_signal.clear();
  image_.stop_signal = "NOPE";
  EXPECT_EQ(build_error().code, EINVAL);
}

TEST(StopSignalParse, NamesNumbersAndRealtime) {
  EXPECT_EQ(*parse_stop_signal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*parse_stop_signal("term"), SIGTERM);
  EXPECT_EQ(*parse_stop_signal("sigint"), SIGINT);
  EXPECT_EQ(*parse_stop_signal("15"), 15);
  EXPECT_EQ(*parse_stop_signal("SIGRTMIN"), 34);
  EXPECT_EQ(*parse_stop_signal("RTMAX-1"), 63);
  EXPECT_FALSE(parse_stop_signal("0"));
  EXPECT_FALSE(parse_stop_signal("65"));
  EXPECT_FALSE(parse_stop_signal("SIGRTMIN+40"));
  EXPECT_FALSE(parse_stop_signal(""));
  EXPECT_FALSE(parse_stop_signal("-1"));
}

// ---------------------------------------------------------------- user

TEST_F(SpecBuilderTest, RunAsUsernameResolvesInTheRootfs) {
  container_.security.run_as_username = "alice";
  container_.security.supplemental_groups = {555, 10};
  pod_.supplemental_groups = {777};
  json c = build();
  EXPECT_EQ(c["process"]["user"]["uid"], 1000);
  EXPECT_EQ(c["process"]["user"]["gid"], 1000);
  EXPECT_EQ(c["process"]["user"]["additionalGids"], json::array({10, 29, 555, 777, 1000}));
  EXPECT_THAT(env_of(c), Contains("HOME=/home/alice"));
  EXPECT_EQ(last_.uid, 1000u);
  EXPECT_EQ(last_.gid, 1000u);
}

TEST_F(SpecBuilderTest, RunAsUserAndGroupOverrideTheImageUser) {
  image_.user = "bob";
  json c = build();
  EXPECT_EQ(c["process"]["user"]["uid"], 1001);
  EXPECT_EQ(c["process"]["user"]["gid"], 1002);
  EXPECT_EQ(c["process"]["user"]["additionalGids"], json::array({29, 1002}));

  container_.security.run_as_user = 1000;
  container_.security.run_as_group = 55;
  c = build();
  EXPECT_EQ(c["process"]["user"]["uid"], 1000);
  EXPECT_EQ(c["process"]["user"]["gid"], 55);
  // alice's memberships, found from the uid's passwd name.
  EXPECT_EQ(c["process"]["user"]["additionalGids"], json::array({10, 29, 55}));

  container_.security.run_as_user = 4242;
  container_.security.run_as_group.reset();
  c = build();
  EXPECT_EQ(c["process"]["user"]["uid"], 4242);
  EXPECT_EQ(c["process"]["user"]["gid"], 0);
  EXPECT_EQ(c["process"]["user"]["additionalGids"], json::array({0}));
  EXPECT_THAT(env_of(c), Contains("HOME=/"));
}

TEST_F(SpecBuilderTest, StrictSupplementalGroupsIgnoreEtcGroup) {
  container_.security.run_as_username = "alice";
  container_.security.supplemental_groups_strict = true;
  container_.security.supplemental_groups = {300};
  EXPECT_EQ(build()["process"]["user"]["additionalGids"], json::array({300, 1000}));
}

TEST_F(SpecBuilderTest, UserErrors) {
  container_.security.run_as_username = "mallory";
  auto err = build_error();
  EXPECT_EQ(err.code, ENOENT);
  EXPECT_THAT(err.message, HasSubstr("user \"mallory\" not found in the image's /etc/passwd"));

  container_.security.run_as_username.clear();
  container_.security.run_as_group = 10;
  err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("without run_as_user"));

  container_.security.run_as_group.reset();
  container_.security.run_as_user = -5;
  EXPECT_EQ(build_error().code, EINVAL);

  container_.security.run_as_user.reset();
  container_.security.supplemental_groups = {-1};
  EXPECT_EQ(build_error().code, EINVAL);

  container_.security.supplemental_groups.clear();
  image_.user = "alice:nogroup";
  err = build_error();
  EXPECT_EQ(err.code, ENOENT);
  EXPECT_THAT(err.message, HasSubstr("group \"nogroup\""));
}

TEST_F(SpecBuilderTest, SymlinkedPasswdReadsTheRootfsView) {
  write(dir_ + "/outside/passwd", "alice:x:6666:6666::/evil:/bin/sh\n");
  write(rootfs_ + "/outside/passwd", "alice:x:2000:2000::/home/inside:/bin/sh\n");
  fs::remove(rootfs_ + "/etc/passwd");
  fs::create_symlink("../../outside/passwd", rootfs_ + "/etc/passwd");
  container_.security.run_as_username = "alice";
  json c = build();
  EXPECT_EQ(c["process"]["user"]["uid"], 2000);
  EXPECT_THAT(env_of(c), Contains("HOME=/home/inside"));
}

// ---------------------------------------------------------------- capabilities

TEST_F(SpecBuilderTest, DefaultCapabilities) {
  json caps = build()["process"]["capabilities"];
  EXPECT_EQ(caps_mask(caps["bounding"]), kDefaultCapsMask);
  EXPECT_EQ(caps["effective"], caps["bounding"]);
  EXPECT_EQ(caps["permitted"], caps["bounding"]);
  EXPECT_THAT(caps["inheritable"], IsEmpty());
  EXPECT_THAT(caps["ambient"], IsEmpty());
  EXPECT_EQ(default_container_capabilities().size(), 14u);
}

TEST_F(SpecBuilderTest, CapabilityAddAndDropWithOrWithoutPrefix) {
  container_.security.add_capabilities = {"NET_ADMIN", "CAP_SYS_TIME", "sys_nice"};
  container_.security.drop_capabilities = {"CHOWN", "cap_mknod"};
  json caps = build()["process"]["capabilities"];
  uint64_t want = (kDefaultCapsMask | (1ULL << 12) | (1ULL << 25) | (1ULL << 23)) & ~(1ULL << 0) & ~(1ULL << 27);
  EXPECT_EQ(caps_mask(caps["bounding"]), want);
  EXPECT_EQ(caps_mask(caps["effective"]), want);
  // Drop wins over add for the same name.
  container_.security.add_capabilities = {"NET_ADMIN"};
  container_.security.drop_capabilities = {"NET_ADMIN"};
  EXPECT_EQ(caps_mask(build()["process"]["capabilities"]["bounding"]), kDefaultCapsMask);
}

TEST_F(SpecBuilderTest, CapabilityAllSemantics) {
  container_.security.drop_capabilities = {"ALL"};
  container_.security.add_capabilities = {"NET_BIND_SERVICE"};
  EXPECT_EQ(caps_mask(build()["process"]["capabilities"]["bounding"]), 1ULL << 10);

  container_.security.drop_capabilities = {"all"};
  container_.security.add_capabilities.clear();
  EXPECT_THAT(build()["process"]["capabilities"]["bounding"], IsEmpty());

  container_.security.add_capabilities = {"ALL"};
  container_.security.drop_capabilities = {"CHOWN"};
  EXPECT_EQ(caps_mask(build()["process"]["capabilities"]["bounding"]), own_caps() & ~1ULL);
}

TEST_F(SpecBuilderTest, UnknownCapabilityIsEINVAL) {
  container_.security.add_capabilities = {"CAP_FLY"};
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("unknown capability \"CAP_FLY\""));
  container_.security.add_capabilities.clear();
  container_.security.drop_capabilities = {"TELEPORT"};
  EXPECT_EQ(build_error().code, EINVAL);
  container_.security.drop_capabilities.clear();
  container_.security.add_ambient_capabilities = {"ALL"};
  EXPECT_EQ(build_error().code, EINVAL);
}

TEST_F(SpecBuilderTest, AmbientCapabilitiesAreInheritableAndInTheSet) {
  container_.security.run_as_user = 1000;
  container_.security.drop_capabilities = {"ALL"};
  container_.security.add_ambient_capabilities = {"NET_BIND_SERVICE"};
  json caps = build()["process"]["capabilities"];
  EXPECT_EQ(strings(caps["ambient"]), (std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));
  EXPECT_EQ(strings(caps["inheritable"]), (std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));
  EXPECT_EQ(strings(caps["permitted"]), (std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));
}

// ---------------------------------------------------------------- privileged

TEST_F(SpecBuilderTest, PrivilegedNeedsAPrivilegedPod) {
  container_.security.privileged = true;
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("its pod is not"));
}

TEST_F(SpecBuilderTest, PrivilegedOpensEverything) {
  pod_.privileged = true;
  container_.security.privileged = true;
  container_.security.drop_capabilities = {"ALL"};  // ignored when privileged
  container_.security.masked_paths_set = true;
  container_.security.masked_paths = {"/proc/kcore"};  // ignored when privileged
  container_.security.seccomp.type = SecurityProfile::Type::runtime_default;
  inputs_.cgroup_namespace = true;
  json c = build();
  EXPECT_EQ(caps_mask(c["process"]["capabilities"]["bounding"]), own_caps());
  EXPECT_EQ(caps_mask(c["process"]["capabilities"]["effective"]), own_caps());
  EXPECT_FALSE(c["linux"].contains("seccomp"));
  EXPECT_THAT(c["linux"]["maskedPaths"], IsEmpty());
  EXPECT_THAT(c["linux"]["readonlyPaths"], IsEmpty());
  EXPECT_THAT(strings((*mount_at(c, "/sys"))["options"]), Not(Contains("ro")));
  EXPECT_THAT(strings((*mount_at(c, "/sys/fs/cgroup"))["options"]), Not(Contains("ro")));
  EXPECT_EQ(c["linux"]["resources"]["devices"], json::parse(R"([{"allow":true,"access":"rwm"}])"));
  bool has_null = false;
  for (auto& d : c["linux"]["devices"])
    if (d["path"] == "/dev/null") has_null = d["type"] == "c" && d["major"] == 1 && d["minor"] == 3;
  EXPECT_TRUE(has_null);
  for (auto& d : c["linux"]["devices"]) {
    std::string p = d["path"];
    EXPECT_FALSE(p.starts_with("/dev/pts/") || p == "/dev/console") << p;
  }
  EXPECT_EQ(ns_of(c, "cgroup"), nullptr);
}

// ---------------------------------------------------------------- masked and readonly paths

TEST_F(SpecBuilderTest, MaskedAndReadonlyPathDefaults) {
  json c = build();
  EXPECT_THAT(strings(c["linux"]["maskedPaths"]), Contains("/proc/kcore"));
  EXPECT_THAT(strings(c["linux"]["maskedPaths"]), Contains("/sys/firmware"));
  EXPECT_THAT(strings(c["linux"]["maskedPaths"]), Contains("/sys/devices/virtual/powercap"));
  EXPECT_EQ(strings(c["linux"]["readonlyPaths"]),
            (std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
}

TEST_F(SpecBuilderTest, ExplicitEmptyListsUnmask) {
  container_.security.masked_paths_set = true;
  container_.security.readonly_paths_set = true;
  json c = build();
  EXPECT_THAT(c["linux"]["maskedPaths"], IsEmpty());
  EXPECT_THAT(c["linux"]["readonlyPaths"], IsEmpty());
  container_.security.masked_paths = {"/proc/secret"};
  container_.security.readonly_paths = {"/proc/ro"};
  c = build();
  EXPECT_EQ(strings(c["linux"]["maskedPaths"]), (std::vector<std::string>{"/proc/secret"}));
  EXPECT_EQ(strings(c["linux"]["readonlyPaths"]), (std::vector<std::string>{"/proc/ro"}));
  container_.security.masked_paths = {"proc/relative"};
  EXPECT_EQ(build_error().code, EINVAL);
}

// ---------------------------------------------------------------- seccomp and apparmor

TEST_F(SpecBuilderTest, SeccompRuntimeDefaultUnlessUnconfined) {
  json c = build();
  ASSERT_TRUE(c["linux"].contains("seccomp"));
  EXPECT_EQ(c["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(c["linux"]["seccomp"]["defaultErrnoRet"], EPERM);
  auto has_mount = [](const json& c) {
    for (auto& r : c["linux"]["seccomp"]["syscalls"])
      for (auto& n : r["names"])
        if (n == "mount") return true;
    return false;
  };
  EXPECT_FALSE(has_mount(c));
  container_.security.add_capabilities = {"SYS_ADMIN"};
  EXPECT_TRUE(has_mount(build()));

  container_.security.seccomp.type = SecurityProfile::Type::unconfined;
  EXPECT_FALSE(build()["linux"].contains("seccomp"));

  // Unset on the container falls back to the pod's choice.
  container_.security.seccomp.type = SecurityProfile::Type::unset;
  pod_.seccomp.type = SecurityProfile::Type::unconfined;
  EXPECT_FALSE(build()["linux"].contains("seccomp"));
  container_.security.seccomp.type = SecurityProfile::Type::runtime_default;
  EXPECT_TRUE(build()["linux"].contains("seccomp"));

  container_.security.seccomp.localhost_ref = "/x.json";
  EXPECT_EQ(build_error().code, EINVAL);
}

TEST_F(SpecBuilderTest, SeccompLocalhostProfiles) {
  container_.security.seccomp.type = SecurityProfile::Type::localhost;
  container_.security.seccomp.localhost_ref = "profiles/x.json";
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("must be an absolute path"));

  std::string missing = dir_ + "/missing.json";
  container_.security.seccomp.localhost_ref = missing;
  err = build_error();
  EXPECT_EQ(err.code, ENOENT);
  EXPECT_EQ(err.message, "seccomp profile " + missing + " not found");

  std::string bad = dir_ + "/bad.json";
  container_.security.seccomp.localhost_ref = bad;
  write(bad, "{not json");
  EXPECT_EQ(build_error().code, EINVAL);
  write(bad, R"({"defaultAction":"SCMP_ACT_FLY"})");
  err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("SCMP_ACT_FLY"));
  write(bad, R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":0,"op":"SCMP_CMP_EQ"}]}]})");
  EXPECT_EQ(build_error().code, EINVAL);

  std::string good = dir_ + "/good.json";
  write(good, R"({"defaultAction":"SCMP_ACT_ALLOW",
                  "syscalls":[{"names":["mount","definitely_not_a_syscall"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                              {"names":["also_not_a_syscall"],"action":"SCMP_ACT_KILL"}]})");
  container_.security.seccomp.localhost_ref = good;
  json c = build();
  ASSERT_TRUE(c["linux"].contains("seccomp"));
  EXPECT_EQ(c["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
  // Names this libseccomp cannot resolve are dropped so the launcher's strict
  // compile accepts the profile; a rule left empty goes too.
  EXPECT_EQ(c["linux"]["seccomp"]["syscalls"],
            json::parse(R"([{"names":["mount"],"action":"SCMP_ACT_ERRNO","errnoRet":1}])"));
}

TEST_F(SpecBuilderTest, ApparmorIsRecordedOnly) {
  container_.security.apparmor.type = SecurityProfile::Type::localhost;
  container_.security.apparmor.localhost_ref = "my-profile";
  json c = build();
  EXPECT_FALSE(c["process"].contains("apparmorProfile"));
  EXPECT_EQ(c["annotations"]["io.berth.apparmor-profile"], "localhost/my-profile");
  container_.security.apparmor.localhost_ref.clear();
  EXPECT_EQ(build_error().code, EINVAL);
}

// ---------------------------------------------------------------- namespaces

TEST_F(SpecBuilderTest, NamespacesJoinTheSandbox) {
  json c = build();
  EXPECT_EQ(c["linux"]["namespaces"], json::parse(R"([{"type":"mount"},{"type":"pid"},
      {"type":"network","path":"/run/netns/sb-1"},{"type":"ipc","path":"/proc/4242/ns/ipc"},
      {"type":"uts","path":"/proc/4242/ns/uts"}])"));
}

TEST_F(SpecBuilderTest, PidNamespaceModes) {
  container_.security.namespaces.pid = NamespaceMode::pod;
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  sandbox_.pid_ns_path = "/proc/4242/ns/pid";
  EXPECT_EQ(*ns_of(build(), "pid"), json::parse(R"({"type":"pid","path":"/proc/4242/ns/pid"})"));

  container_.security.namespaces.pid = NamespaceMode::node;
  EXPECT_EQ(ns_of(build(), "pid"), nullptr);

  container_.security.namespaces.pid = NamespaceMode::target;
  container_.security.namespaces.target_id = "other";
  err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("other"));
  inputs_.target_pid_ns_path = "/proc/77/ns/pid";
  EXPECT_EQ(*ns_of(build(), "pid"), json::parse(R"({"type":"pid","path":"/proc/77/ns/pid"})"));
}

TEST_F(SpecBuilderTest, HostNetworkAndIpcAndCgroupNamespace) {
  sandbox_.netns_path.clear();
  sandbox_.ipc_ns_path.clear();
  inputs_.cgroup_namespace = true;
  json c = build();
  EXPECT_EQ(ns_of(c, "network"), nullptr);
  EXPECT_EQ(ns_of(c, "uts"), nullptr);  // host network keeps the host's uts too
  EXPECT_EQ(ns_of(c, "ipc"), nullptr);
  ASSERT_NE(ns_of(c, "cgroup"), nullptr);
  EXPECT_FALSE(ns_of(c, "cgroup")->contains("path"));
}

// ---------------------------------------------------------------- mounts

TEST_F(SpecBuilderTest, DefaultMountsAndSandboxFiles) {
  json c = build();
  std::vector<std::string> dests;
  for (auto& m : c["mounts"]) dests.push_back(m["destination"]);
  EXPECT_EQ(dests, (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                             "/sys/fs/cgroup", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}));
  EXPECT_EQ((*mount_at(c, "/dev/shm"))["type"], "tmpfs");
  EXPECT_THAT(strings((*mount_at(c, "/sys"))["options"]), Contains("ro"));
  EXPECT_EQ((*mount_at(c, "/sys/fs/cgroup"))["type"], "cgroup");
  EXPECT_THAT(strings((*mount_at(c, "/sys/fs/cgroup"))["options"]), Contains("ro"));
  EXPECT_EQ(*mount_at(c, "/etc/hosts"),
            json({{"destination", "/etc/hosts"}, {"type", "bind"}, {"source", fs::canonical(dir_ + "/sandbox/hosts").string()},
                  {"options", {"rbind", "rprivate", "rw"}}}));

  container_.security.readonly_rootfs = true;
  c = build();
  EXPECT_EQ(c["root"]["readonly"], true);
  EXPECT_EQ(strings((*mount_at(c, "/etc/resolv.conf"))["options"]), (std::vector<std::string>{"rbind", "rprivate", "ro"}));

  sandbox_.hostname_file.clear();
  EXPECT_EQ(mount_at(build(), "/etc/hostname"), nullptr);
  sandbox_.hosts_file = dir_ + "/sandbox/missing-hosts";
  EXPECT_EQ(build_error().code, ENOENT);
}

TEST_F(SpecBuilderTest, ShmFromTheSandboxOrTheHost) {
  sandbox_.shm_dir = dir_ + "/sandbox/shm";
  json c = build();
  EXPECT_EQ(*mount_at(c, "/dev/shm"), json({{"destination", "/dev/shm"}, {"type", "bind"}, {"source", fs::canonical(dir_ + "/sandbox/shm").string()},
                                            {"options", {"rbind", "rprivate", "rw"}}}));
  sandbox_.shm_dir.clear();
  sandbox_.ipc_ns_path.clear();
  c = build();
  EXPECT_EQ((*mount_at(c, "/dev/shm"))["source"], "/dev/shm");
  EXPECT_EQ((*mount_at(c, "/dev/shm"))["type"], "bind");
}

TEST_F(SpecBuilderTest, CriMountsReadOnlyAndRecursiveReadOnly) {
  container_.mounts = {{"/data/deep", dir_ + "/volume/sub", false, false, false, MountPropagation::private_},
                       {"/data", dir_ + "/volume", true, false, false, MountPropagation::private_},
                       {"/rro", dir_ + "/volume", true, true, false, MountPropagation::private_}};
  json c = build();
  EXPECT_EQ(strings((*mount_at(c, "/data"))["options"]), (std::vector<std::string>{"rbind", "rprivate", "ro"}));
  EXPECT_EQ(strings((*mount_at(c, "/rro"))["options"]), (std::vector<std::string>{"rbind", "rprivate", "ro", "rro"}));
  EXPECT_EQ(strings((*mount_at(c, "/data/deep"))["options"]), (std::vector<std::string>{"rbind", "rprivate", "rw"}));
  // Parents before children whatever the request order.
  std::vector<std::string> dests;
  for (auto& m : c["mounts"]) dests.push_back(m["destination"]);
  auto pos = [&](const std::string& d) { return std::find(dests.begin(), dests.end(), d) - dests.begin(); };
  EXPECT_LT(pos("/data"), pos("/data/deep"));
  EXPECT_FALSE(c["linux"].contains("rootfsPropagation"));

  container_.mounts = {{"/rro", dir_ + "/volume", false, true, false, MountPropagation::private_}};
  EXPECT_EQ(build_error().code, EINVAL);
  container_.mounts = {{"/rro", dir_ + "/volume", true, true, false, MountPropagation::host_to_container}};
  EXPECT_EQ(build_error().code, EINVAL);
}

TEST_F(SpecBuilderTest, CriMountSourceSymlinksAreResolved) {
  fs::create_symlink(dir_ + "/volume", dir_ + "/link");
  container_.mounts = {{"/data", dir_ + "/link", false, false, false, MountPropagation::private_}};
  EXPECT_EQ((*mount_at(build(), "/data"))["source"], fs::canonical(dir_ + "/volume").string());
}

TEST_F(SpecBuilderTest, CriMountErrors) {
  container_.mounts = {{"/data", dir_ + "/nope", false, false, false, MountPropagation::private_}};
  auto err = build_error();
  EXPECT_EQ(err.code, ENOENT);
  EXPECT_EQ(err.message, "mount source " + dir_ + "/nope does not exist");
  EXPECT_FALSE(fs::exists(dir_ + "/nope"));  // refused, not created
  container_.mounts = {{"data", dir_ + "/volume", false, false, false, MountPropagation::private_}};
  err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("must be an absolute path"));
}

TEST_F(SpecBuilderTest, CriMountsOverrideDefaultsAndSandboxFiles) {
  write(dir_ + "/myhosts", "1.2.3.4 x\n");
  container_.mounts = {{"/etc/hosts", dir_ + "/myhosts", true, false, false, MountPropagation::private_},
                       {"/dev/shm/", dir_ + "/volume", false, false, false, MountPropagation::private_}};
  json c = build();
  int hosts = 0, shm = 0;
  for (auto& m : c["mounts"]) {
    hosts += m["destination"] == "/etc/hosts";
    shm += m["destination"] == "/dev/shm" || m["destination"] == "/dev/shm/";
  }
  EXPECT_EQ(hosts, 1);
  EXPECT_EQ(shm, 1);
  EXPECT_EQ((*mount_at(c, "/etc/hosts"))["source"], fs::canonical(dir_ + "/myhosts").string());
  EXPECT_EQ((*mount_at(c, "/dev/shm/"))["type"], "bind");

  // A requested /dev takes every default below /dev with it.
  container_.mounts = {{"/dev", "/dev", false, false, false, MountPropagation::private_}};
  c = build();
  for (auto& m : c["mounts"]) EXPECT_FALSE(std::string(m["destination"]).starts_with("/dev/")) << m.dump();
  EXPECT_EQ((*mount_at(c, "/dev"))["type"], "bind");
}

TEST_F(SpecBuilderTest, MountPropagationNeedsAMatchingHostMount) {
  std::string host = fs::canonical(dir_ + "/volume").string();
  std::string propagation = host_propagation(host);
  container_.mounts = {{"/shared", dir_ + "/volume", false, false, false, MountPropagation::bidirectional}};
  if (propagation == "shared") {
    json c = build();
    EXPECT_THAT(strings((*mount_at(c, "/shared"))["options"]), Contains("rshared"));
    EXPECT_EQ(c["linux"]["rootfsPropagation"], "rshared");
  } else {
    auto err = build_error();
    EXPECT_EQ(err.code, EINVAL);
    EXPECT_THAT(err.message, HasSubstr("not a shared mount"));
  }
  container_.mounts = {{"/slave", dir_ + "/volume", false, false, false, MountPropagation::host_to_container}};
  if (propagation != "private") {
    json c = build();
    EXPECT_THAT(strings((*mount_at(c, "/slave"))["options"]), Contains("rslave"));
    EXPECT_EQ(c["linux"]["rootfsPropagation"], "rslave");
  } else {
    auto err = build_error();
    EXPECT_EQ(err.code, EINVAL);
    EXPECT_THAT(err.message, HasSubstr("neither a shared nor a slave mount"));
  }
}

// ---------------------------------------------------------------- devices

TEST_F(SpecBuilderTest, DevicesBecomeNodesAndRules) {
  container_.devices = {{"/dev/xnull", "/dev/null", "rw"}, {"", "/dev/zero", ""}};
  json c = build();
  struct stat st{};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_EQ(c["linux"]["devices"][0], json({{"path", "/dev/xnull"}, {"type", "c"}, {"major", 1}, {"minor", 3},
                                            {"fileMode", st.st_mode & 07777}, {"uid", st.st_uid}, {"gid", st.st_gid}}));
  EXPECT_EQ(c["linux"]["devices"][1]["path"], "/dev/zero");
  EXPECT_EQ(c["linux"]["resources"]["devices"],
            json::parse(R"([{"allow":false,"access":"rwm"},
                            {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},
                            {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"}])"));
}

TEST_F(SpecBuilderTest, DeviceErrors) {
  container_.devices = {{"/dev/x", "/dev/null", "rwx"}};
  auto err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("permissions \"rwx\""));
  container_.devices = {{"/dev/x", dir_ + "/no-such-device", "rw"}};
  err = build_error();
  EXPECT_EQ(err.code, ENOENT);
  EXPECT_THAT(err.message, HasSubstr("does not exist"));
  container_.devices = {{"/dev/x", dir_ + "/notadevice", "rw"}};
  err = build_error();
  EXPECT_EQ(err.code, EINVAL);
  EXPECT_THAT(err.message, HasSubstr("not a character or block device"));
  container_.devices = {{"dev/x", "/dev/null", "rw"}};
  EXPECT_EQ(build_error().code, EINVAL);
}

// ---------------------------------------------------------------- resources

TEST_F(SpecBuilderTest, ResourcesMapToLinuxResources) {
  Resources r;
  r.cpu_period = 100000;
  r.cpu_quota = 50000;
  r.cpu_shares = 512;
  r.cpuset_cpus = "0-1";
  r.cpuset_mems = "0";
  r.memory_limit_in_bytes = 64 << 20;
  r.hugepage_limits = {{"2MB", 4 << 20}};
  r.unified = {{"memory.high", "50000000"}};
  container_.resources = r;
  json res = build()["linux"]["resources"];
  EXPECT_EQ(res["cpu"], json::parse(R"({"period":100000,"quota":50000,"shares":512,"cpus":"0-1","mems":"0"})"));
  EXPECT_EQ(res["memory"]["limit"], 64 << 20);
  bool swap = fs::exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") || res["memory"].contains("swap");
  if (swap) {
    EXPECT_EQ(res["memory"]["swap"], 64 << 20);
  }
  EXPECT_EQ(res["hugepageLimits"], json::parse(R"([{"pageSize":"2MB","limit":4194304}])"));
  EXPECT_EQ(res["unified"], json::parse(R"({"memory.high":"50000000"})"));

  container_.resources->memory_swap_limit_in_bytes = 128 << 20;
  res = build()["linux"]["resources"];
  if (swap) {
    EXPECT_EQ(res["memory"]["swap"], 128 << 20);
  }

  container_.resources->memory_swap_limit_in_bytes = 32 << 20;
  EXPECT_EQ(build_error().code, EINVAL);
  container_.resources->memory_swap_limit_in_bytes = 0;
  container_.resources->cpu_shares = -1;
  EXPECT_EQ(build_error().code, EINVAL);
}

TEST_F(SpecBuilderTest, NoResourcesStillDenyDevicesByDefault) {
  json res = build()["linux"]["resources"];
  EXPECT_EQ(res, json::parse(R"({"devices":[{"allow":false,"access":"rwm"}]})"));
}

// ---------------------------------------------------------------- annotations

TEST_F(SpecBuilderTest, AnnotationsCarryTheCriIdentity) {
  container_.annotations = {{"team", "web"}, {"io.kubernetes.cri.sandbox-id", "spoofed"}};
  json a = build()["annotations"];
  EXPECT_EQ(a, json({{"team", "web"},
                     {"io.kubernetes.cri.container-type", "container"},
                     {"io.kubernetes.cri.sandbox-id", "sb-1"},
                     {"io.kubernetes.cri.sandbox-namespace", "default"},
                     {"io.kubernetes.cri.sandbox-uid", "uid-1234"},
                     {"io.kubernetes.cri.sandbox-name", "web"},
                     {"io.kubernetes.cri.container-name", "app"},
                     {"io.kubernetes.cri.image-name", "registry.test/app:1"}}));
}

TEST_F(SpecBuilderTest, MissingInputsAreEINVAL) {
  inputs_.image = nullptr;
  EXPECT_EQ(build_error().code, EINVAL);
  inputs_.image = &image_;
  inputs_.rootfs.clear();
  EXPECT_EQ(build_error().code, EINVAL);
}

}  // namespace
}  // namespace berth::pod

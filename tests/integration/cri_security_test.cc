// What a container's security context, resources, mounts, devices and process
// settings do inside the container, seen from the container itself: each probe is a
// shell script that prints key=value lines, read back from its CRI log.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

// Prints what the probes compare. Children (grep, awk) inherit the shell's
// credentials, capabilities, no_new_privs and seccomp mode, so their own
// /proc/self/status speaks for the container.
constexpr const char* kProbe = R"(
echo uid=$(id -u)
echo gid=$(id -g)
echo groups=$(id -G)
echo nnp=$(awk '/^NoNewPrivs/{print $2}' /proc/self/status)
echo seccomp=$(awk '/^Seccomp:/{print $2}' /proc/self/status)
echo capeff=$(awk '/^CapEff/{print $2}' /proc/self/status)
echo capbnd=$(awk '/^CapBnd/{print $2}' /proc/self/status)
echo pwd=$(pwd)
echo home=$HOME
if touch /rootfs-probe 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi
echo masked=$(head -c 16 /proc/timer_list 2>/dev/null | wc -c)
echo procsys=$(awk '$5=="/proc/sys"{split($6,o,","); print o[1]}' /proc/self/mountinfo | tail -n1)
if mkdir /tmp/probe-dir 2>/dev/null; then echo mkdir=ok; else echo mkdir=fail; fi
if [ -e /dev/kmsg ]; then echo kmsg=yes; else echo kmsg=no; fi
echo stdin=$(readlink /proc/self/fd/0 | cut -d: -f1)
if [ -t 1 ]; then echo tty=yes; else echo tty=no; fi
)";

class CriSecurityTest : public SharedBerthdTest<CriSecurityTest> {
 protected:
  // A pod for the test and, when asked, a privileged one.
  void SetUp() override {
    SharedBerthdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    pod_ = d_->pod_config("sec");
    pod_id_ = d_->run_pod(pod_);
    ASSERT_FALSE(pod_id_.empty());
  }
  void TearDown() override {
    if (!pod_id_.empty()) {
      EXPECT_TRUE(d_->remove_pod(pod_id_).ok());
    }
    if (!priv_id_.empty()) {
      EXPECT_TRUE(d_->remove_pod(priv_id_).ok());
    }
    SharedBerthdTest::TearDown();
  }
  void make_privileged_pod() {
    priv_ = d_->pod_config("priv");
    priv_.mutable_linux()->mutable_security_context()->set_privileged(true);
    priv_id_ = d_->run_pod(priv_);
    ASSERT_FALSE(priv_id_.empty());
  }

  // The fixture's container config is kubelet's plain one; with the RuntimeDefault
  // seccomp profile kubelet asks for under seccompDefault.
  static v1::ContainerConfig with_context(v1::ContainerConfig c) {
    c.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
        v1::SecurityProfile::RuntimeDefault);
    return c;
  }
  v1::ContainerConfig probe(const std::string& name, const std::string& extra = "",
                            const std::string& image = "docker.io/library/busybox:latest") {
    return with_context(d_->container_config(name, {"/bin/sh", "-c", std::string(kProbe) + extra}, image));
  }
  // Runs the container to its end and returns what it printed as key=value.
  std::map<std::string, std::string> run(const v1::ContainerConfig& config, bool privileged_pod = false,
                                         int want_exit = 0) {
    const auto& pod = privileged_pod ? priv_ : pod_;
    auto st = d_->run_to_exit(privileged_pod ? priv_id_ : pod_id_, config, pod);
    if (!st) return {};
    EXPECT_EQ(st->exit_code(), want_exit) << config.metadata().name() << ": " << log_of(config, pod);
    auto lines = cri_log_lines(log_of(config, pod));
    for (auto& l : lines)
      if (!l.empty() && l.back() == '\r') l.pop_back();  // a terminal's line ends
    return key_values(lines);
  }
  static std::string log_of(const v1::ContainerConfig& config, const v1::PodSandboxConfig& pod) {
    return read_text_file(pod.log_directory() + "/" + config.log_path());
  }
  static std::string own_capeff() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("CapEff:")) return line.substr(line.find_first_not_of(" \t", 7));
    return "";
  }

  v1::PodSandboxConfig pod_, priv_;
  std::string pod_id_, priv_id_;
};

TEST_F(CriSecurityTest, RunAsUserGroupsAndRestrictions) {
  auto c = probe("ids", "echo a=$A\necho b=$B\n");
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(1234);
  sc->mutable_run_as_group()->set_value(5678);
  sc->add_supplemental_groups(4000);
  sc->add_supplemental_groups(4001);
  sc->set_no_new_privs(true);
  sc->set_readonly_rootfs(true);
  c.set_working_dir("/tmp");
  auto* env = c.add_envs();
  env->set_key("A");
  env->set_value("1");
  env = c.add_envs();
  env->set_key("B");
  env->set_value("two words");
  auto kv = run(c);
  EXPECT_EQ(kv["uid"], "1234");
  EXPECT_EQ(kv["gid"], "5678");
  EXPECT_EQ(kv["groups"], "5678 4000 4001");
  EXPECT_EQ(kv["nnp"], "1");
  EXPECT_EQ(kv["seccomp"], "2");
  EXPECT_EQ(kv["capeff"], "0000000000000000") << "a non-root user keeps no effective capabilities";
  EXPECT_EQ(kv["pwd"], "/tmp");
  EXPECT_EQ(kv["home"], "/") << "no passwd entry for 1234";
  EXPECT_EQ(kv["rootfs"], "ro");
  EXPECT_EQ(kv["procsys"], "ro");
  EXPECT_EQ(kv["a"], "1");
  EXPECT_EQ(kv["b"], "two words");
  EXPECT_EQ(kv["stdin"], "/dev/null");
  EXPECT_EQ(kv["tty"], "no");

  // Without no_new_privs and with a writable rootfs.
  auto open = probe("open");
  open.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(0);
  kv = run(open);
  EXPECT_EQ(kv["uid"], "0");
  EXPECT_EQ(kv["nnp"], "0");
  EXPECT_EQ(kv["rootfs"], "rw");
  EXPECT_EQ(kv["home"], "/root");
  EXPECT_EQ(kv["masked"], "0") << "/proc/timer_list is masked";
}

TEST_F(CriSecurityTest, ImageUserAndUsername) {
  const std::string users = "example.com/test/users:latest";
  // The image's own User, WorkingDir, Env, Entrypoint and Cmd.
  auto plain = with_context(d_->container_config("image-default", {}, users));
  auto st = d_->run_to_exit(pod_id_, plain, pod_);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code(), 0);
  auto lines = cri_log_lines(log_of(plain, pod_));
  ASSERT_EQ(lines.size(), 1u) << log_of(plain, pod_);
  EXPECT_EQ(lines[0], "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)");

  // args replace the image's Cmd and keep its Entrypoint (sh -c).
  auto with_args = with_context(d_->container_config("image-args", {}, users));
  with_args.add_args("echo args=$0-$(id -un)");
  st = d_->run_to_exit(pod_id_, with_args, pod_);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(cri_log_lines(log_of(with_args, pod_)), std::vector<std::string>{"args=/bin/sh-app"});

  auto kv = run(probe("image-user", "echo foo=$FOO\n", users));
  EXPECT_EQ(kv["uid"], "1000");
  EXPECT_EQ(kv["gid"], "1000");
  EXPECT_EQ(kv["groups"], "1000 2000");
  EXPECT_EQ(kv["pwd"], "/home/app");
  EXPECT_EQ(kv["home"], "/home/app");
  EXPECT_EQ(kv["foo"], "bar");

  auto by_name = probe("by-name", "", users);
  by_name.mutable_linux()->mutable_security_context()->set_run_as_username("app");
  by_name.mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(2000);
  kv = run(by_name);
  EXPECT_EQ(kv["uid"], "1000");
  EXPECT_EQ(kv["gid"], "2000");

  auto as_root = probe("as-root", "", users);
  as_root.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(0);
  kv = run(as_root);
  EXPECT_EQ(kv["uid"], "0");
  EXPECT_EQ(kv["gid"], "0");
}

TEST_F(CriSecurityTest, Capabilities) {
  auto kv = run(probe("default-caps"));
  EXPECT_EQ(kv["uid"], "0");
  EXPECT_EQ(kv["capeff"], "00000000a80425fb") << "containerd's default set";
  EXPECT_EQ(kv["capbnd"], "00000000a80425fb");

  auto only = probe("only-two");
  auto* caps = only.mutable_linux()->mutable_security_context()->mutable_capabilities();
  caps->add_drop_capabilities("ALL");
  caps->add_add_capabilities("NET_ADMIN");
  caps->add_add_capabilities("CAP_CHOWN");
  kv = run(only);
  EXPECT_EQ(kv["capeff"], "0000000000001001");
  EXPECT_EQ(kv["capbnd"], "0000000000001001");

  auto fewer = probe("fewer");
  fewer.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_drop_capabilities("NET_RAW");
  kv = run(fewer);
  EXPECT_EQ(kv["capeff"], "00000000a80405fb");
}

TEST_F(CriSecurityTest, SeccompProfiles) {
  auto kv = run(probe("runtime-default"));
  EXPECT_EQ(kv["seccomp"], "2");
  EXPECT_EQ(kv["mkdir"], "ok");

  auto unconfined = probe("unconfined");
  unconfined.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
      v1::SecurityProfile::Unconfined);
  kv = run(unconfined);
  EXPECT_EQ(kv["seccomp"], "0");

  // A local profile that allows everything but mkdir.
  std::string profile = d_->dir() + "/no-mkdir.json";
  std::ofstream(profile) << R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[)"
                         << R"({"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]})";
  auto local = probe("localhost");
  local.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
      v1::SecurityProfile::Localhost);
  local.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_localhost_ref(profile);
  kv = run(local);
  EXPECT_EQ(kv["seccomp"], "2");
  EXPECT_EQ(kv["mkdir"], "fail");

  // The same through the deprecated string older kubelets send.
  auto legacy = probe("legacy");
  legacy.mutable_linux()->mutable_security_context()->clear_seccomp();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  legacy.mutable_linux()->mutable_security_context()->set_seccomp_profile_path("localhost/" + profile);
#pragma GCC diagnostic pop
  kv = run(legacy);
  EXPECT_EQ(kv["mkdir"], "fail");

  // Unset in the container: the pod's choice applies.
  auto pod = d_->pod_config("sec-pod-seccomp");
  pod.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto inherit = probe("inherit");
  inherit.mutable_linux()->mutable_security_context()->clear_seccomp();
  auto st = d_->run_to_exit(pod_id, inherit, pod);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(key_values(cri_log_lines(log_of(inherit, pod)))["seccomp"], "0");
  EXPECT_TRUE(d_->remove_pod(pod_id).ok());
}

TEST_F(CriSecurityTest, PrivilegedContainer) {
  make_privileged_pod();
  auto c = probe("privileged");
  c.mutable_linux()->mutable_security_context()->set_privileged(true);
  auto kv = run(c, true);
  EXPECT_EQ(kv["capeff"], own_capeff()) << "every capability berthd has";
  EXPECT_EQ(kv["seccomp"], "0");
  EXPECT_EQ(kv["kmsg"], "yes") << "the host's devices";
  EXPECT_EQ(kv["masked"], "16") << "nothing masked";
  EXPECT_EQ(kv["procsys"], "") << "nothing read-only";

  // An unprivileged container of a privileged pod stays unprivileged.
  kv = run(probe("plain-in-privileged-pod"), true);
  EXPECT_EQ(kv["capeff"], "00000000a80425fb");
  EXPECT_EQ(kv["kmsg"], "no");
  EXPECT_EQ(kv["seccomp"], "2");
}

TEST_F(CriSecurityTest, AppArmorAndSelinuxOptionsAreAccepted) {
  auto c = probe("lsm");
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Localhost);
  sc->mutable_apparmor()->set_localhost_ref("k8s-apparmor-example");
  sc->mutable_selinux_options()->set_user("system_u");
  sc->mutable_selinux_options()->set_role("system_r");
  sc->mutable_selinux_options()->set_type("container_t");
  sc->mutable_selinux_options()->set_level("s0:c1,c2");
  auto kv = run(c);
  EXPECT_EQ(kv["uid"], "0");
  auto pod = d_->pod_config("lsm-pod");
  pod.mutable_linux()->mutable_security_context()->mutable_selinux_options()->set_type("spc_t");
  pod.mutable_linux()->mutable_security_context()->mutable_apparmor()->set_profile_type(
      v1::SecurityProfile::RuntimeDefault);
  std::string pod_id = d_->run_pod(pod);
  EXPECT_FALSE(pod_id.empty());
  if (!pod_id.empty()) {
    EXPECT_TRUE(d_->remove_pod(pod_id).ok());
  }
}

TEST_F(CriSecurityTest, ResourcesReachTheCgroupAndCanBeUpdated) {
  auto c = d_->container_config("limited", {"/bin/sleep", "1000"});
  auto* r = c.mutable_linux()->mutable_resources();
  r->set_memory_limit_in_bytes(64ll << 20);
  r->set_cpu_shares(512);
  r->set_cpu_period(100000);
  r->set_cpu_quota(50000);
  r->set_cpuset_cpus("0");
  std::string id = d_->create_container(pod_id_, c, pod_);
  ASSERT_TRUE(d_->start_container(id));
  std::string mem = d_->container_cgroup_dir(id, "memory");
  std::string cpu = d_->container_cgroup_dir(id, "cpu");
  std::string cpuset = d_->container_cgroup_dir(id, "cpuset");
  ASSERT_FALSE(mem.empty());
  auto value = [](const std::string& path) {
    std::string v = read_text_file(path);
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
  };
  EXPECT_EQ(value(mem + "/memory.limit_in_bytes"), std::to_string(64ll << 20));
  EXPECT_EQ(value(cpu + "/cpu.shares"), "512");
  EXPECT_EQ(value(cpu + "/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(value(cpu + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(value(cpuset + "/cpuset.cpus"), "0");
  // The container's process is in that cgroup.
  auto pid = std::to_string(nlohmann::json::parse(d_->container_info(id)).value("pid", 0));
  EXPECT_NE(read_text_file(mem + "/cgroup.procs").find(pid), std::string::npos);

  v1::UpdateContainerResourcesRequest update;
  update.set_container_id(id);
  update.mutable_linux()->set_memory_limit_in_bytes(128ll << 20);
  update.mutable_linux()->set_cpu_shares(1024);
  update.mutable_linux()->set_cpu_period(100000);
  update.mutable_linux()->set_cpu_quota(200000);
  v1::UpdateContainerResourcesResponse updated;
  auto s = d_->runtime().UpdateContainerResources(call_context().get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(value(mem + "/memory.limit_in_bytes"), std::to_string(128ll << 20));
  EXPECT_EQ(value(cpu + "/cpu.shares"), "1024");
  EXPECT_EQ(value(cpu + "/cpu.cfs_quota_us"), "200000");
  auto st = d_->container_status(id);
  EXPECT_EQ(st.resources().linux().memory_limit_in_bytes(), 128ll << 20);
  EXPECT_EQ(st.resources().linux().cpu_shares(), 1024);

  v1::StopContainerRequest stop;
  stop.set_container_id(id);
  v1::StopContainerResponse stopped;
  ASSERT_TRUE(d_->runtime().StopContainer(call_context().get(), stop, &stopped).ok());
  s = d_->runtime().UpdateContainerResources(call_context().get(), update, &updated);
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::FAILED_PRECONDITION) << "an exited container: " << s.error_message();
}

TEST_F(CriSecurityTest, MountsDevicesAndPropagation) {
  make_privileged_pod();
  std::string rw = d_->dir() + "/vol-rw", ro = d_->dir() + "/vol-ro", shared = d_->dir() + "/vol-shared";
  for (auto& dir : {rw, ro, shared}) ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir;
  std::ofstream(ro + "/given") << "from-host";
  // Propagation needs a shared source; this host's / is private, so make one.
  ASSERT_EQ(::mount(shared.c_str(), shared.c_str(), nullptr, MS_BIND, nullptr), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount_shared{shared};
  ASSERT_EQ(::mount(nullptr, shared.c_str(), nullptr, MS_SHARED, nullptr), 0);
  ASSERT_EQ(::mkdir((shared + "/from-host").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((shared + "/from-ctr").c_str(), 0755), 0);

  auto c = d_->container_config("mounts", {"/bin/sleep", "1000"});
  auto add_mount = [](v1::ContainerConfig& cfg, const std::string& host, const char* path, bool readonly,
                      v1::MountPropagation propagation = v1::PROPAGATION_PRIVATE) {
    auto* m = cfg.add_mounts();
    m->set_host_path(host);
    m->set_container_path(path);
    m->set_readonly(readonly);
    m->set_propagation(propagation);
  };
  add_mount(c, rw, "/rw", false);
  add_mount(c, ro, "/ro", true);
  add_mount(c, shared, "/h2c", false, v1::PROPAGATION_HOST_TO_CONTAINER);
  auto* dev = c.add_devices();
  dev->set_host_path("/dev/zero");
  dev->set_container_path("/dev/xzero");
  dev->set_permissions("rw");
  // Not among the devices every container may use, so its rule alone decides.
  dev = c.add_devices();
  dev->set_host_path("/dev/kmsg");
  dev->set_container_path("/dev/xkmsg");
  dev->set_permissions("r");
  std::string id = d_->create_container(pod_id_, c, pod_);
  ASSERT_TRUE(d_->start_container(id));

  v1::ExecSyncResponse out;
  auto sh = [&](const std::string& script) {
    auto s = d_->exec_sync(id, {"/bin/sh", "-c", script}, &out, 20);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.stdout();
  };
  EXPECT_EQ(sh("echo hi > /rw/written && echo ok"), "ok\n");
  EXPECT_EQ(read_text_file(rw + "/written"), "hi\n");
  EXPECT_EQ(sh("cat /ro/given; touch /ro/x 2>/dev/null && echo writable || echo refused"), "from-hostrefused\n");
  EXPECT_EQ(sh("head -c 4 /dev/xzero | wc -c"), "4\n");
  EXPECT_EQ(sh("(exec 3>/dev/xkmsg) 2>/dev/null && echo opened || echo denied"), "denied\n")
      << "the device is readable only";
  EXPECT_EQ(sh("[ -c /dev/kmsg ] && echo present || echo absent"), "absent\n") << "only what was asked for";
  EXPECT_EQ(sh("echo x > /dev/null && echo ok"), "ok\n") << "the default devices stay";

  // A mount made on the host after the start shows inside (host to container).
  ASSERT_EQ(::mount("tmpfs", (shared + "/from-host").c_str(), "tmpfs", 0, "size=1m"), 0);
  Unmount unmount_host{shared + "/from-host"};
  std::ofstream(shared + "/from-host/marker") << "late";
  EXPECT_EQ(sh("cat /h2c/from-host/marker"), "late");

  // Bidirectional: a privileged container's mount shows on the host.
  auto b = d_->container_config("bidir", {"/bin/sh", "-c",
                                          "mount -t tmpfs -o size=1m none /bidir/from-ctr && "
                                          "echo up > /bidir/from-ctr/marker && sleep 1000"});
  b.mutable_linux()->mutable_security_context()->set_privileged(true);
  add_mount(b, shared, "/bidir", false, v1::PROPAGATION_BIDIRECTIONAL);
  std::string bid = d_->create_container(priv_id_, b, priv_);
  ASSERT_TRUE(d_->start_container(bid));
  Unmount unmount_ctr{shared + "/from-ctr"};
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = read_text_file(shared + "/from-ctr/marker") == "up\n";
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(seen) << "the container's mount did not reach the host";
  // And, the host-to-container mount being a slave of the same source, in the
  // other container too.
  EXPECT_EQ(sh("cat /h2c/from-ctr/marker"), "up\n");
}

TEST_F(CriSecurityTest, TerminalAndStdin) {
  auto tty = probe("tty");
  tty.set_tty(true);
  auto kv = run(tty);
  EXPECT_EQ(kv["tty"], "yes");
  auto in = probe("stdin");
  in.set_stdin(true);
  in.set_stdin_once(true);
  kv = run(in);
  EXPECT_NE(kv["stdin"], "/dev/null");
  EXPECT_FALSE(kv["stdin"].empty());
}

}  // namespace
}  // namespace berth::testing

// Pod sandboxes without a pause image, as their containers see them: the pinned
// net/ipc/uts namespaces (and the pod pid namespace held by a holder process) shared
// by every container, the NamespaceOption modes POD/CONTAINER/NODE/TARGET, host
// network pods, hostname, DNS, /etc/hosts, sysctls, cgroup parents, and the CNI
// network with its pod IP and port mappings reachable from the host.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

class CriNetworkTest : public SharedBerthdTest<CriNetworkTest> {
 protected:
  std::map<std::string, std::string> probe(const std::string& pod_id, const v1::PodSandboxConfig& pod,
                                           const std::string& name, const std::string& script,
                                           v1::NamespaceOption* ns = nullptr) {
    auto c = d_->container_config(name, {"/bin/sh", "-c", script});
    if (ns) *c.mutable_linux()->mutable_security_context()->mutable_namespace_options() = *ns;
    auto st = d_->run_to_exit(pod_id, c, pod);
    if (!st) return {};
    std::string log = read_text_file(pod.log_directory() + "/" + c.log_path());
    EXPECT_EQ(st->exit_code(), 0) << log;
    return key_values(cri_log_lines(log));
  }
  std::string exec(const std::string& id, const std::string& script) {
    v1::ExecSyncResponse out;
    auto s = d_->exec_sync(id, {"/bin/sh", "-c", script}, &out, 20);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::string text = out.stdout();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }
};

std::string host_ns(const char* kind) {
  char buf[128] = {};
  ssize_t n = ::readlink((std::string("/proc/self/ns/") + kind).c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

constexpr const char* kNamespaces =
    "for n in net ipc uts pid; do echo $n=$(readlink /proc/self/ns/$n); done\n"
    "echo hostname=$(hostname)\n"
    "echo self=$$\n"
    // How many visible processes run a command line starting with $1 (no ps needed).
    "running() { for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c \"^$1\"; }\n";

// Connects to ip:port and returns what the server says before closing ("" if
// nothing answered within the timeout).
std::string tcp_read(const std::string& ip, int port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    char buf[256];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Polls until the server answers `want`.
bool answers(const std::string& ip, int port, const std::string& want) {
  for (int i = 0; i < 100; ++i) {
    if (tcp_read(ip, port, std::chrono::milliseconds(500)) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST_F(CriNetworkTest, ContainersShareThePodsPinnedNamespaces) {
  auto pod = d_->pod_config("shared-ns");
  pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto info = nlohmann::json::parse(d_->pod_info(pod_id));
  int holder = info.value("pid", 0);
  ASSERT_GT(holder, 0) << "a pod pid namespace is held by a process: " << info.dump();

  v1::NamespaceOption pod_pid;
  pod_pid.set_pid(v1::POD);
  auto c = d_->container_config("first", {"/bin/sh", "-c", "echo shared > /dev/shm/note; exec sleep 1000"});
  *c.mutable_linux()->mutable_security_context()->mutable_namespace_options() = pod_pid;
  std::string first = d_->create_container(pod_id, c, pod);
  ASSERT_TRUE(d_->start_container(first));
  auto second = probe(pod_id, pod, "second",
                      std::string(kNamespaces) +
                          "for i in $(seq 50); do [ -e /dev/shm/note ] && break; sleep 0.1; done\n"
                          "echo shm=$(cat /dev/shm/note)\n"
                          "echo sleeper=$(running 'sleep 1000')\n"
                          "echo init=$(cat /proc/1/cmdline | tr '\\0' ' ')\n",
                      &pod_pid);
  for (const char* ns : {"net", "ipc", "uts", "pid"}) {
    EXPECT_EQ(second[ns], exec(first, std::string("readlink /proc/self/ns/") + ns)) << ns << " is not shared";
    EXPECT_NE(second[ns], host_ns(ns)) << ns << " is the host's";
  }
  EXPECT_EQ(second["hostname"], "shared-ns");
  EXPECT_EQ(second["shm"], "shared") << "the pod's /dev/shm";
  EXPECT_EQ(second["sleeper"], "1") << "the other container's process is visible in the pod pid namespace";
  EXPECT_NE(second["self"], "1");
  EXPECT_NE(second["init"].find("pause"), std::string::npos) << "pid 1 is the holder: " << second["init"];

  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_TRUE(wait_process_gone(holder)) << "the pid namespace holder outlived its pod";
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriNetworkTest, ContainerAndTargetPidNamespaces) {
  auto pod = d_->pod_config("pid-modes");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string target = d_->create_container(pod_id, d_->container_config("target", {"/bin/sleep", "1001"}), pod);
  ASSERT_TRUE(d_->start_container(target));

  auto own = probe(pod_id, pod, "own", std::string(kNamespaces) + "echo sleeper=$(running '/bin/sleep 1001')\n");
  EXPECT_EQ(own["self"], "1") << "its own pid namespace";
  EXPECT_EQ(own["sleeper"], "0");
  EXPECT_EQ(own["net"], exec(target, "readlink /proc/self/ns/net"));

  v1::NamespaceOption targeted;
  targeted.set_pid(v1::TARGET);
  targeted.set_target_id(target);
  auto joined = probe(pod_id, pod, "joined",
                      std::string(kNamespaces) + "echo init=$(cat /proc/1/cmdline | tr '\\0' ' ')\n", &targeted);
  EXPECT_EQ(joined["pid"], exec(target, "readlink /proc/self/ns/pid"));
  EXPECT_EQ(joined["init"], "/bin/sleep 1001");
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
}

TEST_F(CriNetworkTest, HostNamespacesPod) {
  auto pod = d_->pod_config("hostns");
  auto* ns = pod.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::NODE);
  ns->set_pid(v1::NODE);
  ns->set_ipc(v1::NODE);
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto st = d_->pod_status(pod_id);
  EXPECT_EQ(st.network().ip(), "") << "a host-network pod reports no IP of its own";
  EXPECT_EQ(st.linux().namespaces().options().network(), v1::NODE);
  EXPECT_EQ(d_->bridge_ports(), 0) << "no CNI for a host-network pod";

  v1::NamespaceOption host;
  host.set_network(v1::NODE);
  host.set_pid(v1::NODE);
  host.set_ipc(v1::NODE);
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  auto kv = probe(pod_id, pod, "hostns",
                  std::string(kNamespaces) + "echo berthd_visible=$([ -d /proc/" + std::to_string(::getpid()) +
                      " ] && echo yes || echo no)\n"
                      "echo hosts_lines=$(wc -l < /etc/hosts)\n",
                  &host);
  EXPECT_EQ(kv["net"], host_ns("net"));
  EXPECT_EQ(kv["ipc"], host_ns("ipc"));
  EXPECT_EQ(kv["pid"], host_ns("pid"));
  EXPECT_EQ(kv["berthd_visible"], "yes");
  EXPECT_EQ(kv["hostname"], name);
  int host_lines = 0;
  for (char ch : read_text_file("/etc/hosts")) host_lines += ch == '\n';
  EXPECT_EQ(kv["hosts_lines"], std::to_string(host_lines)) << "the node's /etc/hosts";
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

TEST_F(CriNetworkTest, HostnameDnsHostsAndSysctls) {
  auto pod = d_->pod_config("dns");
  pod.set_hostname("web-1");
  auto* dns = pod.mutable_dns_config();
  dns->add_servers("10.96.0.10");
  dns->add_servers("10.96.0.11");
  dns->add_searches("berth-test.svc.cluster.local");
  dns->add_searches("svc.cluster.local");
  dns->add_options("ndots:5");
  auto& sysctls = *pod.mutable_linux()->mutable_sysctls();
  sysctls["net.ipv4.ip_unprivileged_port_start"] = "100";
  sysctls["net.ipv4.ping_group_range"] = "0 2147483647";
  sysctls["kernel.shm_rmid_forced"] = "1";
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string resolv, hosts;
  auto c = d_->container_config("files", {"/bin/sh", "-c",
                                          "echo hostname=$(hostname); echo etc_hostname=$(cat /etc/hostname);"
                                          "echo port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start);"
                                          "echo ping=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\\t' ' ');"
                                          "echo shm_rmid=$(cat /proc/sys/kernel/shm_rmid_forced);"
                                          "cat /etc/resolv.conf >&2; grep web-1 /etc/hosts | sed 's/^/hosts=/'"});
  auto st = d_->run_to_exit(pod_id, c, pod);
  ASSERT_TRUE(st.has_value());
  std::string log = read_text_file(pod.log_directory() + "/files.log");
  auto kv = key_values(cri_log_lines(log));
  EXPECT_EQ(kv["hostname"], "web-1");
  EXPECT_EQ(kv["etc_hostname"], "web-1");
  EXPECT_EQ(kv["port_start"], "100");
  EXPECT_EQ(kv["ping"], "0 2147483647");
  EXPECT_EQ(kv["shm_rmid"], "1");
  EXPECT_NE(kv["hosts"].find("web-1"), std::string::npos) << log;
  auto resolv_lines = cri_log_lines(log, "stderr");
  EXPECT_EQ(resolv_lines,
            (std::vector<std::string>{"search berth-test.svc.cluster.local svc.cluster.local", "nameserver 10.96.0.10",
                                      "nameserver 10.96.0.11", "options ndots:5"}));
  // The node keeps its own values.
  EXPECT_NE(read_text_file("/proc/sys/net/ipv4/ip_unprivileged_port_start"), "100\n");
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
}

TEST_F(CriNetworkTest, CgroupParent) {
  std::string parent = "/berth-cri-parent-" + std::to_string(::getpid());
  auto pod = d_->pod_config("cgparent");
  pod.mutable_linux()->set_cgroup_parent(parent);
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  EXPECT_EQ(nlohmann::json::parse(d_->pod_info(pod_id)).value("cgroupPath", ""), parent);
  std::string id = d_->create_container(pod_id, d_->container_config("in-parent", {"/bin/sleep", "1000"}), pod);
  ASSERT_TRUE(d_->start_container(id));
  std::string mem = d_->container_cgroup_dir(id, "memory");
  EXPECT_TRUE(mem.starts_with("/sys/fs/cgroup/memory" + parent + "/")) << mem;
  std::string pid = std::to_string(nlohmann::json::parse(d_->container_info(id)).value("pid", 0));
  EXPECT_NE(read_text_file(mem + "/cgroup.procs").find(pid), std::string::npos);
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  struct stat st;
  EXPECT_NE(::stat(mem.c_str(), &st), 0) << "the container's cgroup outlived it: " << mem;
  // The parent is kubelet's: berth leaves it. Tidy up the host.
  if (DIR* d = ::opendir("/sys/fs/cgroup")) {
    while (auto* e = ::readdir(d)) ::rmdir(("/sys/fs/cgroup/" + std::string(e->d_name) + parent).c_str());
    ::closedir(d);
  }
}

TEST_F(CriNetworkTest, PodIpAndPortMappings) {
  std::random_device rd;
  int host_port = 31000 + static_cast<int>(rd() % 2000);
  auto pod = d_->pod_config("ports");
  auto* pm = pod.add_port_mappings();
  pm->set_protocol(v1::TCP);
  pm->set_container_port(8080);
  pm->set_host_port(host_port);
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  std::string ip = d_->pod_status(pod_id).network().ip();
  ASSERT_TRUE(ip.starts_with(d_->subnet_prefix())) << ip;
  EXPECT_EQ(d_->bridge_ports(), 1);

  std::string id = d_->create_container(
      pod_id,
      d_->container_config("server", {"/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/echo", "hello-from-pod"}),
      pod);
  ASSERT_TRUE(d_->start_container(id));
  EXPECT_EQ(exec(id, "busybox ip -4 addr show eth0 | awk '/inet /{print $2}'"), ip + "/24");
  EXPECT_EQ(exec(id, "busybox ip route | awk '/^default/{print $3}'"), d_->subnet_prefix() + "1");

  EXPECT_TRUE(answers(ip, 8080, "hello-from-pod\n")) << "the pod IP is not reachable from the node";
  EXPECT_TRUE(answers(d_->subnet_prefix() + "1", host_port, "hello-from-pod\n"))
      << "hostPort " << host_port << " does not reach the pod";
  auto rules = run_tool({"/usr/sbin/iptables-save", "-t", "nat"}, 20);
  EXPECT_NE(rules.output.find(pod_id), std::string::npos) << "no port mapping rules name the pod";

  ASSERT_TRUE(d_->remove_pod(pod_id).ok());
  rules = run_tool({"/usr/sbin/iptables-save", "-t", "nat"}, 20);
  EXPECT_EQ(rules.output.find(pod_id), std::string::npos) << "port mapping rules outlived the pod";
  EXPECT_EQ(tcp_read(d_->subnet_prefix() + "1", host_port, std::chrono::milliseconds(300)), "");
  EXPECT_EQ(d_->leftovers_of(pod_id), "");
}

}  // namespace
}  // namespace berth::testing

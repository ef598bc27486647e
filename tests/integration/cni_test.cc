// Integration tests for network/ with Debian's real CNI plugins (bridge, host-local,
// portmap) and pinned network namespaces: a pod gets an address, is reachable from
// the host directly and through a host port, CHECK passes, and DEL (also after a
// crash half-way through ADD, after the netns went away, after the config changed)
// leaves no veth, no IP allocation and no iptables rules. Root only.
//
// Each test uses its own bridge (bt<random>), a /24 in 10.200.0.0/16 and a
// host-local dataDir in its temp dir, so it never touches a real network.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "network/cni_config.h"
#include "network/cni_invoker.h"
#include "runtime/linux/pinned_namespaces.h"
#include "tests/integration/runtime_fixture.h"
#include "tests/support/loopback_port.h"
#include "tests/support/test_files.h"

extern char** environ;

namespace berth::network {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::run_command;

constexpr const char* kPluginDir = "/usr/lib/cni";

std::string sh_out(const std::string& script) { return run_command({"/bin/sh", "-c", script}).out; }

std::set<std::string> nat_chains() {
  std::set<std::string> out;
  for (auto& line : testing::lines_of(sh_out("iptables -t nat -S"))) {
    if (starts_with(line, "-N ")) out.insert(line.substr(3));
  }
  return out;
}

bool link_exists(const std::string& name) {
  return run_command({"/usr/sbin/ip", "link", "show", "dev", name}).code == 0;
}

std::string host_ip() {
  auto words = testing::words(sh_out("ip -4 -o route get 1.1.1.1 2>/dev/null"));
  for (size_t i = 0; i + 1 < words.size(); ++i)
    if (words[i] == "src") return words[i + 1];
  return "";
}

// An HTTP/1.0 GET with short timeouts; the whole response, or "" on failure.
std::string http_get(const std::string& ip, int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  std::string response;
  pollfd p{fd, POLLOUT, 0};
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = 0;
  socklen_t len = sizeof err;
  if ((rc == 0 || (errno == EINPROGRESS && ::poll(&p, 1, 2000) == 1)) &&
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
    std::string request = "GET " + path + " HTTP/1.0\r\nHost: pod\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      p.events = POLLIN;
      char buf[4096];
      while (::poll(&p, 1, 2000) == 1) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        response.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return response;
}

// A process in the background (the pod's web server); killed in the destructor.
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (::posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) pid_ = -1;
  }
  ~Background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

 private:
  pid_t pid_ = -1;
};

class CniTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || ::access((std::string(kPluginDir) + "/bridge").c_str(), X_OK) != 0) return;
    chains_before_ = new std::set<std::string>(nat_chains());
    ip_forward_before_ = testing::slurp("/proc/sys/net/ipv4/ip_forward").value_or("");
  }

  // The portmap plugin keeps its shared CNI-HOSTPORT-* chains after DEL (they serve
  // every pod); remove the ones this suite caused, and put ip_forward (the bridge
  // plugin turns it on for a gateway) back as it was.
  static void TearDownTestSuite() {
    if (!chains_before_) return;
    std::set<std::string> added;
    for (auto& chain : nat_chains())
      if (!chains_before_->count(chain) && starts_with(chain, "CNI-")) added.insert(chain);
    for (const char* parent : {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}) {
      auto lines = testing::lines_of(sh_out(std::string("iptables -t nat -L ") + parent + " -n --line-numbers"));
      std::vector<int> doomed;
      for (auto& line : lines) {
        auto w = testing::words(line);
        if (w.size() >= 2 && std::isdigit(static_cast<unsigned char>(w[0][0])) && added.count(w[1]))
          doomed.push_back(std::stoi(w[0]));
      }
      std::sort(doomed.rbegin(), doomed.rend());
      for (int n : doomed) sh_out(std::string("iptables -t nat -D ") + parent + " " + std::to_string(n));
    }
    for (auto& chain : added) sh_out("iptables -t nat -F " + chain);
    for (auto& chain : added) sh_out("iptables -t nat -X " + chain);
    if (!ip_forward_before_.empty()) testing::write_str("/proc/sys/net/ipv4/ip_forward", ip_forward_before_);
    delete chains_before_;
    chains_before_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!chains_before_) GTEST_SKIP() << "no CNI plugins in " << kPluginDir;
    char tmpl[] = "/tmp/berth-cni-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    std::mt19937 rng(std::random_device{}());
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%06x", static_cast<unsigned>(rng() & 0xffffff));
    suffix_ = suffix;
    bridge_ = "bt" + suffix_;
    net_name_ = "berth-test-" + suffix_;
    // A /24 no route on this host knows about yet.
    for (int tries = 0; tries < 50; ++tries) {
      int octet = static_cast<int>(rng() % 250) + 1;
      std::string prefix = "10.200." + std::to_string(octet) + ".";
      if (sh_out("ip -4 route show; ip -4 addr show").find(prefix) == std::string::npos) {
        subnet_prefix_ = prefix;
        break;
      }
    }
    ASSERT_FALSE(subnet_prefix_.empty());
    for (auto* d : {"conf", "cache", "ipam", "bin", "pods", "www"})
      ASSERT_TRUE(make_dirs(tmp_ + "/" + d).has_value());
    write_conflist(tmp_ + "/conf/10-test.conflist", {});
    auto cfg = load_default_network(tmp_ + "/conf");
    ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
    config_ = *cfg;
  }

  void TearDown() override {
    if (tmp_.empty()) return;
    for (auto& [id, netns] : added_) {
      CniAttachment a;
      a.container_id = id;
      a.netns_path = netns;
      (void)invoker().del(a, &config_);
    }
    for (auto& pod : pods_) (void)linux_ns::release_pinned_namespaces(pod);
    for (auto& link : {bridge_, bridge_ + "x"})
      if (link_exists(link)) run_command({"/usr/sbin/ip", "link", "del", link});
    // Nothing of this test may stay mounted.
    auto mounts = testing::slurp("/proc/self/mountinfo").value_or("");
    EXPECT_EQ(mounts.find(tmp_), std::string::npos) << mounts;
    (void)remove_tree(tmp_);
  }

  // The test network, with `extra` plugins after bridge and portmap.
  void write_conflist(const std::string& path, const std::vector<json>& extra, const std::string& bridge = "",
                      const std::string& name = "") {
    json plugins = json::array();
    plugins.push_back({{"type", "bridge"},
                       {"bridge", bridge.empty() ? bridge_ : bridge},
                       {"isGateway", true},
                       {"ipMasq", true},
                       {"hairpinMode", true},
                       {"ipam",
                        {{"type", "host-local"},
                         {"ranges", json::array({json::array({{{"subnet", subnet_prefix_ + "0/24"}}})})},
                         {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
                         {"dataDir", tmp_ + "/ipam"}}}});
    plugins.push_back({{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}});
    for (auto& p : extra) plugins.push_back(p);
    json doc = {{"cniVersion", "1.0.0"}, {"name", name.empty() ? net_name_ : name}, {"plugins", plugins}};
    ASSERT_TRUE(write_file_atomic(path, doc.dump(2), 0644).has_value());
  }

  CniNetworkConfig config_with(const std::vector<json>& extra) {
    std::string path = tmp_ + "/variant.conflist";
    write_conflist(path, extra);
    auto cfg = load_network_file(path);
    EXPECT_TRUE(cfg.has_value()) << cfg.error().message;
    return *cfg;
  }

  // A fake plugin script in the test's bin dir (searched before /usr/lib/cni).
  void fake_plugin(const std::string& name, const std::string& body) {
    ASSERT_TRUE(write_file_atomic(tmp_ + "/bin/" + name, "#!/bin/sh\n" + body, 0755).has_value());
  }

  CniInvoker invoker(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    return CniInvoker({tmp_ + "/bin", kPluginDir}, tmp_ + "/cache", timeout);
  }

  // A pinned netns for a pod.
  std::string new_pod(const std::string& name) {
    std::string dir = tmp_ + "/pods/" + name;
    linux_ns::PinRequest req;
    req.ipc = false;
    req.uts = false;
    auto pinned = linux_ns::pin_new_namespaces(dir, req);
    EXPECT_TRUE(pinned.has_value()) << pinned.error().message;
    pods_.push_back(dir);
    return pinned ? pinned->net : "";
  }

  CniAttachment attachment(const std::string& id, const std::string& netns, int host_port = 0) {
    CniAttachment a;
    a.container_id = id;
    a.netns_path = netns;
    a.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", id},
              {"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", "uid-" + id}};
    if (host_port)
      a.capability_args = {{"portMappings", json::array({{{"hostPort", host_port},
                                                          {"containerPort", 8080},
                                                          {"protocol", "tcp"},
                                                          {"hostIP", ""}}})}};
    added_.emplace_back(id, netns);
    return a;
  }

  std::string unique_id(const std::string& what) { return "berthtest" + suffix_ + what; }

  std::vector<std::string> bridge_ports() {
    std::vector<std::string> out;
    for (auto& line : testing::lines_of(sh_out("ip -o link show master " + bridge_ + " 2>/dev/null")))
      if (!line.empty()) out.push_back(line);
    return out;
  }

  // host-local keeps one file per allocated IP (plus "lock" and "last_reserved_ip.N").
  std::vector<std::string> ipam_allocations() {
    std::vector<std::string> out;
    std::string dir = tmp_ + "/ipam/" + net_name_;
    for (auto& name : testing::words(sh_out("ls " + dir + " 2>/dev/null")))
      if (starts_with(name, "10.")) out.push_back(name);
    return out;
  }

  bool iptables_mention(const std::string& text) {
    return sh_out("iptables-save -t nat").find(text) != std::string::npos;
  }

  std::string host_veth(const CniResult& result) {
    for (auto& i : result.interfaces)
      if (i.sandbox.empty() && i.name != bridge_) return i.name;
    return "";
  }

  // Bridge DEL (up to at least plugins 1.5) finds the IPs to un-masquerade on the
  // pod's interface; when the netns or eth0 is already gone it removes the address
  // lease but leaves its per-pod ipMasq chain (containernetworking/plugins#810).
  // Those cases pass Masq::may_leak; the suite teardown removes the leftover chains.
  enum class Masq { removed, may_leak };
  void expect_clean(const std::string& id, const std::string& veth, Masq masq = Masq::removed) {
    if (!veth.empty()) {
      EXPECT_FALSE(link_exists(veth)) << veth;
    }
    EXPECT_TRUE(bridge_ports().empty());
    EXPECT_TRUE(ipam_allocations().empty());
    std::string rules = sh_out("iptables-save -t nat");
    for (auto& line : testing::lines_of(rules)) {
      if (line.find(id) == std::string::npos) continue;
      bool masq_rule = line.find("MASQUERADE") != std::string::npos || line.find("-j ACCEPT") != std::string::npos ||
                       (starts_with(line, "-A POSTROUTING -s ") && line.find("-j CNI-") != std::string::npos);
      if (masq == Masq::may_leak && masq_rule) continue;
      ADD_FAILURE() << "rule left for " << id << ": " << line;
    }
    EXPECT_FALSE(invoker().has_cache(id, "eth0"));
  }

  static std::set<std::string>* chains_before_;
  static std::string ip_forward_before_;

  std::string tmp_, suffix_, bridge_, net_name_, subnet_prefix_;
  CniNetworkConfig config_;
  std::vector<std::pair<std::string, std::string>> added_;
  std::vector<std::string> pods_;
};

std::set<std::string>* CniTest::chains_before_ = nullptr;
std::string CniTest::ip_forward_before_;

TEST_F(CniTest, AddGivesReachablePodWithHostPortThenCheckAndDelCleanUp) {
  std::string netns = new_pod("web");
  ASSERT_FALSE(netns.empty());
  int host_port = berth::testing::free_loopback_port();
  ASSERT_GT(host_port, 0);
  std::string id = unique_id("web");
  auto inv = invoker();
  auto result = inv.add(attachment(id, netns, host_port), config_);
  ASSERT_TRUE(result.has_value()) << result.error().message;

  auto ips = result->pod_ips();
  ASSERT_EQ(ips.size(), 1u);
  EXPECT_TRUE(starts_with(ips[0], subnet_prefix_)) << ips[0];
  EXPECT_THAT(run_command({"/usr/bin/nsenter", "--net=" + netns, "/usr/sbin/ip", "-o", "-4", "addr", "show", "dev",
                           "eth0"}).out,
              HasSubstr(ips[0] + "/24"));
  std::string veth = host_veth(*result);
  ASSERT_FALSE(veth.empty());
  EXPECT_TRUE(link_exists(veth));
  EXPECT_EQ(ipam_allocations(), std::vector<std::string>{ips[0]});
  EXPECT_TRUE(iptables_mention(id));

  // A web server inside the pod, reached from the host directly and via the host port.
  ASSERT_TRUE(testing::write_str(tmp_ + "/www/hello.txt", "hello from the pod\n"));
  {
    Background server({"/usr/bin/nsenter", "--net=" + netns, "/bin/busybox", "httpd", "-f", "-p", "8080", "-h",
                       tmp_ + "/www"});
    std::string direct;
    for (int i = 0; i < 100 && direct.empty(); ++i) {
      direct = http_get(ips[0], 8080, "/hello.txt");
      if (direct.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_THAT(direct, HasSubstr("hello from the pod"));
    std::string via_host = host_ip();
    if (!via_host.empty()) {
      EXPECT_THAT(http_get(via_host, host_port, "/hello.txt"), HasSubstr("hello from the pod"))
          << "hostPort " << host_port << " on " << via_host;
    }
    // portmap DNATs 127.0.0.1 too, with route_localnet on the bridge and SNAT.
    EXPECT_THAT(http_get("127.0.0.1", host_port, "/hello.txt"), HasSubstr("hello from the pod"));
  }

  // portmap before 1.2 fails CHECK for IPv4-only pods, looking for IPv6 rules it never
  // made (containernetworking/plugins#819); anything else must pass. The CHECK test
  // below runs on a network without portmap.
  auto checked = inv.check(attachment(id, netns));
  if (!checked && checked.error().message.find("portmap CHECK failed") != std::string::npos &&
      checked.error().message.find("could not check ipv6 dnat") != std::string::npos) {
    std::cout << "note: known portmap CHECK bug: " << checked.error().message << "\n";
  } else {
    EXPECT_TRUE(checked.has_value()) << checked.error().message;
  }

  auto deleted = inv.del(attachment(id, netns), nullptr);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  expect_clean(id, veth);
  EXPECT_EQ(http_get("127.0.0.1", host_port, "/hello.txt"), "");
  // DEL twice in a row is fine.
  auto again = inv.del(attachment(id, netns), &config_);
  EXPECT_TRUE(again.has_value()) << again.error().message;
}

TEST_F(CniTest, CheckPassesThenNoticesAMissingInterface) {
  std::string netns = new_pod("chk");
  std::string id = unique_id("chk");
  // bridge + host-local only: see the portmap CHECK note above.
  auto bridge_only = config_;
  bridge_only.plugins.resize(1);
  auto inv = invoker();
  ASSERT_TRUE(inv.add(attachment(id, netns), bridge_only).has_value());
  auto checked = inv.check(attachment(id, netns));
  EXPECT_TRUE(checked.has_value()) << checked.error().message;

  ASSERT_EQ(run_command({"/usr/bin/nsenter", "--net=" + netns, "/usr/sbin/ip", "link", "del", "eth0"}).code, 0);
  checked = inv.check(attachment(id, netns));
  ASSERT_FALSE(checked.has_value());
  EXPECT_THAT(checked.error().message, HasSubstr("CNI plugin bridge CHECK failed"));
  auto deleted = inv.del(attachment(id, netns), nullptr);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  expect_clean(id, "", Masq::may_leak);
}

TEST_F(CniTest, DelWorksAfterTheNetnsIsGone) {
  std::string netns = new_pod("gone");
  std::string id = unique_id("gone");
  auto inv = invoker();
  auto result = inv.add(attachment(id, netns, berth::testing::free_loopback_port()), config_);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  std::string veth = host_veth(*result);
  ASSERT_TRUE(linux_ns::release_pinned_namespaces(tmp_ + "/pods/gone").has_value());
  ASSERT_NE(::access(netns.c_str(), F_OK), 0);

  auto deleted = inv.del(attachment(id, netns), nullptr);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  // The veth went with the netns; the lease and portmap's rules go with DEL.
  expect_clean(id, veth, Masq::may_leak);
  EXPECT_TRUE(inv.del(attachment(id, netns), nullptr).has_value());
}

TEST_F(CniTest, FailedAddLeavesNoVethAndNoAddress) {
  std::string netns = new_pod("fail");
  fake_plugin("explode",
              "cat >/dev/null\n"
              "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
              "  echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"boom\",\"details\":\"the test wanted it\"}'\n"
              "  exit 1\n"
              "fi\n");
  std::string id = unique_id("fail");
  auto inv = invoker();
  auto result = inv.add(attachment(id, netns, berth::testing::free_loopback_port()),
                        config_with({{{"type", "explode"}}}));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, EINVAL);
  EXPECT_THAT(result.error().message, HasSubstr("CNI plugin explode ADD failed (code 7): boom; the test wanted it"));
  expect_clean(id, "");
  EXPECT_EQ(run_command({"/usr/bin/nsenter", "--net=" + netns, "/usr/sbin/ip", "link", "show", "eth0"}).code, 1);

  // A plugin missing from every dir: same outcome.
  auto missing = inv.add(attachment(id, netns), config_with({{{"type", "no-such-plugin"}}}));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_THAT(missing.error().message,
              HasSubstr("CNI plugin 'no-such-plugin' not found in dirs " + tmp_ + "/bin, /usr/lib/cni"));
  expect_clean(id, "");
}

TEST_F(CniTest, TimedOutPluginIsKilledAndAddRolledBack) {
  std::string netns = new_pod("slow");
  fake_plugin("sleepy",
              "cat >/dev/null\n"
              "[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
              "echo $$ > " + tmp_ + "/sleepy.pid\n"
              "exec sleep 60\n");
  std::string id = unique_id("slow");
  auto inv = invoker(std::chrono::seconds(2));
  auto start = std::chrono::steady_clock::now();
  auto result = inv.add(attachment(id, netns), config_with({{{"type", "sleepy"}}}));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ETIMEDOUT);
  EXPECT_THAT(result.error().message, HasSubstr("CNI plugin sleepy ADD timed out after 2s"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  auto pid = testing::slurp(tmp_ + "/sleepy.pid");
  ASSERT_TRUE(pid.has_value());
  EXPECT_NE(::kill(std::stoi(*pid), 0), 0) << "plugin still running";
  expect_clean(id, "");
}

TEST_F(CniTest, CrashHalfwayThroughAddIsUndoneFromTheCache) {
  std::string netns = new_pod("crash");
  fake_plugin("hang",
              "cat >/dev/null\n"
              "[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
              "echo $$ > " + tmp_ + "/hang.pid\n"
              "exec sleep 60\n");
  std::string id = unique_id("crash");
  CniAttachment a = attachment(id, netns);
  auto config = config_with({{{"type", "hang"}}});

  // The "daemon" is a child process killed while the third plugin runs: bridge and
  // portmap have done their work, the result was never stored.
  pid_t daemon = ::fork();
  ASSERT_GE(daemon, 0);
  if (daemon == 0) {
    auto r = invoker().add(a, config);
    ::_exit(r ? 0 : 1);
  }
  std::string pid_file = tmp_ + "/hang.pid";
  for (int i = 0; i < 200 && ::access(pid_file.c_str(), F_OK) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(daemon, SIGKILL);
  ::waitpid(daemon, nullptr, 0);
  auto plugin_pid = testing::slurp(pid_file);
  ASSERT_TRUE(plugin_pid.has_value()) << "the hanging plugin never started";
  ::kill(-std::stoi(*plugin_pid), SIGKILL);  // its own process group, orphaned now

  ASSERT_EQ(bridge_ports().size(), 1u);
  ASSERT_EQ(ipam_allocations().size(), 1u);

  // The restarted daemon finds the half-made attachment and deletes it.
  auto inv = invoker();
  auto cached = inv.list_cached();
  ASSERT_TRUE(cached.has_value()) << cached.error().message;
  ASSERT_EQ(cached->size(), 1u);
  EXPECT_EQ((*cached)[0].attachment.container_id, id);
  EXPECT_EQ((*cached)[0].attachment.netns_path, netns);
  EXPECT_FALSE((*cached)[0].result.has_value());
  auto deleted = inv.del((*cached)[0].attachment, nullptr);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  expect_clean(id, "");
}

TEST_F(CniTest, DelUsesTheCachedConfigAfterTheFileChanged) {
  std::string netns = new_pod("moved");
  std::string id = unique_id("moved");
  auto inv = invoker();
  auto result = inv.add(attachment(id, netns, berth::testing::free_loopback_port()), config_);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  std::string veth = host_veth(*result);

  // The admin replaces the network: another name, another bridge.
  ASSERT_EQ(::unlink((tmp_ + "/conf/10-test.conflist").c_str()), 0);
  write_conflist(tmp_ + "/conf/20-other.conflist", {}, bridge_ + "x", net_name_ + "-other");
  auto current = load_default_network(tmp_ + "/conf");
  ASSERT_TRUE(current.has_value()) << current.error().message;
  ASSERT_EQ(current->name, net_name_ + "-other");

  auto deleted = inv.del(attachment(id, netns), &*current);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  expect_clean(id, veth);
  EXPECT_FALSE(link_exists(bridge_ + "x")) << "DEL ran the new config";
}

}  // namespace
}  // namespace berth::network

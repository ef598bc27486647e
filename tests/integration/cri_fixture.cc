#include "tests/integration/cri_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace berth::testing {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool path_exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// The images are built once per test binary run and shared by every fixture.
const std::string& test_images_dir(std::string* error) {
  static std::string dir;
  static std::string failure;
  static bool done = false;
  if (!done) {
    done = true;
    static RegistryTestDir keep("berth-cri-images");
    auto built = run_tool({"/usr/bin/python3", std::string(BERTH_SOURCE_DIR) + "/tests/support/make_test_images.py",
                           "--busybox", "/bin/busybox", "--out", keep.path(), "--only", "busybox,users"});
    if (built.code != 0) failure = "make_test_images.py failed: " + built.output;
    else dir = keep.path();
  }
  if (error) *error = failure;
  return dir;
}

std::set<std::string> nat_chains() {
  std::set<std::string> out;
  std::istringstream lines(run_tool({"/usr/sbin/iptables", "-t", "nat", "-S"}, 20).output);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("-N ")) out.insert(line.substr(3));
  return out;
}

// Removes the nat chains named CNI-* that are not in `before`, with the jumps to
// them: the portmap plugin keeps its shared CNI-HOSTPORT-* chains after the last
// DEL, as they serve every pod.
void remove_cni_chains_since(const std::set<std::string>& before) {
  std::set<std::string> added;
  for (auto& chain : nat_chains())
    if (!before.contains(chain) && chain.starts_with("CNI-")) added.insert(chain);
  if (added.empty()) return;
  std::istringstream rules(run_tool({"/usr/sbin/iptables", "-t", "nat", "-S"}, 20).output);
  for (std::string rule; std::getline(rules, rule);) {
    if (!rule.starts_with("-A ")) continue;
    auto jump = rule.find(" -j ");
    if (jump == std::string::npos) continue;
    if (!added.contains(rule.substr(jump + 4, rule.find(' ', jump + 4) - jump - 4))) continue;
    std::vector<std::string> argv = {"/usr/sbin/iptables", "-t", "nat", "-D"};
    std::istringstream words(rule.substr(3));
    // -S quotes comments; the rules here have none with spaces but the CNI ones.
    for (std::string w; words >> w;) {
      if (w.starts_with('"')) {
        std::string rest;
        while (!w.ends_with('"') && words >> rest) w += " " + rest;
        w = w.substr(1, w.size() - 2);
      }
      argv.push_back(w);
    }
    run_tool(argv, 20);
  }
  for (auto& chain : added) run_tool({"/usr/sbin/iptables", "-t", "nat", "-F", chain}, 20);
  for (auto& chain : added) run_tool({"/usr/sbin/iptables", "-t", "nat", "-X", chain}, 20);
}

}  // namespace

std::unique_ptr<::grpc::ClientContext> call_context(std::chrono::seconds timeout) {
  auto ctx = std::make_unique<::grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

std::string BerthdFixture::unavailable_reason() {
  if (::geteuid() != 0) return "berthd tests need root (namespaces, mounts, cgroups, CNI)";
  if (::access("/usr/lib/cni/bridge", X_OK) != 0) return "containernetworking-plugins are not installed in /usr/lib/cni";
  if (::access("/bin/busybox", X_OK) != 0) return "busybox-static is not installed";
  return "";
}

BerthdFixture::BerthdFixture() : dir_("berth-cri") {
  root_ = dir_.path() + "/root";
  state_ = dir_.path() + "/state";
  socket_ = state_ + "/berth.sock";
  log_dir_ = dir_.path() + "/logs";
  cni_conf_dir_ = dir_.path() + "/net.d";
  ipam_dir_ = dir_.path() + "/ipam";
  stderr_path_ = dir_.path() + "/berthd.stderr";
  std::random_device rd;
  unsigned n = 10 + rd() % 240;
  bridge_ = "btcri" + std::to_string(n) + std::to_string(rd() % 1000);
  subnet_prefix_ = "10.201." + std::to_string(n) + ".";
  cgroup_root_ = "/berth-test/" + bridge_;  // its own, so that leftovers are this daemon's
  ::mkdir(cni_conf_dir_.c_str(), 0755);
  ::mkdir(log_dir_.c_str(), 0755);
  nat_chains_before_ = nat_chains();
  ip_forward_before_ = slurp("/proc/sys/net/ipv4/ip_forward");
  std::ofstream(cni_conf_dir_ + "/10-test.conflist") << R"({"cniVersion":"1.0.0","name":"berth-test","plugins":[)"
      << R"({"type":"bridge","bridge":")" << bridge_ << R"(","isGateway":true,"ipMasq":false,"hairpinMode":true,)"
      << R"("ipam":{"type":"host-local","ranges":[[{"subnet":")" << subnet_prefix_ << R"(0/24"}]],)"
      << R"("routes":[{"dst":"0.0.0.0/0"}],"dataDir":")" << ipam_dir_ << R"("}},)"
      << R"({"type":"portmap","capabilities":{"portMappings":true},"snat":true}]})";
}

BerthdFixture::~BerthdFixture() {
  // Pods left by a failed test go first, so nothing outlives the fixture.
  if (pid_ > 0 && runtime_) {
    v1::ListPodSandboxRequest req;
    v1::ListPodSandboxResponse resp;
    if (runtime_->ListPodSandbox(call_context().get(), req, &resp).ok())
      for (auto& p : resp.items()) remove_pod(p.id());
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  run_tool({"/usr/sbin/ip", "link", "del", bridge_}, 10);
  // What the plugins changed for every pod: portmap's shared chains, and the
  // bridge plugin's ip_forward for a gateway.
  remove_cni_chains_since(nat_chains_before_);
  if (!ip_forward_before_.empty()) std::ofstream("/proc/sys/net/ipv4/ip_forward") << ip_forward_before_;
  // The daemon's cgroup root, in every hierarchy (empty unless a test failed).
  if (DIR* d = ::opendir("/sys/fs/cgroup")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ::rmdir(("/sys/fs/cgroup/" + std::string(e->d_name) + cgroup_root_).c_str());
    ::closedir(d);
  }
  // Anything still mounted under the test dir would make its removal fail.
  std::string mounts = slurp("/proc/self/mountinfo");
  std::istringstream lines(mounts);
  std::vector<std::string> targets;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string a, b, c, d, target;
    f >> a >> b >> c >> d >> target;
    if (target.starts_with(dir_.path())) targets.push_back(target);
  }
  for (auto it = targets.rbegin(); it != targets.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
}

bool BerthdFixture::start(const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {BERTHD_BINARY,  "--config",       dir_.path() + "/none.toml",
                                   "--root",       root_,          "--state",
                                   state_,         "--socket",     socket_,
                                   "--cni-conf-dir", cni_conf_dir_, "--cni-bin-dir",
                                   "/usr/lib/cni", "--cgroup-root", cgroup_root_,
                                   "--log-level",  "debug"};
  std::ofstream(dir_.path() + "/none.toml") << config_toml_;
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  connect();
  for (int i = 0; i < 300; ++i) {
    v1::VersionRequest req;
    v1::VersionResponse resp;
    if (path_exists(socket_)) {
      if (runtime_->Version(call_context(std::chrono::seconds(2)).get(), req, &resp).ok()) return true;
      // A channel that saw the socket refuse waits out grpc's reconnect backoff
      // (seconds); a fresh one tries at once.
      connect();
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "berthd exited: " + daemon_output();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  error_ = "berthd did not answer Version: " + daemon_output();
  return false;
}

void BerthdFixture::connect() {
  // Its own connection, never one shared (with its reconnect backoff) with an
  // earlier channel to a daemon that has since died.
  ::grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  channel_ = ::grpc::CreateCustomChannel("unix://" + socket_, ::grpc::InsecureChannelCredentials(), args);
  runtime_ = v1::RuntimeService::NewStub(channel_);
  images_ = v1::ImageService::NewStub(channel_);
}

void BerthdFixture::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool BerthdFixture::terminate() {
  if (pid_ <= 0) return false;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool BerthdFixture::exited_within(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string BerthdFixture::daemon_output() const { return slurp(stderr_path_); }

std::string BerthdFixture::test_image_layout(const std::string& name, std::string* error) {
  const std::string& dir = test_images_dir(error);
  return dir.empty() ? dir : dir + "/" + name;
}

bool BerthdFixture::import_images() {
  std::string error;
  const std::string& dir = test_images_dir(&error);
  if (dir.empty()) {
    error_ = error;
    return false;
  }
  for (auto [layout, name] : {std::pair{"busybox", "docker.io/library/busybox"}, std::pair{"users", "example.com/test/users"}}) {
    auto r = run_tool({BERTHCTL_BINARY, "--root", root_, "import", "--name", name, dir + "/" + layout});
    if (r.code != 0) {
      error_ = "berthctl import " + std::string(layout) + ": " + r.output;
      return false;
    }
  }
  return true;
}

v1::PodSandboxConfig BerthdFixture::pod_config(const std::string& name) const {
  static std::atomic<int> counter{0};
  v1::PodSandboxConfig c;
  std::string unique = name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  c.mutable_metadata()->set_name(unique);
  c.mutable_metadata()->set_namespace_("berth-test");
  c.mutable_metadata()->set_uid("uid-" + unique);
  c.mutable_metadata()->set_attempt(0);
  c.set_hostname(name);
  c.set_log_directory(log_dir_ + "/" + unique);
  (*c.mutable_labels())["test"] = name;
  // As kubelet sends it for a pod without shareProcessNamespace.
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);
  return c;
}

v1::ContainerConfig BerthdFixture::container_config(const std::string& name, const std::vector<std::string>& argv,
                                                    const std::string& image) const {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_image()->set_image(image);
  for (auto& a : argv) c.add_command(a);
  c.set_log_path(name + ".log");
  // The security context kubelet sends for a plain container: its own pid
  // namespace, the default masked and read-only paths, seccomp left to the runtime.
  auto* sc = c.mutable_linux()->mutable_security_context();
  sc->mutable_namespace_options()->set_pid(v1::CONTAINER);
  for (const char* p : {"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                        "/sys/devices/virtual/powercap"})
    sc->add_masked_paths(p);
  for (const char* p : {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})
    sc->add_readonly_paths(p);
  return c;
}

::grpc::Status BerthdFixture::try_run_pod(const v1::PodSandboxConfig& config, std::string* id) {
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = config;
  v1::RunPodSandboxResponse resp;
  auto s = runtime_->RunPodSandbox(call_context().get(), req, &resp);
  if (id) *id = resp.pod_sandbox_id();
  return s;
}

::grpc::Status BerthdFixture::try_create_container(const std::string& pod_id, const v1::ContainerConfig& config,
                                                   const v1::PodSandboxConfig& pod, std::string* id) {
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_id);
  *req.mutable_config() = config;
  *req.mutable_sandbox_config() = pod;
  v1::CreateContainerResponse resp;
  auto s = runtime_->CreateContainer(call_context().get(), req, &resp);
  if (id) *id = resp.container_id();
  return s;
}

::grpc::Status BerthdFixture::stop_pod(const std::string& id) {
  v1::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse resp;
  return runtime_->StopPodSandbox(call_context().get(), req, &resp);
}

::grpc::Status BerthdFixture::stop_container(const std::string& id, int64_t timeout_s) {
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeout_s);
  v1::StopContainerResponse resp;
  return runtime_->StopContainer(call_context().get(), req, &resp);
}

std::vector<v1::PodSandbox> BerthdFixture::list_pods() {
  v1::ListPodSandboxResponse resp;
  auto s = runtime_->ListPodSandbox(call_context().get(), {}, &resp);
  EXPECT_TRUE(s.ok()) << "ListPodSandbox: " << s.error_message();
  return {resp.items().begin(), resp.items().end()};
}

std::vector<v1::Container> BerthdFixture::list_containers() {
  v1::ListContainersResponse resp;
  auto s = runtime_->ListContainers(call_context().get(), {}, &resp);
  EXPECT_TRUE(s.ok()) << "ListContainers: " << s.error_message();
  return {resp.containers().begin(), resp.containers().end()};
}

std::string BerthdFixture::run_pod(const v1::PodSandboxConfig& config) {
  std::string id;
  auto s = try_run_pod(config, &id);
  EXPECT_TRUE(s.ok()) << "RunPodSandbox: " << s.error_message();
  return s.ok() ? id : "";
}

std::string BerthdFixture::create_container(const std::string& pod_id, const v1::ContainerConfig& config,
                                            const v1::PodSandboxConfig& pod) {
  std::string id;
  auto s = try_create_container(pod_id, config, pod, &id);
  EXPECT_TRUE(s.ok()) << "CreateContainer: " << s.error_message();
  return s.ok() ? id : "";
}

bool BerthdFixture::start_container(const std::string& id) {
  v1::StartContainerRequest req;
  req.set_container_id(id);
  v1::StartContainerResponse resp;
  auto s = runtime_->StartContainer(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << "StartContainer: " << s.error_message();
  return s.ok();
}

v1::ContainerStatus BerthdFixture::container_status(const std::string& id) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  v1::ContainerStatusResponse resp;
  auto s = runtime_->ContainerStatus(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << "ContainerStatus: " << s.error_message();
  return resp.status();
}

std::optional<v1::ContainerStatus> BerthdFixture::wait_exited(const std::string& id, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = container_status(id);
    if (st.state() == v1::CONTAINER_EXITED) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

v1::PodSandboxStatus BerthdFixture::pod_status(const std::string& id) {
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  v1::PodSandboxStatusResponse resp;
  auto s = runtime_->PodSandboxStatus(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << "PodSandboxStatus: " << s.error_message();
  return resp.status();
}

::grpc::Status BerthdFixture::remove_pod(const std::string& id) {
  stop_pod(id);
  v1::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::RemovePodSandboxResponse resp;
  return runtime_->RemovePodSandbox(call_context().get(), req, &resp);
}

std::string BerthdFixture::leftovers_of(const std::string& pod_id) const {
  std::string left;
  if (path_exists(state_ + "/pods/" + pod_id)) left += "pod dir; ";
  std::string mounts = slurp("/proc/self/mountinfo");
  if (mounts.find(pod_id) != std::string::npos) left += "a mount naming the pod; ";
  if (path_exists(root_ + "/cni/cache/" + pod_id + "-eth0.json")) left += "CNI cache entry; ";
  if (path_exists("/sys/fs/cgroup/memory" + cgroup_root_ + "/" + pod_id)) left += "pod cgroup; ";
  // host-local keeps one file per allocated IP, named by the IP.
  auto ls = run_tool({"/bin/sh", "-c", "ls " + ipam_dir_ + "/berth-test 2>/dev/null | grep -c '^10\\.' || true"}, 10);
  if (std::atoi(ls.output.c_str()) > 0) left += "IP allocations: " + ls.output + "; ";
  return left;
}

std::optional<v1::ContainerStatus> BerthdFixture::run_to_exit(const std::string& pod_id,
                                                              const v1::ContainerConfig& config,
                                                              const v1::PodSandboxConfig& pod,
                                                              std::chrono::seconds timeout) {
  std::string id = create_container(pod_id, config, pod);
  if (id.empty() || !start_container(id)) return std::nullopt;
  auto st = wait_exited(id, timeout);
  EXPECT_TRUE(st.has_value()) << "container " << config.metadata().name() << " did not exit within "
                              << timeout.count() << "s";
  return st;
}

bool BerthdFixture::wait_log_line(const v1::PodSandboxConfig& pod, const v1::ContainerConfig& config,
                                  const std::string& line, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    for (auto& l : cri_log_lines(slurp(pod.log_directory() + "/" + config.log_path())))
      if (l == line) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

::grpc::Status BerthdFixture::exec_sync(const std::string& id, const std::vector<std::string>& argv,
                                        v1::ExecSyncResponse* out, int64_t timeout_s) {
  v1::ExecSyncRequest req;
  req.set_container_id(id);
  for (auto& a : argv) req.add_cmd(a);
  req.set_timeout(timeout_s);
  v1::ExecSyncResponse ignored;
  return runtime_->ExecSync(call_context().get(), req, out ? out : &ignored);
}

std::string BerthdFixture::container_info(const std::string& id) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(true);
  v1::ContainerStatusResponse resp;
  auto s = runtime_->ContainerStatus(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << "ContainerStatus: " << s.error_message();
  auto it = resp.info().find("info");
  return it == resp.info().end() ? "" : it->second;
}

std::string BerthdFixture::pod_info(const std::string& id) {
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  req.set_verbose(true);
  v1::PodSandboxStatusResponse resp;
  auto s = runtime_->PodSandboxStatus(call_context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << "PodSandboxStatus: " << s.error_message();
  auto it = resp.info().find("info");
  return it == resp.info().end() ? "" : it->second;
}

std::string BerthdFixture::container_cgroup_dir(const std::string& id, const std::string& controller) {
  auto info = nlohmann::json::parse(container_info(id), nullptr, false);
  if (info.is_discarded() || !info.contains("cgroupPath")) return "";
  return "/sys/fs/cgroup/" + controller + info["cgroupPath"].get<std::string>();
}

int BerthdFixture::bridge_ports() const {
  auto r = run_tool({"/usr/sbin/ip", "-o", "link", "show", "master", bridge_}, 10);
  if (r.code != 0) return 0;  // no bridge yet: no ports
  int n = 0;
  for (char c : r.output) n += c == '\n';
  return n;
}

std::optional<std::string> BerthdFixture::sql(const std::string& statement,
                                              const std::vector<std::string>& params) const {
  static const char* kScript =
      "import sqlite3, sys\n"
      "db = sqlite3.connect(sys.argv[1], timeout=10)\n"
      "rows = db.execute(sys.argv[2], sys.argv[3:]).fetchall()\n"
      "db.commit()\n"
      "for r in rows: print('|'.join('' if v is None else str(v) for v in r))\n";
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", kScript, root_ + "/berth.db", statement};
  argv.insert(argv.end(), params.begin(), params.end());
  auto r = run_tool(argv, 30);
  EXPECT_EQ(r.code, 0) << "sql " << statement << ": " << r.output;
  if (r.code != 0) return std::nullopt;
  return r.output;
}

std::string BerthdFixture::host_leftovers() const {
  std::string left;
  auto entries = [](const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') out.emplace_back(e->d_name);
      ::closedir(d);
    }
    return out;
  };
  for (auto& p : entries(state_ + "/pods")) left += "pod dir " + p + "; ";
  for (auto& c : entries(state_ + "/containers")) left += "container dir " + c + "; ";
  for (auto& c : entries(root_ + "/cni/cache")) left += "CNI cache " + c + "; ";
  std::istringstream lines(slurp("/proc/self/mountinfo"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string a, b, c, d, target;
    f >> a >> b >> c >> d >> target;
    if (target.starts_with(state_ + "/")) left += "mount " + target + "; ";
  }
  for (auto& cg : entries("/sys/fs/cgroup/memory" + cgroup_root_))
    if (cg.size() == 64) left += "cgroup " + cg + "; ";
  for (auto& ip : entries(ipam_dir_ + "/berth-test"))
    if (ip.starts_with("10.")) left += "IP allocation " + ip + "; ";
  if (int ports = bridge_ports(); ports > 0) left += std::to_string(ports) + " veth(s) on " + bridge_ + "; ";
  for (pid_t pid : processes_with(state_ + "/containers/")) left += "process " + std::to_string(pid) + "; ";
  if (auto snaps = sql("SELECT key FROM snapshots WHERE key LIKE 'container-%'"); snaps && !snaps->empty())
    left += "container snapshots: " + *snaps + "; ";
  return left;
}

std::string read_text_file(const std::string& path) { return slurp(path); }

std::vector<CriLogLine> parse_cri_log(const std::string& text) {
  std::vector<CriLogLine> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    CriLogLine l;
    size_t a = line.find(' ');
    size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
    size_t c = b == std::string::npos ? b : line.find(' ', b + 1);
    if (c == std::string::npos) {
      l.message = line;
    } else {
      l.time = line.substr(0, a);
      l.stream = line.substr(a + 1, b - a - 1);
      l.tag = line.substr(b + 1, c - b - 1);
      l.message = line.substr(c + 1);
    }
    out.push_back(std::move(l));
  }
  return out;
}

std::vector<std::string> cri_log_lines(const std::string& text, const std::string& stream) {
  std::vector<std::string> out;
  std::string pending;
  for (auto& l : parse_cri_log(text)) {
    if (l.stream != stream) continue;
    pending += l.message;
    if (l.tag == "F") {
      out.push_back(std::move(pending));
      pending.clear();
    }
  }
  if (!pending.empty()) out.push_back(std::move(pending));
  return out;
}

std::map<std::string, std::string> key_values(const std::vector<std::string>& lines) {
  std::map<std::string, std::string> out;
  for (auto& l : lines) {
    auto eq = l.find('=');
    if (eq != std::string::npos) out[l.substr(0, eq)] = l.substr(eq + 1);
  }
  return out;
}

std::vector<pid_t> processes_with(const std::string& needle) {
  std::vector<pid_t> out;
  if (DIR* d = ::opendir("/proc")) {
    while (auto* e = ::readdir(d)) {
      pid_t pid = std::atoi(e->d_name);
      if (pid <= 0 || pid == ::getpid()) continue;
      std::string cmdline = slurp("/proc/" + std::to_string(pid) + "/cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find(needle) != std::string::npos) out.push_back(pid);
    }
    ::closedir(d);
  }
  return out;
}

bool process_running(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

bool wait_process_gone(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (process_running(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace berth::testing

// A real berthd for CRI tests: its own root, state dir, socket and CNI network (a
// private bridge and subnet), the busybox and users test images imported into its
// store, and grpc++ stubs on its socket. The daemon can be killed with -9 and
// restarted on the same dirs to test recovery.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "cri/proto/runtime_api.h"  // before the grpc header: hides the signal macros
#include "cri/proto/api.grpc.pb.h"
#include "tests/integration/local_registry.h"

namespace berth::testing {

namespace v1 = ::runtime::v1;

class BerthdFixture {
 public:
  BerthdFixture();
  ~BerthdFixture();
  BerthdFixture(const BerthdFixture&) = delete;
  BerthdFixture& operator=(const BerthdFixture&) = delete;

  // "" when the machine can run it, else why not (for GTEST_SKIP).
  static std::string unavailable_reason();

  // Starts berthd and waits until Version answers. extra_args go on its command line.
  bool start(const std::vector<std::string>& extra_args = {});
  void kill9();
  bool terminate();  // SIGTERM, waits; true when it exited 0
  // Waits for the daemon to end by itself (a crash point); true when it did.
  bool exited_within(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  std::string daemon_output() const;  // its stderr so far

  // Imports the test images (busybox, users) into the daemon's store with berthctl.
  bool import_images();
  // The OCI layout of a test image ("busybox", "users"), e.g. to push to a registry;
  // "" (and *error set) when the images could not be built.
  static std::string test_image_layout(const std::string& name, std::string* error = nullptr);
  // TOML for the daemon's --config file, written at each start().
  void set_config_toml(std::string toml) { config_toml_ = std::move(toml); }

  v1::RuntimeService::Stub& runtime() { return *runtime_; }
  v1::ImageService::Stub& images() { return *images_; }

  const std::string& root() const { return root_; }
  const std::string& state() const { return state_; }
  const std::string& socket() const { return socket_; }
  const std::string& log_dir() const { return log_dir_; }
  const std::string& cni_conf_dir() const { return cni_conf_dir_; }
  const std::string& bridge() const { return bridge_; }
  const std::string& subnet_prefix() const { return subnet_prefix_; }  // "10.201.N."
  const std::string& cgroup_root() const { return cgroup_root_; }      // --cgroup-root
  const std::string& ipam_dir() const { return ipam_dir_; }
  const std::string& dir() const { return dir_.path(); }  // the fixture's own temp dir

  // A pod config with unique metadata, logs in log_dir()/<name>, and a container
  // config with the security context kubelet would send (pid namespace CONTAINER).
  v1::PodSandboxConfig pod_config(const std::string& name) const;
  v1::ContainerConfig container_config(const std::string& name, const std::vector<std::string>& argv,
                                       const std::string& image = "docker.io/library/busybox:latest") const;

  // The plain calls, for tests that look at how they fail.
  ::grpc::Status try_run_pod(const v1::PodSandboxConfig& config, std::string* id = nullptr);
  ::grpc::Status try_create_container(const std::string& pod_id, const v1::ContainerConfig& config,
                                      const v1::PodSandboxConfig& pod, std::string* id = nullptr);
  ::grpc::Status stop_pod(const std::string& id);
  ::grpc::Status stop_container(const std::string& id, int64_t timeout_s);
  std::vector<v1::PodSandbox> list_pods();
  std::vector<v1::Container> list_containers();

  // Helpers that fail the current test on error and return "".
  std::string run_pod(const v1::PodSandboxConfig& config);
  std::string create_container(const std::string& pod_id, const v1::ContainerConfig& config,
                               const v1::PodSandboxConfig& pod);
  bool start_container(const std::string& id);
  // Polls ContainerStatus until EXITED or timeout.
  std::optional<v1::ContainerStatus> wait_exited(const std::string& id, std::chrono::seconds timeout);
  v1::ContainerStatus container_status(const std::string& id);
  v1::PodSandboxStatus pod_status(const std::string& id);
  ::grpc::Status remove_pod(const std::string& id);
  // Create, start and wait for the exit; nullopt (and a test failure) otherwise.
  std::optional<v1::ContainerStatus> run_to_exit(const std::string& pod_id, const v1::ContainerConfig& config,
                                                 const v1::PodSandboxConfig& pod,
                                                 std::chrono::seconds timeout = std::chrono::seconds(20));
  // Polls the container's CRI log until its stdout has `line` (e.g. a script's
  // "ready" once its signal traps are set).
  bool wait_log_line(const v1::PodSandboxConfig& pod, const v1::ContainerConfig& config, const std::string& line,
                     std::chrono::seconds timeout = std::chrono::seconds(10));
  ::grpc::Status exec_sync(const std::string& id, const std::vector<std::string>& argv, v1::ExecSyncResponse* out,
                           int64_t timeout_s = 0);
  // The verbose status "info" JSON of a container or a pod (cgroupPath, pid, ...).
  std::string container_info(const std::string& id);
  std::string pod_info(const std::string& id);
  // The host directory of a container's cgroup for a v1 controller ("memory", "cpu").
  std::string container_cgroup_dir(const std::string& id, const std::string& controller);
  // Veth interfaces enslaved to the fixture's bridge.
  int bridge_ports() const;
  // Runs one SQL statement on <root>/berth.db with python3's sqlite3 (writes only
  // while the daemon is down) and returns the rows, one per line, columns joined by
  // '|'; the statement's "?" take `params`. nullopt (and a test failure) on error.
  std::optional<std::string> sql(const std::string& statement, const std::vector<std::string>& params = {}) const;

  // What a removed pod must not leave behind: "" when clean, else what is left.
  std::string leftovers_of(const std::string& pod_id) const;
  // What no pod at all must leave: pod and container dirs, mounts under the state
  // dir, IP allocations, bridge ports, berth-shim processes of this daemon. "" when
  // clean. Only meaningful when the test has removed every pod.
  std::string host_leftovers() const;

 private:
  void connect();

  RegistryTestDir dir_;
  std::string root_, state_, socket_, log_dir_, cni_conf_dir_, ipam_dir_, bridge_, subnet_prefix_, stderr_path_;
  std::string images_dir_;
  std::string config_toml_;
  std::string cgroup_root_;
  std::set<std::string> nat_chains_before_;
  std::string ip_forward_before_;
  pid_t pid_ = -1;
  std::string error_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> images_;
};

// A client context with a deadline.
std::unique_ptr<::grpc::ClientContext> call_context(std::chrono::seconds timeout = std::chrono::seconds(60));

// One line of a CRI log file: "<time> <stream> <P|F> <message>".
struct CriLogLine {
  std::string time, stream, tag, message;
};
// Parses a CRI log; a line that does not parse comes back with an empty stream.
std::vector<CriLogLine> parse_cri_log(const std::string& text);
// The full lines of one stream ("stdout", "stderr"), partial pieces joined.
std::vector<std::string> cri_log_lines(const std::string& text, const std::string& stream = "stdout");
std::string read_text_file(const std::string& path);
// "key=value" lines (as the tests' shell scripts print them) as a map.
std::map<std::string, std::string> key_values(const std::vector<std::string>& lines);
// Pids of processes whose command line contains `needle`.
std::vector<pid_t> processes_with(const std::string& needle);
// Whether `pid` is a live process (not gone, not a zombie).
bool process_running(pid_t pid);
// Polls until `pid` is no longer a live process; false if it still is at the timeout.
bool wait_process_gone(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A test suite that shares one daemon (images imported once) between its tests, as
// the CI time budget wants. `Suite` may hide daemon_args() and prepare() to start
// the daemon differently. A test that kills the daemon gets it restarted for the
// next. After each test, pods it left are removed (and that counts as a failure)
// and the host must be clean.
template <typename Suite>
class SharedBerthdTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    if (!BerthdFixture::unavailable_reason().empty()) return;
    shared_ = std::make_unique<BerthdFixture>();
    Suite::prepare(*shared_);
    if (!shared_->import_images()) error_ = shared_->error();
    else if (!shared_->start(Suite::daemon_args(*shared_))) error_ = shared_->error();
  }
  static void TearDownTestSuite() {
    shared_.reset();
    error_.clear();
  }
  static std::vector<std::string> daemon_args(const BerthdFixture&) { return {}; }
  static void prepare(BerthdFixture&) {}

 protected:
  void SetUp() override {
    if (auto why = BerthdFixture::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(shared_ && error_.empty()) << error_;
    if (!shared_->running()) {
      ASSERT_TRUE(shared_->start(Suite::daemon_args(*shared_))) << shared_->error();
    }
    d_ = shared_.get();
  }
  void TearDown() override {
    if (!d_) return;
    if (HasFailure()) {
      std::string log = d_->daemon_output();
      if (log.size() > 6000) log = "..." + log.substr(log.size() - 6000);
      std::cerr << "---- berthd's log (end) ----\n" << log << "---- end of berthd's log ----\n";
    }
    if (!d_->running() && !d_->start(Suite::daemon_args(*d_))) {
      ADD_FAILURE() << "berthd does not restart: " << d_->error();
      return;
    }
    v1::ListPodSandboxResponse pods;
    if (d_->runtime().ListPodSandbox(call_context().get(), {}, &pods).ok()) {
      for (auto& p : pods.items()) {
        ADD_FAILURE() << "the test left pod " << p.metadata().name() << " behind";
        d_->remove_pod(p.id());
      }
    }
    if (check_host_after_test_) {
      EXPECT_EQ(d_->host_leftovers(), "") << "after the test";
    }
  }

  BerthdFixture* d_ = nullptr;
  bool check_host_after_test_ = true;
  static inline std::unique_ptr<BerthdFixture> shared_;
  static inline std::string error_;
};

}  // namespace berth::testing

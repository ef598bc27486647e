// A real berthd for CRI tests: its own root, state dir, socket and CNI network (a
// private bridge and subnet), the busybox and users test images imported into its
// store, and grpc++ stubs on its socket. The daemon can be killed with -9 and
// restarted on the same dirs to test recovery.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

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
  bool running() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  std::string daemon_output() const;  // its stderr so far

  // Imports the test images (busybox, users) into the daemon's store with berthctl.
  bool import_images();

  v1::RuntimeService::Stub& runtime() { return *runtime_; }
  v1::ImageService::Stub& images() { return *images_; }

  const std::string& root() const { return root_; }
  const std::string& state() const { return state_; }
  const std::string& socket() const { return socket_; }
  const std::string& log_dir() const { return log_dir_; }
  const std::string& cni_conf_dir() const { return cni_conf_dir_; }
  const std::string& bridge() const { return bridge_; }
  const std::string& subnet_prefix() const { return subnet_prefix_; }  // "10.201.N."
  const std::string& ipam_dir() const { return ipam_dir_; }

  // A pod config with unique metadata, logs in log_dir()/<name>.
  v1::PodSandboxConfig pod_config(const std::string& name) const;
  v1::ContainerConfig container_config(const std::string& name, const std::vector<std::string>& argv,
                                       const std::string& image = "docker.io/library/busybox:latest") const;

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

  // What a removed pod must not leave behind: "" when clean, else what is left.
  std::string leftovers_of(const std::string& pod_id) const;

 private:
  void connect();

  RegistryTestDir dir_;
  std::string root_, state_, socket_, log_dir_, cni_conf_dir_, ipam_dir_, bridge_, subnet_prefix_, stderr_path_;
  std::string images_dir_;
  pid_t pid_ = -1;
  std::string error_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> images_;
};

// A client context with a deadline.
std::unique_ptr<::grpc::ClientContext> call_context(std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace berth::testing

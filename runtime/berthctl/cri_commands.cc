#include "runtime/berthctl/cri_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "cri/proto/runtime_api.h"  // before the grpc header: hides the signal macros
#include "cri/proto/api.grpc.pb.h"
#include <grpcpp/grpcpp.h>

namespace berth::ctl {

namespace v1 = ::runtime::v1;

namespace {

struct Client {
  std::unique_ptr<v1::RuntimeService::Stub> runtime;
  std::unique_ptr<v1::ImageService::Stub> images;
};

Client connect(const std::string& socket) {
  auto channel = ::grpc::CreateChannel("unix://" + socket, ::grpc::InsecureChannelCredentials());
  return {v1::RuntimeService::NewStub(channel), v1::ImageService::NewStub(channel)};
}

std::unique_ptr<::grpc::ClientContext> ctx(int seconds = 120) {
  auto c = std::make_unique<::grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return c;
}

int failed(const char* call, const ::grpc::Status& s) {
  std::fprintf(stderr, "berthctl: %s: %s\n", call, s.error_message().c_str());
  return 1;
}

std::string short_id(const std::string& id) { return id.substr(0, 13); }

const char* state_name(v1::ContainerState s) {
  switch (s) {
    case v1::CONTAINER_CREATED: return "Created";
    case v1::CONTAINER_RUNNING: return "Running";
    case v1::CONTAINER_EXITED: return "Exited";
    default: return "Unknown";
  }
}

// Prints the messages of a CRI log file, joining partial (P) pieces.
void print_log(const std::string& path, int from_line = 0) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    if (n < from_line) continue;
    auto a = line.find(' ');
    auto b = a == std::string::npos ? a : line.find(' ', a + 1);
    auto c = b == std::string::npos ? b : line.find(' ', b + 1);
    if (c == std::string::npos) continue;
    bool err = line.compare(a + 1, b - a - 1, "stderr") == 0;
    bool partial = line.compare(b + 1, c - b - 1, "P") == 0;
    std::string msg = line.substr(c + 1) + (partial ? "" : "\n");
    std::fputs(msg.c_str(), err ? stderr : stdout);
  }
}

::grpc::Status remove_pod(Client& cli, const std::string& id) {
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse stopped;
  if (auto s = cli.runtime->StopPodSandbox(ctx().get(), stop, &stopped); !s.ok()) return s;
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(id);
  v1::RemovePodSandboxResponse removed;
  return cli.runtime->RemovePodSandbox(ctx().get(), rm, &removed);
}

}  // namespace

void add_cri_commands(CLI::App& app, const std::string& socket, std::function<int()>& run) {
  const std::string* sock = &socket;

  auto* version = app.add_subcommand("version", "Show berthd's runtime name and CRI version");
  version->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::VersionRequest req;
      v1::VersionResponse resp;
      if (auto s = cli.runtime->Version(ctx().get(), req, &resp); !s.ok()) return failed("Version", s);
      std::printf("%s %s (CRI %s)\n", resp.runtime_name().c_str(), resp.runtime_version().c_str(),
                  resp.runtime_api_version().c_str());
      return 0;
    };
  });

  auto* info = app.add_subcommand("info", "Show berthd's readiness conditions");
  info->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::StatusRequest req;
      v1::StatusResponse resp;
      if (auto s = cli.runtime->Status(ctx().get(), req, &resp); !s.ok()) return failed("Status", s);
      for (auto& c : resp.status().conditions())
        std::printf("%-14s %-5s %s %s\n", c.type().c_str(), c.status() ? "true" : "false", c.reason().c_str(),
                    c.message().c_str());
      return 0;
    };
  });

  auto* pods = app.add_subcommand("pods", "List pod sandboxes");
  pods->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::ListPodSandboxRequest req;
      v1::ListPodSandboxResponse resp;
      if (auto s = cli.runtime->ListPodSandbox(ctx().get(), req, &resp); !s.ok()) return failed("ListPodSandbox", s);
      std::printf("%-14s %-8s %-16s %-24s %s\n", "POD ID", "STATE", "IP", "NAME", "NAMESPACE");
      for (auto& p : resp.items()) {
        v1::PodSandboxStatusRequest sreq;
        sreq.set_pod_sandbox_id(p.id());
        v1::PodSandboxStatusResponse sresp;
        cli.runtime->PodSandboxStatus(ctx().get(), sreq, &sresp);
        std::printf("%-14s %-8s %-16s %-24s %s\n", short_id(p.id()).c_str(),
                    p.state() == v1::SANDBOX_READY ? "Ready" : "NotReady", sresp.status().network().ip().c_str(),
                    p.metadata().name().c_str(), p.metadata().namespace_().c_str());
      }
      return 0;
    };
  });

  auto* ps = app.add_subcommand("ps", "List containers");
  ps->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::ListContainersRequest req;
      v1::ListContainersResponse resp;
      if (auto s = cli.runtime->ListContainers(ctx().get(), req, &resp); !s.ok()) return failed("ListContainers", s);
      std::printf("%-14s %-8s %-14s %-20s %s\n", "CONTAINER ID", "STATE", "POD ID", "NAME", "IMAGE");
      for (auto& c : resp.containers())
        std::printf("%-14s %-8s %-14s %-20s %s\n", short_id(c.id()).c_str(), state_name(c.state()),
                    short_id(c.pod_sandbox_id()).c_str(), c.metadata().name().c_str(), c.image().image().c_str());
      return 0;
    };
  });

  struct RunArgs {
    std::string image, name = "berthctl", log_root = "/var/log/berth/pods";
    std::vector<std::string> ports, argv;
    bool detach = false, remove = false, host_network = false, tty = false;
  };
  auto ra = std::make_shared<RunArgs>();
  auto* runc = app.add_subcommand("run", "Run a command in a new pod (RunPodSandbox, CreateContainer, StartContainer)");
  runc->add_option("--image", ra->image, "Image (must be in the store: berthctl pull/import)")->required();
  runc->add_option("--name", ra->name, "Pod and container name")->capture_default_str();
  runc->add_option("-p,--port", ra->ports, "hostPort:containerPort[/udp] (repeatable)");
  runc->add_option("--log-root", ra->log_root, "Where pod log directories go")->capture_default_str();
  runc->add_flag("-d,--detach", ra->detach, "Return once started");
  runc->add_flag("--rm", ra->remove, "Remove the pod after the command exits");
  runc->add_flag("--host-network", ra->host_network, "Use the node's network namespace");
  runc->add_flag("-t,--tty", ra->tty, "Give the container a terminal");
  runc->add_option("command", ra->argv, "Command and arguments (after --)");
  runc->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      std::string uid = std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr));
      v1::PodSandboxConfig pod;
      pod.mutable_metadata()->set_name(ra->name);
      pod.mutable_metadata()->set_namespace_("default");
      pod.mutable_metadata()->set_uid(uid);
      pod.set_hostname(ra->name);
      pod.set_log_directory(ra->log_root + "/default_" + ra->name + "_" + uid);
      if (ra->host_network)
        pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(v1::NODE);
      for (auto& p : ra->ports) {
        auto colon = p.find(':');
        auto slash = p.find('/');
        auto* pm = pod.add_port_mappings();
        pm->set_host_port(std::atoi(p.substr(0, colon).c_str()));
        pm->set_container_port(std::atoi(p.substr(colon + 1, slash - colon - 1).c_str()));
        pm->set_protocol(slash != std::string::npos && p.substr(slash + 1) == "udp" ? v1::UDP : v1::TCP);
      }
      v1::RunPodSandboxRequest rreq;
      *rreq.mutable_config() = pod;
      v1::RunPodSandboxResponse rresp;
      if (auto s = cli.runtime->RunPodSandbox(ctx().get(), rreq, &rresp); !s.ok()) return failed("RunPodSandbox", s);
      std::string pod_id = rresp.pod_sandbox_id();
      auto cleanup = [&](int code) {
        if (ra->remove) remove_pod(cli, pod_id);
        return code;
      };
      v1::CreateContainerRequest creq;
      creq.set_pod_sandbox_id(pod_id);
      *creq.mutable_sandbox_config() = pod;
      auto* c = creq.mutable_config();
      c->mutable_metadata()->set_name(ra->name);
      c->mutable_image()->set_image(ra->image);
      for (auto& a : ra->argv) c->add_command(a);
      c->set_log_path(ra->name + ".log");
      c->set_tty(ra->tty);
      // berthctl asks for no_new_privs; kubelet asks only when allowPrivilegeEscalation is false.
      c->mutable_linux()->mutable_security_context()->set_no_new_privs(true);
      v1::CreateContainerResponse cresp;
      if (auto s = cli.runtime->CreateContainer(ctx().get(), creq, &cresp); !s.ok())
        return cleanup(failed("CreateContainer", s));
      v1::StartContainerRequest sreq;
      sreq.set_container_id(cresp.container_id());
      v1::StartContainerResponse sresp;
      if (auto s = cli.runtime->StartContainer(ctx().get(), sreq, &sresp); !s.ok())
        return cleanup(failed("StartContainer", s));
      if (ra->detach) {
        std::printf("pod %s container %s\n", pod_id.c_str(), cresp.container_id().c_str());
        return 0;
      }
      v1::ContainerStatusRequest qreq;
      qreq.set_container_id(cresp.container_id());
      v1::ContainerStatusResponse qresp;
      for (;;) {
        if (auto s = cli.runtime->ContainerStatus(ctx().get(), qreq, &qresp); !s.ok())
          return cleanup(failed("ContainerStatus", s));
        if (qresp.status().state() == v1::CONTAINER_EXITED) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      print_log(qresp.status().log_path());
      return cleanup(qresp.status().exit_code());
    };
  });

  auto logs_id = std::make_shared<std::string>();
  auto* logs = app.add_subcommand("logs", "Print a container's log");
  logs->add_option("container", *logs_id)->required();
  logs->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::ContainerStatusRequest req;
      req.set_container_id(*logs_id);
      v1::ContainerStatusResponse resp;
      if (auto s = cli.runtime->ContainerStatus(ctx().get(), req, &resp); !s.ok()) return failed("ContainerStatus", s);
      print_log(resp.status().log_path());
      return 0;
    };
  });

  auto ex = std::make_shared<std::pair<std::string, std::vector<std::string>>>();
  auto ex_timeout = std::make_shared<int64_t>(0);
  auto* exec = app.add_subcommand("exec", "Run a command in a running container (ExecSync)");
  exec->add_option("--timeout", *ex_timeout, "Seconds before the command is killed (0: none)");
  exec->add_option("container", ex->first)->required();
  exec->add_option("command", ex->second)->required();
  exec->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::ExecSyncRequest req;
      req.set_container_id(ex->first);
      for (auto& a : ex->second) req.add_cmd(a);
      req.set_timeout(*ex_timeout);
      v1::ExecSyncResponse resp;
      if (auto s = cli.runtime->ExecSync(ctx(3600).get(), req, &resp); !s.ok()) return failed("ExecSync", s);
      std::fwrite(resp.stdout().data(), 1, resp.stdout().size(), stdout);
      std::fwrite(resp.stderr().data(), 1, resp.stderr().size(), stderr);
      return resp.exit_code();
    };
  });

  auto stop_args = std::make_shared<std::pair<std::string, int64_t>>("", 10);
  auto* stop = app.add_subcommand("stop", "Stop a container (stop signal, then SIGKILL after the timeout)");
  stop->add_option("-t,--timeout", stop_args->second, "Seconds before SIGKILL")->capture_default_str();
  stop->add_option("container", stop_args->first)->required();
  stop->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::StopContainerRequest req;
      req.set_container_id(stop_args->first);
      req.set_timeout(stop_args->second);
      v1::StopContainerResponse resp;
      if (auto s = cli.runtime->StopContainer(ctx(stop_args->second + 60).get(), req, &resp); !s.ok())
        return failed("StopContainer", s);
      return 0;
    };
  });

  auto rm_id = std::make_shared<std::string>();
  auto* rm = app.add_subcommand("rm", "Remove a container");
  rm->add_option("container", *rm_id)->required();
  rm->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      v1::RemoveContainerRequest req;
      req.set_container_id(*rm_id);
      v1::RemoveContainerResponse resp;
      if (auto s = cli.runtime->RemoveContainer(ctx().get(), req, &resp); !s.ok()) return failed("RemoveContainer", s);
      return 0;
    };
  });

  auto rmp_id = std::make_shared<std::string>();
  auto* rmp = app.add_subcommand("rmp", "Stop and remove a pod sandbox with its containers");
  rmp->add_option("pod", *rmp_id)->required();
  rmp->callback([=, &run] {
    run = [=]() -> int {
      auto cli = connect(*sock);
      if (auto s = remove_pod(cli, *rmp_id); !s.ok()) return failed("RemovePodSandbox", s);
      return 0;
    };
  });
}

}  // namespace berth::ctl

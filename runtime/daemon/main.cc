// berthd: the node daemon kubelet talks to over CRI v1. It owns the image store and
// the Containerizer and serves them on a root-only unix socket. SIGTERM stops the
// daemon, never the containers: their shims keep them running until it is back.
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "common/file_util.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "cri/grpc/grpc_server.h"
#include "cri/service/image_service.h"
#include "cri/service/runtime_service.h"
#include "cri/streaming/streaming_server.h"
#include "runtime/containerizer/containerizer.h"
#include "runtime/daemon/daemon_config.h"
#include "storage/image_store.h"

using namespace berth;

namespace {

std::string sibling_or_path(const std::string& name) {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    std::string dir(self);
    dir = dir.substr(0, dir.rfind('/'));
    for (auto candidate : {dir + "/" + name, dir + "/../shim/" + name, dir + "/../cli/" + name})
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;  // found on PATH by the shim's exec
}

log::Level parse_level(const std::string& s) {
  if (s == "debug") return log::Level::debug;
  if (s == "warn" || s == "warning") return log::Level::warn;
  if (s == "error") return log::Level::error;
  return log::Level::info;
}

int fatal(const std::string& message) {
  log::error(message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Every call runs on its own thread; glibc would give each a malloc arena it
  // never returns, which is most of an idle daemon's growth after a burst.
  ::mallopt(M_ARENA_MAX, 2);
  CLI::App app{"berthd: berth's CRI v1 runtime daemon"};
  std::string config_path = "/etc/berth/berthd.toml";
  daemon::DaemonConfig flags;
  bool print_config = false;
  auto* config_opt = app.add_option("--config", config_path, "TOML config file");
  auto* o_root = app.add_option("--root", flags.root, "persistent data: database, images, snapshots, CNI cache");
  auto* o_state = app.add_option("--state", flags.state, "runtime state: pods, containers, shims");
  auto* o_socket = app.add_option("--socket", flags.socket, "CRI unix socket");
  auto* o_level = app.add_option("--log-level", flags.log_level, "debug, info, warn or error");
  auto* o_shim = app.add_option("--shim-binary", flags.shim_binary, "berth-shim to run per container");
  auto* o_runtime = app.add_option("--runtime-binary", flags.runtime_binary, "berth runtime CLI");
  auto* o_cgroup = app.add_option("--cgroup-root", flags.cgroup_root, "parent cgroup of pods without a cgroup_parent");
  auto* o_conf = app.add_option("--cni-conf-dir", flags.cni_conf_dirs, "CNI network config dir (repeatable)");
  auto* o_bin = app.add_option("--cni-bin-dir", flags.cni_bin_dirs, "CNI plugin dir (repeatable)");
  auto* o_regcfg = app.add_option("--registry-config-path", flags.registry_config_path, "hosts.toml tree");
  auto* o_insecure = app.add_option("--insecure-registry", flags.insecure_registries, "registry reached over http");
  auto* o_stream_address =
      app.add_option("--stream-address", flags.stream_address, "streaming server address (exec/attach/port-forward)");
  auto* o_stream_port = app.add_option("--stream-port", flags.stream_port, "streaming server port (0: any free one)");
  std::vector<std::string> crash_points;
  app.add_option("--debug-crash-point", crash_points, "kill berthd with SIGKILL at this step (recovery tests)")
      ->group("");
  app.add_flag("--print-config", print_config, "print the effective config as TOML and exit");
  CLI11_PARSE(app, argc, argv);

  daemon::DaemonConfig config;
  if (auto r = daemon::load_config_file(config_path, config); !r) {
    // The default file is optional; one named on the command line is not.
    if (r.error().code != ENOENT || config_opt->count() > 0) return fatal(r.error().message), 2;
  }
  auto take = [](CLI::Option* opt, auto& dst, const auto& src) {
    if (opt->count() > 0) dst = src;
  };
  take(o_root, config.root, flags.root);
  take(o_state, config.state, flags.state);
  take(o_socket, config.socket, flags.socket);
  take(o_level, config.log_level, flags.log_level);
  take(o_shim, config.shim_binary, flags.shim_binary);
  take(o_runtime, config.runtime_binary, flags.runtime_binary);
  take(o_cgroup, config.cgroup_root, flags.cgroup_root);
  take(o_conf, config.cni_conf_dirs, flags.cni_conf_dirs);
  take(o_bin, config.cni_bin_dirs, flags.cni_bin_dirs);
  take(o_regcfg, config.registry_config_path, flags.registry_config_path);
  take(o_insecure, config.insecure_registries, flags.insecure_registries);
  take(o_stream_address, config.stream_address, flags.stream_address);
  take(o_stream_port, config.stream_port, flags.stream_port);
  if (auto r = daemon::check_config(config); !r) return fatal(r.error().message), 2;
  if (config.shim_binary.empty()) config.shim_binary = sibling_or_path("berth-shim");
  if (config.runtime_binary.empty()) config.runtime_binary = sibling_or_path("berth");
  if (print_config) {
    std::fputs(daemon::to_toml(config).c_str(), stdout);
    return 0;
  }
  log::configure("", log::Format::text, parse_level(config.log_level));

  if (::geteuid() != 0) return fatal("berthd must run as root");
  ::umask(022);
  if (auto r = make_dirs(config.state, 0711); !r) return fatal(r.error().message);
  // One daemon per state dir: the lock outlives nothing but this process.
  UniqueFd lock(::open((config.state + "/berthd.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0)
    return fatal("another berthd is running with state dir " + config.state);

  // SIGTERM and SIGINT are taken synchronously below; every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  storage::ImageStoreOptions store_options;
  store_options.root = config.root;
  store_options.registry_config_path = config.registry_config_path;
  store_options.insecure_registries = config.insecure_registries;
  store_options.parallel_layers = config.parallel_layers;
  auto store = storage::ImageStore::open(store_options);
  if (!store) return fatal("open image store: " + store.error().message);
  std::shared_ptr<storage::ImageStore> images(std::move(*store));

  pod::ContainerizerOptions options;
  options.root = config.root;
  options.state = config.state;
  options.shim_binary = config.shim_binary;
  options.runtime_binary = config.runtime_binary;
  options.cni_conf_dirs = config.cni_conf_dirs;
  options.cni_bin_dirs = config.cni_bin_dirs;
  options.cni_timeout = std::chrono::seconds(config.cni_timeout_seconds);
  options.cgroup_root = config.cgroup_root;
  options.restrict_oom_score_adj = config.restrict_oom_score_adj;
  options.crash_points = crash_points;
  auto containerizer = pod::Containerizer::open(options, images);
  if (!containerizer) return fatal("start containerizer: " + containerizer.error().message);

  grpc::GrpcServer::Options server_options;
  server_options.socket_path = config.socket;
  grpc::GrpcServer server(server_options);
  cri::RuntimeService::Options runtime_options;
  runtime_options.runtime_version = config.runtime_version;
  cri::RuntimeService runtime_service(**containerizer, runtime_options, images.get());
  streaming::StreamingServerOptions stream_options;
  stream_options.address = config.stream_address;
  stream_options.port = static_cast<uint16_t>(config.stream_port);
  stream_options.idle_timeout = std::chrono::seconds(config.stream_idle_timeout_seconds);
  stream_options.stream_creation_timeout = std::chrono::seconds(config.stream_creation_timeout_seconds);
  stream_options.token_ttl = std::chrono::seconds(config.stream_token_ttl_seconds);
  stream_options.max_connections = static_cast<size_t>(config.stream_max_connections);
  auto streaming = streaming::StreamingServer::start(**containerizer, stream_options);
  if (!streaming) return fatal("start the streaming server: " + streaming.error().message);
  runtime_service.set_streaming_server(streaming->get());
  cri::ImageService image_service(*images);
  runtime_service.register_with(server);
  image_service.register_with(server);
  if (auto r = server.start(); !r) return fatal("serve CRI: " + r.error().message);
  log::info("berthd " + config.runtime_version + " serving CRI v1 on " + config.socket + ", streaming on " +
            (*streaming)->base_url());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::info(std::string("berthd stopping on ") + ::strsignal(sig) + "; containers keep running");
  server.stop();
  streaming->reset();  // ends open exec/attach/port-forward sessions
  return 0;
}

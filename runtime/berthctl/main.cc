// `berthctl`: the node admin's client for berth.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "runtime/berthctl/cri_commands.h"
#include "runtime/berthctl/image_commands.h"

using namespace berth;

int main(int argc, char** argv) {
  CLI::App app{"berthctl: manage berth's images, pods and containers on this node"};
  app.require_subcommand(1);
  storage::ImageStoreOptions options;
  std::string platform;
  app.add_option("--root", options.root, "Store root")->capture_default_str();
  app.add_option("--registry-config-path", options.registry_config_path,
                 "Directory of <registry>/hosts.toml files (containerd's layout)")
      ->capture_default_str();
  app.add_option("--insecure-registry", options.insecure_registries, "Registry reached over plain http (repeatable)");
  app.add_option("--platform", platform, "Platform to pull, os/arch[/variant] (default: this node)");
  app.add_option("--parallel", options.parallel_layers, "Layers fetched and unpacked at once")->capture_default_str();

  std::string socket = "/run/berth/berth.sock";
  app.add_option("--socket", socket, "berthd's CRI socket (pod and container commands)")->capture_default_str();

  std::function<int()> run;
  ctl::add_cri_commands(app, socket, run);
  ctl::add_image_commands(
      app,
      [&]() -> Result<std::unique_ptr<storage::ImageStore>> {
        if (!platform.empty()) options.platform = BERTH_TRY(storage::Platform::parse(platform));
        return storage::ImageStore::open(options);
      },
      run);
  CLI11_PARSE(app, argc, argv);
  return run ? run() : 1;
}

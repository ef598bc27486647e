#include "runtime/daemon/daemon_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace berth::daemon {
namespace {

std::string write_temp(const std::string& text) {
  char path[] = "/tmp/berthd-config-XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(DaemonConfig, ShippedFileStatesTheDefaults) {
  DaemonConfig defaults, loaded;
  loaded.root = "changed";  // the file must set it back
  ASSERT_TRUE(load_config_file(std::string(BERTH_SOURCE_DIR) + "/packaging/berthd.toml", loaded));
  EXPECT_EQ(to_toml(loaded), to_toml(defaults));
}

TEST(DaemonConfig, FileOverridesEveryKey) {
  auto path = write_temp(R"(root = "/r"
state = "/s"
socket = "/s/x.sock"
log_level = "debug"
cgroup_root = "/cg"
restrict_oom_score_adj = false
[cni]
conf_dirs = ["/a", "/b"]
bin_dirs = ["/bin1"]
timeout_seconds = 5
[registry]
config_path = "/certs"
insecure = ["127.0.0.1:5000"]
parallel_layers = 7
)");
  DaemonConfig c;
  ASSERT_TRUE(load_config_file(path, c));
  EXPECT_EQ(c.root, "/r");
  EXPECT_EQ(c.state, "/s");
  EXPECT_EQ(c.socket, "/s/x.sock");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.cgroup_root, "/cg");
  EXPECT_FALSE(c.restrict_oom_score_adj);
  EXPECT_EQ(c.cni_conf_dirs, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(c.cni_bin_dirs, std::vector<std::string>{"/bin1"});
  EXPECT_EQ(c.cni_timeout_seconds, 5);
  EXPECT_EQ(c.registry_config_path, "/certs");
  EXPECT_EQ(c.insecure_registries, std::vector<std::string>{"127.0.0.1:5000"});
  EXPECT_EQ(c.parallel_layers, 7);
  ::unlink(path.c_str());
}

TEST(DaemonConfig, TyposAndWrongTypesAreErrors) {
  for (auto [text, needle] : {std::pair{"rooot = \"/x\"\n", "unknown key 'rooot'"},
                              std::pair{"[cni]\nconf_dir = [\"/x\"]\n", "unknown key 'conf_dir' in [cni]"},
                              std::pair{"root = 5\n", "root must be a string"},
                              std::pair{"[cni]\nbin_dirs = \"/x\"\n", "bin_dirs must be an array"},
                              std::pair{"root = \n", "config"}}) {
    auto path = write_temp(text);
    DaemonConfig c;
    auto r = load_config_file(path, c);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
    ::unlink(path.c_str());
  }
}

TEST(DaemonConfig, MissingFileIsEnoent) {
  DaemonConfig c;
  auto r = load_config_file("/nonexistent/berthd.toml", c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
}

}  // namespace
}  // namespace berth::daemon

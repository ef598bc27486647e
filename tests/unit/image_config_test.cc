#include "storage/image_config.h"

#include <gtest/gtest.h>

using namespace berth::storage;

namespace {

constexpr const char* kConfig = R"({
  "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
  "config": {
    "User": "app", "WorkingDir": "/home/app", "Env": ["PATH=/bin", "FOO=bar"],
    "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["id"], "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
    "Volumes": {"/data": {}}, "StopSignal": "SIGQUIT", "Labels": {"team": "node"}
  },
  "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                            "sha256:2222222222222222222222222222222222222222222222222222222222222222"]},
  "history": [{}, {}]
})";

}  // namespace

TEST(ImageConfig, TurnsConfigIntoContainerDefaults) {
  auto config = parse_image_config(kConfig);
  ASSERT_TRUE(config) << config.error().message;
  const auto& d = config->defaults;
  EXPECT_EQ(d.user, "app");
  EXPECT_EQ(d.working_dir, "/home/app");
  EXPECT_EQ(d.env, (std::vector<std::string>{"PATH=/bin", "FOO=bar"}));
  EXPECT_EQ(d.entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(d.cmd, (std::vector<std::string>{"id"}));
  EXPECT_EQ(d.exposed_ports, (std::vector<std::string>{"53/udp", "8080/tcp"}));
  EXPECT_EQ(d.volumes, (std::vector<std::string>{"/data"}));
  EXPECT_EQ(d.stop_signal, "SIGQUIT");
  EXPECT_EQ(d.labels.at("team"), "node");
  EXPECT_EQ(config->diff_ids.size(), 2u);
  EXPECT_EQ(config->history_entries, 2);
}

TEST(ImageConfig, RejectsConfigsWithoutLayers) {
  EXPECT_FALSE(parse_image_config(R"({"rootfs": {"type": "nope", "diff_ids": []}})"));
  EXPECT_FALSE(parse_image_config(R"({"config": {}})"));
  EXPECT_FALSE(parse_image_config(R"({"rootfs": {"type": "layers", "diff_ids": ["md5:abc"]}})"));
  EXPECT_FALSE(parse_image_config(R"({"rootfs": {"type": "layers", "diff_ids": []}, "config": {"Cmd": "sh"}})"));
}

TEST(ImageConfig, ChainIdsFollowTheImageSpec) {
  auto config = parse_image_config(kConfig);
  ASSERT_TRUE(config);
  auto chains = chain_ids(config->diff_ids);
  ASSERT_EQ(chains.size(), 2u);
  EXPECT_EQ(chains[0], config->diff_ids[0]);
  EXPECT_EQ(chains[1], sha256_of(config->diff_ids[0].str() + " " + config->diff_ids[1].str()));
  EXPECT_NE(chains[1], config->diff_ids[1]);
}

TEST(ImageConfig, RequestEnvOverridesImageEnvInPlace) {
  auto env = merge_env({"PATH=/bin", "FOO=bar", "A=1"}, {"FOO=baz", "NEW=x"});
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin", "FOO=baz", "A=1", "NEW=x"}));
}

TEST(ImageConfig, CommandAndArgsFollowKubernetesRules) {
  ContainerDefaults image;
  image.entrypoint = {"/entry"};
  image.cmd = {"default"};
  EXPECT_EQ(effective_argv(image, {}, {}), (std::vector<std::string>{"/entry", "default"}));
  EXPECT_EQ(effective_argv(image, {}, {"a"}), (std::vector<std::string>{"/entry", "a"}));
  EXPECT_EQ(effective_argv(image, {"/other"}, {}), (std::vector<std::string>{"/other"}));
  EXPECT_EQ(effective_argv(image, {"/other"}, {"b"}), (std::vector<std::string>{"/other", "b"}));
}

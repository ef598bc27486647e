// Unit tests for network/cni_config: which file is the default network, wrapping a
// single-plugin .conf, and the errors a bad config gets.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "network/cni_config.h"

namespace berth::network {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class CniConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-cni-config-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)remove_tree(dir_); }

  void put(const std::string& name, const std::string& text) {
    ASSERT_TRUE(write_file_atomic(dir_ + "/" + name, text, 0644).has_value());
  }

  std::string dir_;
};

constexpr const char* kList = R"({
  "cniVersion": "1.0.0",
  "name": "podnet",
  "disableCheck": true,
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"}},
    {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}, "snat": true}
  ]
})";

TEST_F(CniConfigTest, LoadsConflistWithPluginsCapabilitiesAndRawJson) {
  put("10-podnet.conflist", kList);
  auto config = load_default_network(dir_);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->cni_version, "1.0.0");
  EXPECT_EQ(config->name, "podnet");
  EXPECT_TRUE(config->disable_check);
  EXPECT_EQ(config->source, dir_ + "/10-podnet.conflist");
  ASSERT_EQ(config->plugins.size(), 2u);
  EXPECT_EQ(config->plugins[0].type, "bridge");
  EXPECT_EQ(config->plugins[0].raw["ipam"]["subnet"], "10.1.0.0/16");
  EXPECT_TRUE(config->plugins[0].capabilities.empty());
  EXPECT_EQ(config->plugins[1].type, "portmap");
  EXPECT_TRUE(config->plugins[1].has_capability("portMappings"));
  EXPECT_FALSE(config->plugins[1].has_capability("bandwidth"));
  EXPECT_FALSE(config->plugins[1].has_capability("dns"));
  EXPECT_EQ(config->plugins[1].raw["snat"], true);
}

TEST_F(CniConfigTest, FirstFileInLexicalOrderWins) {
  put("20-b.conflist", R"({"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]})");
  put("10-a.conf", R"({"cniVersion":"0.4.0","name":"a","type":"ptp"})");
  put("05-ignored.txt", R"({"cniVersion":"1.0.0","name":"x","type":"ptp"})");
  put("99-c.json", R"({"cniVersion":"1.0.0","name":"c","type":"ptp"})");
  auto config = load_default_network(dir_);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->name, "a");
}

TEST_F(CniConfigTest, SinglePluginConfIsWrappedIntoAList) {
  put("10-single.conf", R"({"cniVersion":"0.4.0","name":"single","type":"ptp","capabilities":{"ips":true},"mtu":1400})");
  auto config = load_default_network(dir_);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->cni_version, "0.4.0");
  EXPECT_EQ(config->name, "single");
  EXPECT_FALSE(config->disable_check);
  ASSERT_EQ(config->plugins.size(), 1u);
  EXPECT_EQ(config->plugins[0].type, "ptp");
  EXPECT_TRUE(config->plugins[0].has_capability("ips"));
  EXPECT_EQ(config->plugins[0].raw["mtu"], 1400);
}

TEST_F(CniConfigTest, JsonExtensionAndDirectoriesIgnored) {
  ASSERT_EQ(::mkdir((dir_ + "/00-dir.conf").c_str(), 0755), 0);
  put("50-net.json", R"({"cniVersion":"1.0.0","name":"j","plugins":[{"type":"bridge"}]})");
  auto config = load_default_network(dir_);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->name, "j");
}

TEST_F(CniConfigTest, EmptyOrMissingDirIsEnoent) {
  put("README", "not a config");
  auto empty = load_default_network(dir_);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, ENOENT);
  EXPECT_THAT(empty.error().message, HasSubstr(dir_));

  auto missing = load_default_network(dir_ + "/nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_THAT(missing.error().message, HasSubstr("does not exist"));
}

struct BadConfig {
  const char* text;
  const char* message;
};

class CniBadConfigTest : public CniConfigTest, public ::testing::WithParamInterface<BadConfig> {};

TEST_P(CniBadConfigTest, IsEinvalNamingTheFile) {
  put("10-bad.conflist", GetParam().text);
  auto config = load_default_network(dir_);
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().code, EINVAL);
  EXPECT_THAT(config.error().message, HasSubstr(dir_ + "/10-bad.conflist"));
  EXPECT_THAT(config.error().message, HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, CniBadConfigTest,
    ::testing::Values(
        BadConfig{"{not json", "not valid JSON"},
        BadConfig{"[1,2]", "not a JSON object"},
        BadConfig{R"({"name":"n","plugins":[{"type":"bridge"}]})", "missing \"cniVersion\""},
        BadConfig{R"({"cniVersion":7,"name":"n","plugins":[{"type":"bridge"}]})", "\"cniVersion\" must be a string"},
        BadConfig{R"({"cniVersion":"9.9.9","name":"n","plugins":[{"type":"bridge"}]})", "unsupported cniVersion"},
        BadConfig{R"({"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]})", "missing \"name\""},
        BadConfig{R"({"cniVersion":"1.0.0","name":"bad name","plugins":[{"type":"bridge"}]})", "invalid network name"},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n","plugins":[]})", "\"plugins\" is empty"},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n","plugins":{}})", "\"plugins\" must be an array"},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n","plugins":[{"bridge":"x"}]})", "plugins[0]: missing \"type\""},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":3}]})",
                  "plugins[1]: \"type\" must be a string"},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../evil"}]})", "invalid plugin type"},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"p","capabilities":{"x":1}}]})",
                  "capability \"x\" must be true or false"},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n","disableCheck":"maybe","plugins":[{"type":"p"}]})",
                  "\"disableCheck\" must be true or false"},
        BadConfig{R"({"cniVersion":"1.0.0","name":"n"})", "missing \"type\""}));

TEST_F(CniConfigTest, DisableCheckAcceptsStrings) {
  auto config = parse_network_config(
      json::parse(R"({"cniVersion":"1.0.0","name":"n","disableCheck":"true","plugins":[{"type":"p"}]})"), "mem");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_TRUE(config->disable_check);
}

TEST_F(CniConfigTest, ToJsonRoundTrips) {
  auto config = parse_network_config(json::parse(kList), "mem");
  ASSERT_TRUE(config.has_value());
  auto again = parse_network_config(config->to_json(), "again");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->name, "podnet");
  EXPECT_TRUE(again->disable_check);
  ASSERT_EQ(again->plugins.size(), 2u);
  EXPECT_EQ(again->plugins[1].raw, config->plugins[1].raw);
  EXPECT_TRUE(again->plugins[1].has_capability("portMappings"));
}

TEST(CniVersionTest, ComparesNumerically) {
  EXPECT_LT(compare_cni_versions("0.3.1", "0.4.0"), 0);
  EXPECT_EQ(compare_cni_versions("0.4.0", "0.4.0"), 0);
  EXPECT_GT(compare_cni_versions("1.0.0", "0.4.0"), 0);
  EXPECT_GT(compare_cni_versions("0.10.0", "0.9.0"), 0);
  EXPECT_TRUE(is_supported_cni_version("1.0.0"));
  EXPECT_TRUE(is_supported_cni_version("0.3.1"));
  EXPECT_FALSE(is_supported_cni_version("2.0.0"));
  EXPECT_FALSE(is_supported_cni_version(""));
}

}  // namespace
}  // namespace berth::network

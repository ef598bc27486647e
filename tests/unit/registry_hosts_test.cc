// hosts.toml handling as containerd documents it (docs/hosts.md): mirror order,
// capabilities, TLS files, headers, override_path, _default and port directories,
// Docker certs.d fallback, and clear errors for malformed files.

#include "storage/registry_hosts.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "storage/registry_client.h"

namespace {

namespace fs = std::filesystem;
using berth::storage::RegistryEndpoint;
using berth::storage::RegistryHosts;

class RegistryHostsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = fs::temp_directory_path().string() + "/berth-hosts-test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(dir_ + "/" + rel).parent_path());
    std::ofstream(dir_ + "/" + rel) << text;
  }

  std::vector<RegistryEndpoint> endpoints(const std::string& registry) {
    auto hosts = RegistryHosts::load(dir_);
    EXPECT_TRUE(hosts) << hosts.error().message;
    if (!hosts) return {};
    auto eps = hosts->endpoints_for(registry);
    EXPECT_TRUE(eps) << eps.error().message;
    return eps ? *eps : std::vector<RegistryEndpoint>{};
  }

  std::string dir_;
};

TEST(RegistryHostsDefaults, UpstreamOnlyWithoutConfig) {
  RegistryHosts hosts;
  auto eps = hosts.endpoints_for("quay.io");
  ASSERT_TRUE(eps);
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].url, "https://quay.io");
  EXPECT_EQ((*eps)[0].path_prefix, "/v2");
  EXPECT_TRUE((*eps)[0].can_pull);
  EXPECT_TRUE((*eps)[0].can_resolve);
  EXPECT_FALSE((*eps)[0].skip_verify);

  auto docker = hosts.endpoints_for("docker.io");
  ASSERT_TRUE(docker);
  EXPECT_EQ((*docker)[0].url, "https://registry-1.docker.io");
}

TEST(RegistryHostsDefaults, InsecureRegistriesUsePlainHttp) {
  RegistryHosts hosts;
  hosts.add_insecure("10.0.0.5:5000");
  EXPECT_EQ((*hosts.endpoints_for("10.0.0.5:5000"))[0].url, "http://10.0.0.5:5000");
  EXPECT_EQ((*hosts.endpoints_for("10.0.0.5:5001"))[0].url, "https://10.0.0.5:5001");
}

TEST(RegistryHostsDefaults, RejectsRegistryNamesThatAreNotHosts) {
  RegistryHosts hosts;
  EXPECT_FALSE(hosts.endpoints_for(""));
  EXPECT_FALSE(hosts.endpoints_for("a/b"));
  EXPECT_FALSE(hosts.endpoints_for("../etc"));
}

TEST(RegistryHostsDefaults, MissingConfigDirIsFine) {
  auto hosts = RegistryHosts::load("/nonexistent/berth/certs.d");
  ASSERT_TRUE(hosts) << hosts.error().message;
  auto eps = hosts->endpoints_for("ghcr.io");
  ASSERT_TRUE(eps);
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].url, "https://ghcr.io");
}

TEST_F(RegistryHostsTest, MirrorsInFileOrderThenServer) {
  write("docker.io/hosts.toml", R"(
server = "https://registry-1.docker.io"

[host."https://zz-mirror.example"]
  capabilities = ["pull"]

[host."https://aa-mirror.example:8443"]
  capabilities = ["pull", "resolve"]

[host."http://mm-mirror.example"]
)");
  auto eps = endpoints("docker.io");
  ASSERT_EQ(eps.size(), 4u);
  EXPECT_EQ(eps[0].url, "https://zz-mirror.example");
  EXPECT_TRUE(eps[0].can_pull);
  EXPECT_FALSE(eps[0].can_resolve);
  EXPECT_EQ(eps[1].url, "https://aa-mirror.example:8443");
  EXPECT_TRUE(eps[1].can_pull && eps[1].can_resolve);
  EXPECT_EQ(eps[2].url, "http://mm-mirror.example");
  EXPECT_TRUE(eps[2].can_pull && eps[2].can_resolve);  // no capabilities: all
  EXPECT_EQ(eps[3].url, "https://registry-1.docker.io");
  for (const auto& ep : eps) EXPECT_EQ(ep.path_prefix, "/v2");
}

TEST_F(RegistryHostsTest, InlineHostTableKeepsOrderToo) {
  write("example.com/hosts.toml",
        R"(host = { "https://b.example" = { capabilities = ["pull"] }, "https://a.example" = {} })");
  auto eps = endpoints("example.com");
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0].url, "https://b.example");
  EXPECT_EQ(eps[1].url, "https://a.example");
  EXPECT_EQ(eps[2].url, "https://example.com");
}

TEST_F(RegistryHostsTest, ServerDefaultsToTheRegistryAndTakesTopLevelKeys) {
  write("reg.example:5000/hosts.toml", R"(
ca = "ca.pem"
skip_verify = true
[header]
  x-top = "1"
)");
  auto eps = endpoints("reg.example:5000");
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].url, "https://reg.example:5000");
  EXPECT_TRUE(eps[0].skip_verify);
  ASSERT_EQ(eps[0].ca_files.size(), 1u);
  EXPECT_EQ(eps[0].ca_files[0], dir_ + "/reg.example:5000/ca.pem");
  EXPECT_EQ(eps[0].headers.at("x-top"), "1");
}

TEST_F(RegistryHostsTest, ServerWithoutSchemeIsHttps) {
  write("x.example/hosts.toml", R"(server = "mirror.example:444")");
  auto eps = endpoints("x.example");
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].url, "https://mirror.example:444");
}

TEST_F(RegistryHostsTest, InsecureRegistryKeepsHttpWhenServerIsImplicit) {
  write("local:5000/hosts.toml", R"([host."https://m.example"])");
  auto hosts = RegistryHosts::load(dir_);
  ASSERT_TRUE(hosts);
  hosts->add_insecure("local:5000");
  auto eps = hosts->endpoints_for("local:5000");
  ASSERT_TRUE(eps);
  ASSERT_EQ(eps->size(), 2u);
  EXPECT_EQ((*eps)[0].url, "https://m.example");
  EXPECT_EQ((*eps)[1].url, "http://local:5000");
}

TEST_F(RegistryHostsTest, CaStringAndListRelativeAndAbsolute) {
  write("r.example/hosts.toml", R"(
[host."https://one.example"]
  ca = "certs/one.pem"
[host."https://two.example"]
  ca = ["/etc/certs/a.pem", "b.pem"]
)");
  auto eps = endpoints("r.example");
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0].ca_files, std::vector<std::string>{dir_ + "/r.example/certs/one.pem"});
  EXPECT_EQ(eps[1].ca_files, (std::vector<std::string>{"/etc/certs/a.pem", dir_ + "/r.example/b.pem"}));
  EXPECT_TRUE(eps[2].ca_files.empty());
}

TEST_F(RegistryHostsTest, ClientCertificateForms) {
  write("r.example/hosts.toml", R"(
[host."https://single.example"]
  client = "client.pem"
[host."https://list.example"]
  client = ["/c/1.pem", "2.pem"]
[host."https://pairs.example"]
  client = [["/c/client.cert", "/c/client.key"], ["combined.pem", ""]]
)");
  auto eps = endpoints("r.example");
  ASSERT_EQ(eps.size(), 4u);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  std::string d = dir_ + "/r.example/";
  EXPECT_EQ(eps[0].client_certs, (Pairs{{d + "client.pem", ""}}));
  // containerd: an array of strings is several files each holding cert and key.
  EXPECT_EQ(eps[1].client_certs, (Pairs{{"/c/1.pem", ""}, {d + "2.pem", ""}}));
  EXPECT_EQ(eps[2].client_certs, (Pairs{{"/c/client.cert", "/c/client.key"}, {d + "combined.pem", ""}}));
}

TEST_F(RegistryHostsTest, SkipVerifyOverridePathAndPaths) {
  write("r.example/hosts.toml", R"(
[host."https://plain.example/us"]
  skip_verify = true
[host."https://already.example/v2"]
[host."https://odd.example/v2/upstream"]
  override_path = true
[host."https://bare.example"]
  override_path = true
[host."https://trailing.example//sub/"]
)");
  auto eps = endpoints("r.example");
  ASSERT_EQ(eps.size(), 6u);
  EXPECT_EQ(eps[0].url, "https://plain.example");
  EXPECT_EQ(eps[0].path_prefix, "/us/v2");
  EXPECT_TRUE(eps[0].skip_verify);
  EXPECT_EQ(eps[1].path_prefix, "/v2");
  EXPECT_FALSE(eps[1].skip_verify);
  EXPECT_EQ(eps[2].url, "https://odd.example");
  EXPECT_EQ(eps[2].path_prefix, "/v2/upstream");
  EXPECT_EQ(eps[3].path_prefix, "");
  EXPECT_EQ(eps[4].path_prefix, "/sub/v2");
}

TEST_F(RegistryHostsTest, HeadersStringsAndLists) {
  write("r.example/hosts.toml", R"(
[host."https://m.example"]
  [host."https://m.example".header]
    x-one = "a"
    x-many = ["b", "c"]
)");
  auto eps = endpoints("r.example");
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].headers.at("x-one"), "a");
  EXPECT_EQ(eps[0].headers.at("x-many"), "b, c");
  EXPECT_TRUE(eps[1].headers.empty());
}

TEST_F(RegistryHostsTest, DefaultDirIsTheFallback) {
  write("_default/hosts.toml", R"([host."https://everything-mirror.example"])");
  write("special.example/hosts.toml", R"([host."https://special-mirror.example"])");
  auto other = endpoints("other.example");
  ASSERT_EQ(other.size(), 2u);
  EXPECT_EQ(other[0].url, "https://everything-mirror.example");
  EXPECT_EQ(other[1].url, "https://other.example");
  auto special = endpoints("special.example");
  ASSERT_EQ(special.size(), 2u);
  EXPECT_EQ(special[0].url, "https://special-mirror.example");
  EXPECT_EQ(special[1].url, "https://special.example");
}

TEST_F(RegistryHostsTest, PortDirectoriesBothSpellings) {
  write("10.1.1.1_5000_/hosts.toml", R"([host."http://underscore.example"])");
  write("10.1.1.2:5000/hosts.toml", R"([host."http://colon.example"])");
  EXPECT_EQ(endpoints("10.1.1.1:5000")[0].url, "http://underscore.example");
  EXPECT_EQ(endpoints("10.1.1.2:5000")[0].url, "http://colon.example");
  EXPECT_EQ(endpoints("10.1.1.2:5001").size(), 1u);
}

TEST_F(RegistryHostsTest, CertsDirWithoutHostsTomlLikeDocker) {
  write("certs.example/ca.crt", "x");
  write("certs.example/client.cert", "x");
  write("certs.example/client.key", "x");
  auto eps = endpoints("certs.example");
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].url, "https://certs.example");
  EXPECT_EQ(eps[0].ca_files, std::vector<std::string>{dir_ + "/certs.example/ca.crt"});
  ASSERT_EQ(eps[0].client_certs.size(), 1u);
  EXPECT_EQ(eps[0].client_certs[0].second, dir_ + "/certs.example/client.key");
}

TEST_F(RegistryHostsTest, EmptyCapabilitiesMeanAll) {
  write("r.example/hosts.toml", R"([host."https://m.example"]
capabilities = []
)");
  auto eps = endpoints("r.example");
  EXPECT_TRUE(eps[0].can_pull && eps[0].can_resolve);
}

TEST_F(RegistryHostsTest, ReadsTheFileAgainOnEveryLookup) {
  write("r.example/hosts.toml", R"([host."https://first.example"])");
  auto hosts = RegistryHosts::load(dir_);
  ASSERT_TRUE(hosts);
  EXPECT_EQ((*hosts->endpoints_for("r.example"))[0].url, "https://first.example");
  write("r.example/hosts.toml", R"([host."https://second.example"])");
  EXPECT_EQ((*hosts->endpoints_for("r.example"))[0].url, "https://second.example");
}

struct MalformedCase {
  std::string toml;
  std::string must_mention;
};

class RegistryHostsMalformedTest : public RegistryHostsTest, public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(RegistryHostsMalformedTest, ErrorNamesFileAndKey) {
  write("bad.example/hosts.toml", GetParam().toml);
  std::string file = dir_ + "/bad.example/hosts.toml";
  auto hosts = RegistryHosts::load(dir_);
  ASSERT_FALSE(hosts);
  EXPECT_EQ(hosts.error().code, EINVAL);
  EXPECT_NE(hosts.error().message.find(file), std::string::npos) << hosts.error().message;
  EXPECT_NE(hosts.error().message.find(GetParam().must_mention), std::string::npos) << hosts.error().message;
  auto direct = RegistryHosts::parse_hosts_toml(GetParam().toml, dir_ + "/bad.example", file, "bad.example", false);
  ASSERT_FALSE(direct);
  EXPECT_NE(direct.error().message.find(GetParam().must_mention), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RegistryHostsMalformedTest,
    ::testing::Values(MalformedCase{"server = \"https://x\n", ":1:"},  // unterminated string: line number
                      MalformedCase{"[host.\"https://m\"]\ncapabilities = \"pull\"\n",
                                    "host.\"https://m\".capabilities"},
                      MalformedCase{"[host.\"https://m\"]\ncapabilities = [\"pul\"]\n", "unknown capability 'pul'"},
                      MalformedCase{"[host.\"https://m\"]\nca = 5\n", "host.\"https://m\".ca"},
                      MalformedCase{"[host.\"https://m\"]\nclient = [[\"a\"]]\n", "host.\"https://m\".client"},
                      MalformedCase{"[host.\"https://m\"]\nskip_verify = \"yes\"\n", "skip_verify"},
                      MalformedCase{"[host.\"ftp://m\"]\n", "scheme must be http or https"},
                      MalformedCase{"server = 7\n", "server"}, MalformedCase{"host = 3\n", "host"},
                      MalformedCase{"[host.\"https://m\"]\nheader = { x = 1 }\n", "header.x"},
                      MalformedCase{"override_path = 1\n", "override_path"}));

TEST(RegistryNames, RepositoriesAndReferences) {
  using berth::storage::validate_reference;
  using berth::storage::validate_repository;
  EXPECT_TRUE(validate_repository("library/busybox"));
  EXPECT_TRUE(validate_repository("a/b-c/d_e.f"));
  EXPECT_FALSE(validate_repository("Library/busybox"));
  EXPECT_FALSE(validate_repository("a/../b"));
  EXPECT_FALSE(validate_repository("a//b"));
  EXPECT_FALSE(validate_repository("a/b?x=1"));
  EXPECT_FALSE(validate_repository(""));
  EXPECT_TRUE(validate_reference("latest"));
  EXPECT_TRUE(validate_reference("v1.2_3-rc"));
  EXPECT_TRUE(validate_reference("sha256:" + std::string(64, 'a')));
  EXPECT_FALSE(validate_reference("sha256:abc"));
  EXPECT_FALSE(validate_reference("../x"));
  EXPECT_FALSE(validate_reference("a/b"));
  EXPECT_FALSE(validate_reference(std::string(129, 'a')));
}

}  // namespace

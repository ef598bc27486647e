// Unit tests for network/cni_result: the 1.0.0, 0.4.0/0.3.x and 0.2.0 result shapes
// and how the pod's IPs are picked from them.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "network/cni_result.h"

namespace berth::network {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CniResultTest, ParsesVersion100) {
  constexpr const char* text = R"({
    "cniVersion": "1.0.0",
    "interfaces": [
      {"name": "cni0", "mac": "aa:bb:cc:dd:ee:01"},
      {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:02"},
      {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/run/berth/pods/p/net"}
    ],
    "ips": [
      {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
      {"address": "10.89.0.5/16", "gateway": "10.89.0.1", "interface": 2}
    ],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.89.0.254"}],
    "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["a.svc", "svc"], "options": ["ndots:5"]}
  })";
  auto r = CniResult::parse(std::string_view(text));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->cni_version, "1.0.0");
  ASSERT_EQ(r->interfaces.size(), 3u);
  EXPECT_EQ(r->interfaces[2].name, "eth0");
  EXPECT_EQ(r->interfaces[2].mac, "aa:bb:cc:dd:ee:03");
  EXPECT_EQ(r->interfaces[2].sandbox, "/run/berth/pods/p/net");
  EXPECT_EQ(r->interfaces[0].sandbox, "");
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[1].address, "10.89.0.5/16");
  EXPECT_EQ(r->ips[1].gateway, "10.89.0.1");
  EXPECT_EQ(r->ips[1].interface, 2u);
  EXPECT_TRUE(r->ips[0].is_ipv6());
  EXPECT_EQ(r->ips[0].ip(), "fd00::5");
  ASSERT_EQ(r->routes.size(), 2u);
  EXPECT_EQ(r->routes[0].dst, "0.0.0.0/0");
  EXPECT_EQ(r->routes[0].gw, "");
  EXPECT_EQ(r->routes[1].gw, "10.89.0.254");
  EXPECT_THAT(r->dns.nameservers, ElementsAre("10.96.0.10"));
  EXPECT_EQ(r->dns.domain, "cluster.local");
  EXPECT_THAT(r->dns.search, ElementsAre("a.svc", "svc"));
  EXPECT_THAT(r->dns.options, ElementsAre("ndots:5"));
  EXPECT_EQ(r->raw["ips"][1]["address"], "10.89.0.5/16");
  // IPv4 first, without prefix.
  EXPECT_THAT(r->pod_ips(), ElementsAre("10.89.0.5", "fd00::5"));
}

TEST(CniResultTest, ParsesVersion040WithVersionFields) {
  constexpr const char* text = R"({
    "cniVersion": "0.4.0",
    "interfaces": [{"name": "eth0", "sandbox": "/proc/1/ns/net"}],
    "ips": [{"version": "4", "address": "10.22.0.7/24", "gateway": "10.22.0.1", "interface": 0}],
    "dns": {}
  })";
  auto r = CniResult::parse(std::string_view(text));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->cni_version, "0.4.0");
  EXPECT_THAT(r->pod_ips(), ElementsAre("10.22.0.7"));
  EXPECT_TRUE(r->routes.empty());
  EXPECT_TRUE(r->dns.nameservers.empty());
}

TEST(CniResultTest, ParsesVersion031WithoutInterfaces) {
  auto r = CniResult::parse(std::string_view(
      R"({"cniVersion":"0.3.1","ips":[{"version":"6","address":"2001:db8::2/64"},{"version":"4","address":"10.0.0.2/8"}]})"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->interfaces.empty());
  EXPECT_THAT(r->pod_ips(), ElementsAre("10.0.0.2", "2001:db8::2"));
}

TEST(CniResultTest, ParsesLegacyIp4Ip6Shape) {
  auto r = CniResult::parse(std::string_view(R"({
    "cniVersion": "0.2.0",
    "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1", "routes": [{"dst": "0.0.0.0/0"}]},
    "dns": {"nameservers": ["8.8.8.8"]}
  })"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_THAT(r->pod_ips(), ElementsAre("10.1.2.3"));
  ASSERT_EQ(r->routes.size(), 1u);
  EXPECT_THAT(r->dns.nameservers, ElementsAre("8.8.8.8"));
}

TEST(CniResultTest, PodIpsPreferSandboxInterfaces) {
  // A host-side address (on the bridge) next to the pod's: only the pod's counts.
  auto r = CniResult::parse(std::string_view(R"({
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "br0"}, {"name": "eth0", "sandbox": "/x"}],
    "ips": [{"address": "10.9.0.1/24", "interface": 0}, {"address": "10.9.0.9/24", "interface": 1},
            {"address": "10.9.0.10/24", "interface": 7}]
  })"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_THAT(r->pod_ips(), ElementsAre("10.9.0.9"));
}

TEST(CniResultTest, EmptyResultHasNoIps) {
  auto r = CniResult::parse(std::string_view(R"({"cniVersion":"1.0.0"})"));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->pod_ips().empty());
}

struct BadResult {
  const char* text;
  const char* message;
};

class CniBadResultTest : public ::testing::TestWithParam<BadResult> {};

TEST_P(CniBadResultTest, IsEinval) {
  auto r = CniResult::parse(std::string_view(GetParam().text));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_THAT(r.error().message, HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, CniBadResultTest,
    ::testing::Values(BadResult{"nope", "not valid JSON"}, BadResult{"[]", "not a JSON object"},
                      BadResult{R"({"ips":{}})", "\"ips\" must be an array"},
                      BadResult{R"({"ips":[{"address":"10.0.0.1"}]})", "not an address in CIDR form"},
                      BadResult{R"({"ips":[{"address":"300.0.0.1/8"}]})", "not an address in CIDR form"},
                      BadResult{R"({"ips":[{"address":"10.0.0.1/8","gateway":"x"}]})", "\"gateway\" is not an IP"},
                      BadResult{R"({"ips":[{"address":"10.0.0.1/8","interface":-1}]})", "non-negative index"},
                      BadResult{R"({"interfaces":[{"mac":"x"}]})", "interfaces[0]: missing \"name\""},
                      BadResult{R"({"routes":[{"gw":"10.0.0.1"}]})", "\"dst\" is not a CIDR"},
                      BadResult{R"({"dns":{"nameservers":"8.8.8.8"}})", "\"nameservers\" must be an array"}));

}  // namespace
}  // namespace berth::network

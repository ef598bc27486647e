// The result a CNI plugin chain returns from ADD. Read in the 1.0.0 shape and in the
// 0.3.x/0.4.0 one (which differ only by the per-IP "version" field), plus the old
// 0.1/0.2 ip4/ip6 shape. The raw JSON is kept: it is what later plugins get as
// prevResult and what DEL and CHECK are given again.
#pragma once

#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace berth::network {

struct CniInterface {
  std::string name;
  std::string mac;
  std::string sandbox;  // netns path for interfaces inside the pod; "" on the host
};

struct CniIpConfig {
  std::string address;           // CIDR, "10.89.0.5/16"
  std::string gateway;           // may be empty
  std::optional<size_t> interface;  // index into interfaces
  bool is_ipv6() const;
  std::string ip() const;        // address without the prefix length
};

struct CniRoute {
  std::string dst;  // CIDR
  std::string gw;   // may be empty
};

struct CniDns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
};

struct CniResult {
  std::string cni_version;
  std::vector<CniInterface> interfaces;
  std::vector<CniIpConfig> ips;
  std::vector<CniRoute> routes;
  CniDns dns;
  nlohmann::json raw;

  // EINVAL with the reason when the JSON is not a result.
  static Result<CniResult> parse(const nlohmann::json& doc);
  static Result<CniResult> parse(std::string_view text);

  // The pod's addresses: IPs on interfaces inside the sandbox (every IP when none
  // is tied to a sandbox interface), IPv4 before IPv6, without prefix length.
  std::vector<std::string> pod_ips() const;
};

}  // namespace berth::network

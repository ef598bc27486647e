#include "network/cni_result.h"

#include <arpa/inet.h>

namespace berth::network {

namespace {

using nlohmann::json;

std::unexpected<Error> bad(const std::string& what) { return invalid("CNI result: " + what); }

Result<std::string> optional_string(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return bad(where + "\"" + key + "\" must be a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> optional_strings(const json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return bad(where + "\"" + key + "\" must be an array of strings");
  for (auto& v : *it) {
    if (!v.is_string()) return bad(where + "\"" + key + "\" must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

bool valid_ip(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, text.c_str(), buf) == 1 || ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

bool valid_cidr(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos || slash + 1 >= text.size()) return false;
  for (size_t i = slash + 1; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  return valid_ip(text.substr(0, slash));
}

// Objects holding an array under `key`; missing or null is an empty list.
Result<const json*> optional_array(const json& obj, const char* key) {
  static const json empty = json::array();
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return &empty;
  if (!it->is_array()) return bad(std::string("\"") + key + "\" must be an array");
  return &*it;
}

Result<CniRoute> parse_route(const json& r, const std::string& where) {
  if (!r.is_object()) return bad(where + "must be an object");
  CniRoute route;
  route.dst = BERTH_TRY(optional_string(r, "dst", where));
  if (!valid_cidr(route.dst)) return bad(where + "\"dst\" is not a CIDR: \"" + route.dst + "\"");
  route.gw = BERTH_TRY(optional_string(r, "gw", where));
  if (!route.gw.empty() && !valid_ip(route.gw)) return bad(where + "\"gw\" is not an IP: \"" + route.gw + "\"");
  return route;
}

Result<CniIpConfig> parse_ip(const json& entry, const std::string& where, const char* address_key) {
  if (!entry.is_object()) return bad(where + "must be an object");
  CniIpConfig ip;
  ip.address = BERTH_TRY(optional_string(entry, address_key, where));
  if (!valid_cidr(ip.address))
    return bad(where + "\"" + address_key + "\" is not an address in CIDR form: \"" + ip.address + "\"");
  ip.gateway = BERTH_TRY(optional_string(entry, "gateway", where));
  if (!ip.gateway.empty() && !valid_ip(ip.gateway))
    return bad(where + "\"gateway\" is not an IP: \"" + ip.gateway + "\"");
  if (auto it = entry.find("interface"); it != entry.end() && !it->is_null()) {
    if (!it->is_number_unsigned()) return bad(where + "\"interface\" must be a non-negative index");
    ip.interface = it->get<size_t>();
  }
  return ip;
}

Result<CniDns> parse_dns(const json& doc) {
  CniDns dns;
  auto it = doc.find("dns");
  if (it == doc.end() || it->is_null()) return dns;
  if (!it->is_object()) return bad("\"dns\" must be an object");
  dns.nameservers = BERTH_TRY(optional_strings(*it, "nameservers", "dns: "));
  dns.domain = BERTH_TRY(optional_string(*it, "domain", "dns: "));
  dns.search = BERTH_TRY(optional_strings(*it, "search", "dns: "));
  dns.options = BERTH_TRY(optional_strings(*it, "options", "dns: "));
  return dns;
}

// 0.1.0/0.2.0: {"ip4": {"ip", "gateway", "routes"}, "ip6": {...}, "dns"}.
Result<> parse_legacy_ips(const json& doc, CniResult& out) {
  for (const char* family : {"ip4", "ip6"}) {
    auto it = doc.find(family);
    if (it == doc.end() || it->is_null()) continue;
    std::string where = std::string(family) + ": ";
    out.ips.push_back(BERTH_TRY(parse_ip(*it, where, "ip")));
    const json* routes = BERTH_TRY(optional_array(*it, "routes"));
    for (size_t i = 0; i < routes->size(); ++i)
      out.routes.push_back(BERTH_TRY(parse_route((*routes)[i], where + "routes[" + std::to_string(i) + "]: ")));
  }
  return {};
}

}  // namespace

bool CniIpConfig::is_ipv6() const { return address.find(':') != std::string::npos; }

std::string CniIpConfig::ip() const { return address.substr(0, address.find('/')); }

Result<CniResult> CniResult::parse(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return bad("not valid JSON");
  return parse(doc);
}

Result<CniResult> CniResult::parse(const json& doc) {
  if (!doc.is_object()) return bad("not a JSON object");
  CniResult out;
  out.cni_version = BERTH_TRY(optional_string(doc, "cniVersion", ""));
  out.raw = doc;
  out.dns = BERTH_TRY(parse_dns(doc));
  if (doc.contains("ip4") || doc.contains("ip6")) {
    BERTH_TRY_VOID(parse_legacy_ips(doc, out));
    return out;
  }

  const json* interfaces = BERTH_TRY(optional_array(doc, "interfaces"));
  for (size_t i = 0; i < interfaces->size(); ++i) {
    const json& entry = (*interfaces)[i];
    std::string where = "interfaces[" + std::to_string(i) + "]: ";
    if (!entry.is_object()) return bad(where + "must be an object");
    CniInterface iface;
    iface.name = BERTH_TRY(optional_string(entry, "name", where));
    if (iface.name.empty()) return bad(where + "missing \"name\"");
    iface.mac = BERTH_TRY(optional_string(entry, "mac", where));
    iface.sandbox = BERTH_TRY(optional_string(entry, "sandbox", where));
    out.interfaces.push_back(std::move(iface));
  }
  const json* ips = BERTH_TRY(optional_array(doc, "ips"));
  for (size_t i = 0; i < ips->size(); ++i)
    out.ips.push_back(BERTH_TRY(parse_ip((*ips)[i], "ips[" + std::to_string(i) + "]: ", "address")));
  const json* routes = BERTH_TRY(optional_array(doc, "routes"));
  for (size_t i = 0; i < routes->size(); ++i)
    out.routes.push_back(BERTH_TRY(parse_route((*routes)[i], "routes[" + std::to_string(i) + "]: ")));
  return out;
}

std::vector<std::string> CniResult::pod_ips() const {
  // An index past the end of interfaces is a plugin bug; such an IP simply does not
  // count as being in the sandbox.
  auto in_sandbox = [&](const CniIpConfig& ip) {
    return ip.interface && *ip.interface < interfaces.size() && !interfaces[*ip.interface].sandbox.empty();
  };
  bool any_in_sandbox = false;
  for (auto& ip : ips) any_in_sandbox = any_in_sandbox || in_sandbox(ip);

  std::vector<std::string> v4, v6;
  for (auto& ip : ips) {
    if (any_in_sandbox && !in_sandbox(ip)) continue;
    (ip.is_ipv6() ? v6 : v4).push_back(ip.ip());
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

}  // namespace berth::network

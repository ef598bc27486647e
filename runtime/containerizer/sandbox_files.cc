#include "runtime/containerizer/sandbox_files.h"

#include "common/file_util.h"

namespace berth::pod {

namespace {

std::string join(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

Result<> check_no_newline(const std::vector<std::string>& items, const char* what) {
  for (auto& s : items)
    if (s.find_first_of("\n\r") != std::string::npos) return invalid(std::string("dns ") + what + " contains a newline");
  return {};
}

}  // namespace

std::string resolv_conf_text(const DnsConfig& dns) {
  std::string out;
  if (!dns.searches.empty()) out += "search " + join(dns.searches, ' ') + "\n";
  for (auto& s : dns.servers) out += "nameserver " + s + "\n";
  if (!dns.options.empty()) out += "options " + join(dns.options, ' ') + "\n";
  return out;
}

Result<SandboxFiles> write_sandbox_files(const std::string& dir, const PodSandboxSpec& spec,
                                         const std::string& hostname, bool host_network) {
  BERTH_TRY_VOID(check_no_newline(spec.dns.servers, "server"));
  BERTH_TRY_VOID(check_no_newline(spec.dns.searches, "search"));
  BERTH_TRY_VOID(check_no_newline(spec.dns.options, "option"));
  SandboxFiles files{dir + "/hostname", dir + "/hosts", dir + "/resolv.conf"};

  BERTH_TRY_VOID(write_file_atomic(files.hostname, hostname + "\n", 0644));

  std::string hosts;
  if (host_network) {
    hosts = read_file("/etc/hosts").value_or("127.0.0.1\tlocalhost\n");
  } else {
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";
    if (!hostname.empty()) hosts += "127.0.1.1\t" + hostname + "\n";
  }
  BERTH_TRY_VOID(write_file_atomic(files.hosts, hosts, 0644));

  bool dns_set = !spec.dns.servers.empty() || !spec.dns.searches.empty() || !spec.dns.options.empty();
  std::string resolv = dns_set ? resolv_conf_text(spec.dns) : read_file("/etc/resolv.conf").value_or("");
  BERTH_TRY_VOID(write_file_atomic(files.resolv_conf, resolv, 0644));
  return files;
}

}  // namespace berth::pod

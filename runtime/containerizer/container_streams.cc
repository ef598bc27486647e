// Commands and connections into running containers and pods: ExecSync, and what the
// streaming server relays (exec, attach, port-forward).
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"
#include "runtime/containerizer/containerizer_impl.h"
#include "runtime/containerizer/exec_runner.h"
#include "runtime/shim/shim_client.h"

namespace berth::pod {

namespace {

// The container's own process with `argv` in place of its command.
Result<ExecInvocation> exec_invocation(Containerizer::Impl& impl, Containerizer& c, const std::string& id,
                                       const std::vector<std::string>& argv) {
  if (argv.empty()) return invalid("exec needs a command");
  auto st = BERTH_TRY(c.container_status(id));
  if (st.state != ContainerState::running) return fail(EBUSY, "container " + id + " is not running");
  auto config_text = BERTH_TRY(read_file(impl.container_dir(id) + "/config.json"));
  nlohmann::json process;
  try {
    process = nlohmann::json::parse(config_text).at("process");
  } catch (const std::exception& e) {
    return fail(EIO, "read the process of container " + id + ": " + e.what());
  }
  process["args"] = argv;
  ExecInvocation inv;
  inv.runtime_binary = impl.options.runtime_binary;
  inv.runtime_root = impl.runtime_root();
  inv.container_id = id;
  inv.process_json = process.dump();
  inv.work_dir = impl.container_dir(id);
  return inv;
}

// A TCP connection to localhost:port made from inside the network namespace at
// `netns_path` ("" = the host's). A socket belongs to the namespace it was created
// in, so a short-lived thread joins the namespace, makes and connects the socket,
// and ends; the daemon's other threads never change namespace.
Result<UniqueFd> connect_in_netns(const std::string& netns_path, uint16_t port) {
  Result<UniqueFd> result = fail(EIO, "not attempted");
  std::thread worker([&] {
    if (!netns_path.empty()) {
      UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns) {
        result = sys_fail("open network namespace " + netns_path);
        return;
      }
      if (::setns(ns.get(), CLONE_NEWNET) != 0) {
        result = sys_fail("join network namespace " + netns_path);
        return;
      }
    }
    // IPv4 loopback first, then IPv6, as kubelet's own port forwarding does.
    int last_err = 0;
    for (int family : {AF_INET, AF_INET6}) {
      UniqueFd sock(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!sock) {
        last_err = errno;
        continue;
      }
      int rc;
      if (family == AF_INET) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
      } else {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        a.sin6_addr = in6addr_loopback;
        rc = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
      }
      if (rc == 0) {
        result = std::move(sock);
        return;
      }
      last_err = errno;
    }
    result = sys_fail("connect to localhost:" + std::to_string(port), last_err);
  });
  worker.join();
  return result;
}

}  // namespace

Result<ExecResult> Containerizer::exec_sync(const std::string& id, const std::vector<std::string>& argv,
                                            std::chrono::milliseconds timeout) {
  auto inv = BERTH_TRY(exec_invocation(*impl_, *this, id, argv));
  return run_exec(inv, ExecSyncLimits{.timeout = timeout});
}

Result<std::unique_ptr<ExecProcess>> Containerizer::exec(const std::string& id, const std::vector<std::string>& argv,
                                                         const ExecIo& io) {
  auto inv = BERTH_TRY(exec_invocation(*impl_, *this, id, argv));
  inv.io = io;
  return ExecProcess::start(inv);
}

Result<Containerizer::AttachTarget> Containerizer::attach(const std::string& id) {
  auto rec = BERTH_TRY(impl_->load_container(id));
  if (!rec || rec->phase == ContainerPhase::creating) return fail(ENOENT, "container " + id + " not found");
  if (rec->phase != ContainerPhase::running) return fail(EBUSY, "container " + id + " is not running");
  auto conn = connect_attach(impl_->shim_dir(id));
  if (!conn) {
    if (conn.error().code == ECONNREFUSED || conn.error().code == ENOENT)
      return fail(EBUSY, "container " + id + " is not running");
    return std::unexpected(conn.error().wrap("attach to " + id));
  }
  return AttachTarget{std::move(*conn), rec->spec.tty, rec->spec.stdin_open};
}

Result<UniqueFd> Containerizer::connect_pod_port(const std::string& pod_id, uint16_t port) {
  if (port == 0) return invalid("port 0 cannot be forwarded");
  auto rec = BERTH_TRY(impl_->load_pod(pod_id));
  if (!rec || rec->phase == PodPhase::creating) return fail(ENOENT, "pod sandbox " + pod_id + " not found");
  if (rec->phase != PodPhase::ready) return fail(EBUSY, "pod sandbox " + pod_id + " is not ready");
  return connect_in_netns(rec->netns_path, port);
}

}  // namespace berth::pod

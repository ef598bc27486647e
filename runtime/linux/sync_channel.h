// Parent <-> container-init messages over a SOCK_SEQPACKET pair: one message per
// step, so neither side can misread a boundary, and EOF means the peer died.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace berth {

enum class SyncMsg : char {
  go = 'g',              // parent -> child: id maps written, start building the container
  cgroup_joined = 'c',   // parent -> child: the child is in its cgroups (may arrive late)
  need_id_maps = 'm',    // child -> parent: unshared a user namespace, write maps for me
  id_maps_done = 'M',
  init_pid = 'p',        // child -> parent: the real init is this (host) pid
  run_hooks = 'h',       // child -> parent: namespaces ready, run prestart/createRuntime
  hooks_done = 'H',
  seccomp_fd = 'f',       // child -> parent: the seccomp listener fd follows (SCM_RIGHTS)
  ready = 'r',           // child -> parent: container created, waiting for start
  ack = 'a',             // parent -> child: state recorded; stop dying with the parent
  start = 's',           // parent -> child: exec the process now
  error = 'e',           // either way: payload is the message
};

class SyncChannel {
 public:
  SyncChannel() = default;
  explicit SyncChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  static Result<std::pair<SyncChannel, SyncChannel>> make_pair();

  Result<> send(SyncMsg type, const std::string& payload = "");
  // Waits for the next message; EOF becomes an error "peer exited".
  Result<std::pair<SyncMsg, std::string>> receive();
  // Receives and requires `type`; an error message from the peer becomes the error.
  Result<std::string> expect(SyncMsg type);
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

}  // namespace berth

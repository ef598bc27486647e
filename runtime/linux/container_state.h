// What berth remembers about a container between commands: <root>/<id>/state.json
// (replaced atomically) plus the config it was created from. The status is never
// stored: it is derived from the process, the exec fifo and the freezer each time.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"

namespace berth {

enum class Status { creating, created, running, paused, stopped };
const char* status_name(Status s);

struct ContainerState {
  std::string id;
  pid_t pid = 0;                 // host pid of the container's init; 0 while creating
  unsigned long long start_time = 0;  // /proc/<pid>/stat starttime, guards against pid reuse
  std::string bundle;
  std::string rootfs;
  std::string created;           // RFC 3339
  std::string cgroup_path;       // "/berth/<id>"
  std::map<std::string, std::string> annotations;
  bool created_done = false;     // false: a create died half-way; delete cleans up

  std::string to_json() const;
  static Result<ContainerState> from_json(const std::string& text);
};

// The OCI `state` document: ociVersion, id, status, pid, bundle, annotations (+ the
// rootfs, created and owner fields runc adds).
// Pretty for people (`berth state`); compact for hooks, which read it as one line.
std::string oci_state_json(const ContainerState& s, Status status, bool pretty = true);

// /proc/<pid>/stat field 22; 0 if the process is gone.
unsigned long long process_start_time(pid_t pid);
// Alive, not a zombie, and the same process (start time) as recorded.
bool process_matches(pid_t pid, unsigned long long start_time);

std::string now_rfc3339();

}  // namespace berth

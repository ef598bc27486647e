// process.terminal: the container gets a fresh pty from its own devpts; the master
// side goes to whoever holds the console socket (runc's --console-socket protocol:
// one SCM_RIGHTS message over a unix stream socket), or to berth itself in the
// foreground, which then relays it to its own terminal.
#pragma once

#include <optional>
#include <string>

#include "common/error.h"
#include "common/unique_fd.h"
#include "runtime/oci/spec.h"

namespace berth {

Result<UniqueFd> connect_console_socket(const std::string& path);

// Child side, inside the container's mount namespace: opens /dev/ptmx, makes the
// slave the controlling terminal and stdio, optionally bind-mounts it on
// /dev/console, and sends the master over `socket_fd`.
Result<> setup_terminal(int socket_fd, const std::optional<oci::ConsoleSize>& size, bool mount_console);

Result<> send_fd(int socket_fd, int fd, const std::string& name);
Result<UniqueFd> receive_fd(int socket_fd);

}  // namespace berth

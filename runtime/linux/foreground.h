// `berth run` / `berth exec` without --detach: berth stays with the process,
// relays the signals it gets, relays its terminal when there is a pty, and reports
// the exit status the way a shell does.
#pragma once

#include <sys/types.h>

#include "common/error.h"

namespace berth {

// Blocks the signals the supervisor relays; call before the child is forked so none
// is lost (the child unblocks them right before exec).
void block_relayed_signals();

// Waits for `pid` (our child or reparented to us as subreaper), relaying signals
// and, with master_fd >= 0, copying stdin -> pty and pty -> stdout. Returns the
// exit code, 128+N for a signal.
Result<int> supervise(pid_t pid, int pidfd, int master_fd);

int exit_code_of(int wait_status);

}  // namespace berth

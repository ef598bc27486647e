#include "runtime/shim/pause_holder.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace berth::shim {

int run_pause_holder() {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGCHLD);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGINT);
  if (::chdir("/") != 0) {
    // Staying where we were started only pins that directory; carry on.
  }
  for (;;) {
    // Reap first: children may have exited before we got here.
    while (::waitpid(-1, nullptr, WNOHANG | __WALL) > 0) {
    }
    siginfo_t info;
    int sig = ::sigwaitinfo(&wanted, &info);
    if (sig == SIGTERM || sig == SIGINT) return 0;
  }
}

}  // namespace berth::shim

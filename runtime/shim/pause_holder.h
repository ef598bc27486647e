// `berth-shim pause`: the process that holds a pod's pid namespace open, as its PID 1.
// It does nothing but reap the orphans the namespace hands it, and exits 0 on SIGTERM
// or SIGINT. Signals are blocked and taken synchronously: a PID 1 without handlers
// would have the kernel drop them.
#pragma once

namespace berth::shim {

int run_pause_holder();

}  // namespace berth::shim

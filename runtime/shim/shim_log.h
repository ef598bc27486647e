// The shim's own diagnostics. It has no stderr (it is a daemon), so notes go to
// `shim.log` in the state dir, which is its working directory. Rare events only:
// the log is opened per message and never holds an fd.
#pragma once

namespace berth::shim {

[[gnu::format(printf, 1, 2)]] void shim_log(const char* format, ...);

}  // namespace berth::shim

// Signal spellings as they reach the CRI front end (image configs say "SIGQUIT",
// "QUIT" or "3") brought to one canonical name. Kept apart from the CRI translation
// because it needs <signal.h>, whose macros clash with the CRI Signal enumerators.
#pragma once

#include <string>
#include <string_view>

namespace berth::cri {

// "15", "term", "SIGTERM" -> "SIGTERM"; "SIGRTMIN+2", "36" -> "SIGRTMIN+2";
// "SIGRTMAX" and "SIGRTMIN" stay themselves. "" when the text names no signal.
std::string canonical_signal_name(std::string_view text);

}  // namespace berth::cri

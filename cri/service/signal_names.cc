#include "cri/service/signal_names.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace berth::cri {

namespace {

bool parse_number(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Real-time signals are named relative to the nearer end, as CRI's enum does.
std::string realtime_name(int number) {
  if (number == SIGRTMIN) return "SIGRTMIN";
  if (number == SIGRTMAX) return "SIGRTMAX";
  int from_min = number - SIGRTMIN, from_max = SIGRTMAX - number;
  if (from_min <= from_max) return "SIGRTMIN+" + std::to_string(from_min);
  return "SIGRTMAX-" + std::to_string(from_max);
}

// glibc's abbreviation, except that SIGIO keeps the name CRI, Go and the engine use
// (glibc calls it POLL).
std::string abbreviation(int number) {
  const char* abbrev = ::sigabbrev_np(number);
  if (!abbrev) return {};
  return number == SIGIO ? "IO" : abbrev;
}

std::string name_of(int number) {
  if (number >= SIGRTMIN && number <= SIGRTMAX) return realtime_name(number);
  std::string abbrev = abbreviation(number);
  return abbrev.empty() ? abbrev : "SIG" + abbrev;
}

}  // namespace

std::string canonical_signal_name(std::string_view text) {
  int number = 0;
  if (parse_number(text, number)) return number > 0 && number <= SIGRTMAX ? name_of(number) : std::string();

  std::string name(text);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  if (!name.starts_with("SIG")) name = "SIG" + name;
  std::string_view rest = std::string_view(name).substr(3);
  if (rest.empty()) return {};
  if (rest.starts_with("RTMIN+") || rest.starts_with("RTMAX-")) {
    int offset = 0;
    if (!parse_number(rest.substr(6), offset) || offset < 0) return {};
    int value = rest.starts_with("RTMIN+") ? SIGRTMIN + offset : SIGRTMAX - offset;
    return value >= SIGRTMIN && value <= SIGRTMAX ? realtime_name(value) : std::string();
  }
  if (rest == "RTMIN" || rest == "RTMAX") return name;
  // Names glibc knows only under another spelling.
  if (rest == "CLD") return "SIGCHLD";
  if (rest == "POLL") return "SIGIO";
  if (rest == "IOT") return "SIGABRT";
  for (int n = 1; n < SIGRTMIN; ++n)
    if (rest == abbreviation(n)) return name;
  return {};
}

}  // namespace berth::cri

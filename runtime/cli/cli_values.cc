#include "runtime/cli/cli_values.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace berth::cli {

namespace {

constexpr std::pair<const char*, int> kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT},   {"ILL", SIGILL},     {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"IOT", SIGIOT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},     {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU},   {"URG", SIGURG},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL}, {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

bool parse_int(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<int> parse_signal(const std::string& text) {
  int num = 0;
  if (parse_int(text, num)) {
    if (num <= 0 || num > SIGRTMAX) return invalid("invalid signal " + text);
    return num;
  }
  std::string name = text;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  if (name.starts_with("SIG")) name = name.substr(3);
  for (auto& [n, value] : kSignals)
    if (name == n) return value;
  if (name == "RTMIN") return SIGRTMIN;
  if (name == "RTMAX") return SIGRTMAX;
  if (name.starts_with("RTMIN+") && parse_int(std::string_view(name).substr(6), num) && num >= 0 &&
      SIGRTMIN + num <= SIGRTMAX)
    return SIGRTMIN + num;
  if (name.starts_with("RTMAX-") && parse_int(std::string_view(name).substr(6), num) && num >= 0 &&
      SIGRTMAX - num >= SIGRTMIN)
    return SIGRTMAX - num;
  return invalid("unknown signal \"" + text + "\"");
}

Result<int64_t> parse_bytes(const std::string& text) {
  if (text == "-1") return int64_t{-1};
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t.ends_with("ib")) t.pop_back(), t.pop_back();
  else if (t.ends_with("b") && t.size() > 1 && std::isalpha(static_cast<unsigned char>(t[t.size() - 2]))) t.pop_back();
  double multiplier = 1;
  if (!t.empty() && std::isalpha(static_cast<unsigned char>(t.back()))) {
    switch (t.back()) {
      case 'b': multiplier = 1; break;
      case 'k': multiplier = 1024.0; break;
      case 'm': multiplier = 1024.0 * 1024; break;
      case 'g': multiplier = 1024.0 * 1024 * 1024; break;
      case 't': multiplier = 1024.0 * 1024 * 1024 * 1024; break;
      case 'p': multiplier = 1024.0 * 1024 * 1024 * 1024 * 1024; break;
      default: return invalid("invalid size \"" + text + "\"");
    }
    t.pop_back();
  }
  // Plain decimal only ("1.5"): strtod alone would also take hex, exponents and signs.
  if (t.empty() || t.find_first_not_of("0123456789.") != std::string::npos || t.front() == '.' ||
      std::count(t.begin(), t.end(), '.') > 1)
    return invalid("invalid size \"" + text + "\"");
  char* end = nullptr;
  double value = std::strtod(t.c_str(), &end);
  if (!end || *end != '\0' || value < 0 || !std::isfinite(value)) return invalid("invalid size \"" + text + "\"");
  double bytes = value * multiplier;
  if (bytes > 9.2e18) return invalid("size \"" + text + "\" is too large");
  return static_cast<int64_t>(bytes);
}

Result<std::pair<uint32_t, uint32_t>> parse_user(const std::string& text) {
  auto colon = text.find(':');
  std::string u = text.substr(0, colon);
  std::string g = colon == std::string::npos ? "0" : text.substr(colon + 1);
  uint32_t uid = 0, gid = 0;
  auto [p1, e1] = std::from_chars(u.data(), u.data() + u.size(), uid);
  auto [p2, e2] = std::from_chars(g.data(), g.data() + g.size(), gid);
  if (u.empty() || e1 != std::errc() || p1 != u.data() + u.size() || e2 != std::errc() || p2 != g.data() + g.size())
    return invalid("invalid user \"" + text + "\": want uid[:gid] as numbers");
  return std::pair{uid, gid};
}

}  // namespace berth::cli

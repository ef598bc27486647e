#include "common/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace berth::log {

namespace {

int g_fd = STDERR_FILENO;
Format g_format = Format::text;
Level g_min = Level::warn;

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warning";
    case Level::error: return "error";
  }
  return "info";
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string timestamp() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

}  // namespace

void configure(const std::string& path, Format format, Level min_level) {
  g_format = format;
  g_min = min_level;
  if (path.empty()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    write(Level::warn, "cannot open log file " + path + "; logging to stderr");
    return;
  }
  if (g_fd != STDERR_FILENO) ::close(g_fd);
  g_fd = fd;
}

void write(Level level, std::string_view message) {
  // Errors always go out: they are what a caller (containerd, a shim) reports.
  if (level < g_min && level != Level::error) return;
  std::string line;
  if (g_format == Format::json) {
    line = "{\"level\":\"" + std::string(level_name(level)) + "\",\"msg\":\"" + json_escape(message) +
           "\",\"time\":\"" + timestamp() + "\"}\n";
  } else if (g_fd == STDERR_FILENO) {
    line = "berth: " + std::string(message) + "\n";
  } else {
    line = timestamp() + " " + level_name(level) + " " + std::string(message) + "\n";
  }
  ssize_t ignored = ::write(g_fd, line.data(), line.size());
  (void)ignored;
}

int fd() { return g_fd; }

}  // namespace berth::log

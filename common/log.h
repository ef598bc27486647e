// Process-wide logger for the CLI tools: text or JSON lines (the format runc writes
// with --log-format json, which containerd's shim parses), to stderr or a file.
#pragma once

#include <string>
#include <string_view>

namespace berth::log {

enum class Level { debug, info, warn, error };
enum class Format { text, json };

// Opens `path` for append ("" keeps stderr). Never fails the caller: a log file that
// cannot be opened falls back to stderr with a warning.
void configure(const std::string& path, Format format, Level min_level);

void write(Level level, std::string_view message);
inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

// The fd log lines go to: children that must report errors (container init before
// exec) keep it open.
int fd();

}  // namespace berth::log

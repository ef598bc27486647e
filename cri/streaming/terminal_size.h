// Resize messages: JSON objects {"Width":W,"Height":H} written one after another on
// the resize stream, split across data frames wherever the transport likes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace berth::streaming {

struct TerminalSize {
  uint16_t width = 0, height = 0;
};

class TerminalSizeDecoder {
 public:
  // Every size completed by `data`. EPROTO for anything that is not a stream of
  // such objects (or an object longer than 4 KiB); the error sticks.
  Result<std::vector<TerminalSize>> feed(std::string_view data);

 private:
  std::string buf_;
  bool failed_ = false;
};

// One whole message (the websocket resize channel carries one object per message).
Result<TerminalSize> parse_terminal_size(std::string_view json);

}  // namespace berth::streaming

// Pull progress for people: on a terminal one redrawn line per layer with a bar,
// elsewhere (logs, CI) one plain line per layer state change.
#pragma once

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "storage/image_source.h"

namespace berth::ctl {

class PullProgressView {
 public:
  PullProgressView(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}
  void update(const storage::PullProgress& p);
  void finish();

 private:
  struct Row {
    std::string state;
    int64_t done = 0;
    int64_t total = 0;
  };
  void redraw();

  std::FILE* out_;
  bool terminal_;
  std::mutex mutex_;
  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
  size_t drawn_ = 0;
};

}  // namespace berth::ctl

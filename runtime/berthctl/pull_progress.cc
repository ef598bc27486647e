#include "runtime/berthctl/pull_progress.h"

namespace berth::ctl {

namespace {

std::string short_digest(const std::string& digest) {
  auto colon = digest.find(':');
  return digest.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

std::string human(int64_t bytes) {
  char buf[32];
  if (bytes >= (1 << 30)) {
    snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  } else if (bytes >= (1 << 20)) {
    snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  }
  return buf;
}

const char* state_name(storage::PullProgress::Phase phase) {
  using Phase = storage::PullProgress::Phase;
  switch (phase) {
    case Phase::resolved:
      return "resolved";
    case Phase::exists:
      return "already present";
    case Phase::downloading:
      return "downloading";
    case Phase::downloaded:
      return "downloaded";
    case Phase::unpacking:
      return "unpacking";
    case Phase::unpacked:
      return "unpacked";
    case Phase::done:
      return "done";
  }
  return "";
}

}  // namespace

void PullProgressView::update(const storage::PullProgress& p) {
  std::lock_guard lock(mutex_);
  if (p.phase == storage::PullProgress::Phase::done) return;
  std::string key = short_digest(p.digest);
  auto [it, added] = rows_.try_emplace(key);
  if (added) order_.push_back(key);
  Row& row = it->second;
  std::string state = state_name(p.phase);
  bool changed = row.state != state;
  row.state = state;
  row.done = p.done;
  row.total = p.total;
  if (terminal_) {
    redraw();
  } else if (changed) {
    // Plain output: one line per state change, never per chunk.
    std::fprintf(out_, "%s: %s %s\n", key.c_str(), state.c_str(), row.total ? human(row.total).c_str() : "");
    std::fflush(out_);
  }
}

void PullProgressView::redraw() {
  if (drawn_) std::fprintf(out_, "\x1b[%zuA", drawn_);
  for (auto& key : order_) {
    const Row& row = rows_[key];
    constexpr int kWidth = 30;
    int filled = row.total > 0 ? static_cast<int>(kWidth * std::min<int64_t>(row.done, row.total) / row.total) : 0;
    std::string bar(static_cast<size_t>(filled), '=');
    bar.resize(kWidth, ' ');
    std::fprintf(out_, "\x1b[2K%s: %-16s [%s] %s / %s\n", key.c_str(), row.state.c_str(), bar.c_str(),
                 human(row.done).c_str(), human(row.total).c_str());
  }
  drawn_ = order_.size();
  std::fflush(out_);
}

void PullProgressView::finish() {
  std::lock_guard lock(mutex_);
  if (terminal_ && drawn_) redraw();
}

}  // namespace berth::ctl

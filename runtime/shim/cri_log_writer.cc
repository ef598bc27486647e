#include "runtime/shim/cri_log_writer.h"

#include <time.h>

#include <cstring>

namespace berth::shim {

namespace {

void put_digits(char* out, unsigned long long value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// Proleptic Gregorian date of a day count since 1970-01-01 (the era arithmetic of
// Howard Hinnant's civil-from-days). gmtime_r would do, but in a static binary its
// first call may go looking for /etc/localtime.
void civil_from_days(long long days, long long& year, unsigned& month, unsigned& day) {
  days += 719468;
  long long era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned day_of_era = static_cast<unsigned>(days - era * 146097);
  unsigned year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  unsigned mp = (5 * day_of_year + 2) / 153;
  day = day_of_year - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<long long>(year_of_era) + era * 400 + (month <= 2 ? 1 : 0);
}

}  // namespace

CriLogWriter::CriLogWriter(LogSink& sink, const char* stream, size_t max_line, Clock clock)
    : sink_(sink), stream_(stream), max_line_(max_line ? max_line : kDefaultMaxLine), clock_(clock),
      pending_(new char[max_line_ + 1]) {}

int64_t CriLogWriter::realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void CriLogWriter::format_timestamp(int64_t ns, char* out) {
  long long secs = ns / 1000000000;
  long long frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  long long days = secs / 86400;
  long long rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  long long year;
  unsigned month, day;
  civil_from_days(days, year, month, day);
  // 2026-11-21T10:00:00.123456789Z
  put_digits(out, static_cast<unsigned long long>(year), 4);
  out[4] = '-';
  put_digits(out + 5, month, 2);
  out[7] = '-';
  put_digits(out + 8, day, 2);
  out[10] = 'T';
  put_digits(out + 11, static_cast<unsigned long long>(rem / 3600), 2);
  out[13] = ':';
  put_digits(out + 14, static_cast<unsigned long long>(rem / 60 % 60), 2);
  out[16] = ':';
  put_digits(out + 17, static_cast<unsigned long long>(rem % 60), 2);
  out[19] = '.';
  put_digits(out + 20, static_cast<unsigned long long>(frac), 9);
  out[29] = 'Z';
}

void CriLogWriter::write(const char* data, size_t size) {
  while (size > 0) {
    const char* newline = static_cast<const char*>(std::memchr(data, '\n', size));
    size_t chunk = newline ? static_cast<size_t>(newline - data) : size;
    append(data, chunk);
    if (!newline) return;
    end_line();
    data += chunk + 1;
    size -= chunk + 1;
  }
}

void CriLogWriter::finish() {
  if (pending_size_ == 0) return;
  // Like containerd: an unterminated tail is partial, "\r" included.
  if (pending_size_ > max_line_) {
    emit('P', pending_.get(), max_line_);
    emit('P', pending_.get() + max_line_, pending_size_ - max_line_);
  } else {
    emit('P', pending_.get(), pending_size_);
  }
  pending_size_ = 0;
}

// `data` holds no '\n'.
void CriLogWriter::append(const char* data, size_t size) {
  auto cut_piece = [this] {
    emit('P', pending_.get(), max_line_);
    pending_[0] = pending_[max_line_];
    pending_size_ = 1;
  };
  while (size > 0) {
    // Full, and more of the same line follows: the line is longer than max_line_ even
    // if the held-back byte is a '\r'.
    if (pending_size_ == max_line_ + 1) cut_piece();
    size_t take = max_line_ + 1 - pending_size_;
    if (take > size) take = size;
    std::memcpy(pending_.get() + pending_size_, data, take);
    pending_size_ += take;
    data += take;
    size -= take;
    // A last byte other than '\r' cannot be part of the line ending: cut now rather
    // than when the next read comes.
    if (pending_size_ == max_line_ + 1 && pending_[max_line_] != '\r') cut_piece();
  }
}

void CriLogWriter::end_line() {
  size_t size = pending_size_;
  if (size > 0 && pending_[size - 1] == '\r') --size;
  if (size > max_line_) {
    emit('P', pending_.get(), max_line_);
    emit('F', pending_.get() + max_line_, size - max_line_);
  } else {
    emit('F', pending_.get(), size);
  }
  pending_size_ = 0;
}

void CriLogWriter::emit(char tag, const char* data, size_t size) {
  // "<timestamp> <stream> <tag> "
  char header[kTimestampSize + 32];
  format_timestamp(clock_(), header);
  size_t len = kTimestampSize;
  header[len++] = ' ';
  size_t stream_len = ::strnlen(stream_, 16);
  std::memcpy(header + len, stream_, stream_len);
  len += stream_len;
  header[len++] = ' ';
  header[len++] = tag;
  header[len++] = ' ';
  static char newline = '\n';
  iovec parts[3] = {{header, len}, {const_cast<char*>(data), size}, {&newline, 1}};
  sink_.write_line(parts, 3);
}

}  // namespace berth::shim

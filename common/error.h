// Error values that cross module boundaries: an errno-style code plus a message
// carrying enough context to act on ("mount proc on /x/proc: EPERM").
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

namespace berth {

struct Error {
  int code = 0;  // errno value; EINVAL for bad input
  std::string message;

  // Prefixes more context: "create container: " + "mount ...: EPERM".
  Error wrap(std::string_view context) const& {
    return Error{code, std::string(context) + ": " + message};
  }
};

template <typename T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(int code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

inline std::unexpected<Error> invalid(std::string message) {
  return fail(EINVAL, std::move(message));
}

// Builds an error from the current errno: "<context>: <strerror>".
inline std::unexpected<Error> sys_fail(std::string context, int err = errno) {
  return fail(err, std::move(context) + ": " + std::strerror(err));
}

}  // namespace berth

// Propagates the error of an expression returning Result<T>; evaluates to the value.
#define BERTH_TRY(expr)                                        \
  ({                                                           \
    auto&& berth_try_result_ = (expr);                         \
    if (!berth_try_result_) return std::unexpected(std::move(berth_try_result_.error())); \
    std::move(*berth_try_result_);                             \
  })

#define BERTH_TRY_VOID(expr)                                   \
  do {                                                         \
    auto&& berth_try_result_ = (expr);                         \
    if (!berth_try_result_) return std::unexpected(std::move(berth_try_result_.error())); \
  } while (0)

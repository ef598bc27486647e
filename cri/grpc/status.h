// gRPC status codes and the status a call ends with.
#pragma once

#include <string>
#include <string_view>

namespace berth::grpc {

// The 17 codes of the gRPC spec, with their wire numbers.
enum class StatusCode : int {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

inline std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return "OK";
    case StatusCode::cancelled: return "CANCELLED";
    case StatusCode::unknown: return "UNKNOWN";
    case StatusCode::invalid_argument: return "INVALID_ARGUMENT";
    case StatusCode::deadline_exceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::not_found: return "NOT_FOUND";
    case StatusCode::already_exists: return "ALREADY_EXISTS";
    case StatusCode::permission_denied: return "PERMISSION_DENIED";
    case StatusCode::resource_exhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::failed_precondition: return "FAILED_PRECONDITION";
    case StatusCode::aborted: return "ABORTED";
    case StatusCode::out_of_range: return "OUT_OF_RANGE";
    case StatusCode::unimplemented: return "UNIMPLEMENTED";
    case StatusCode::internal: return "INTERNAL";
    case StatusCode::unavailable: return "UNAVAILABLE";
    case StatusCode::data_loss: return "DATA_LOSS";
    case StatusCode::unauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

// What a handler returns; the message goes to the client as grpc-message.
struct CallStatus {
  StatusCode code = StatusCode::ok;
  std::string message;

  bool ok() const { return code == StatusCode::ok; }
};

}  // namespace berth::grpc

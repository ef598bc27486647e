// berth::Error -> the gRPC status a CRI client acts on. kubelet treats NOT_FOUND on
// removal as done, DEADLINE_EXCEEDED from ExecSync as a probe timeout, and retries
// UNAVAILABLE; anything berth cannot classify is UNKNOWN, as containerd reports its
// unclassified errors.
#pragma once

#include "common/error.h"
#include "cri/grpc/status.h"

namespace berth::cri {

grpc::StatusCode status_code_for(int error_code);
grpc::CallStatus to_call_status(const Error& error);

}  // namespace berth::cri

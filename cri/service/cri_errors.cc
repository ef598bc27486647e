#include "cri/service/cri_errors.h"

#include <cerrno>

namespace berth::cri {

grpc::StatusCode status_code_for(int error_code) {
  using grpc::StatusCode;
  switch (error_code) {
    case 0: return StatusCode::ok;
    case EINVAL:
    case ENAMETOOLONG:
    case E2BIG: return StatusCode::invalid_argument;
    case ENOENT:
    case ESRCH: return StatusCode::not_found;
    case EEXIST: return StatusCode::already_exists;
    case ETIMEDOUT: return StatusCode::deadline_exceeded;
    // Wrong state for the call (container not running, pod not ready): retrying the
    // same call will not help until something else changes.
    case EBUSY: return StatusCode::failed_precondition;
    // Transient (network not ready yet, store busy): worth a retry.
    case EAGAIN: return StatusCode::unavailable;
    // A registry refusing the credentials. EPERM stays UNKNOWN: from the kernel it is
    // berth failing, not the caller lacking a right.
    case EACCES: return StatusCode::permission_denied;
    case ENOSYS:
    case EOPNOTSUPP: return StatusCode::unimplemented;
    case ENOSPC:
    case EDQUOT: return StatusCode::resource_exhausted;
    case ECANCELED: return StatusCode::cancelled;
    default: return StatusCode::unknown;
  }
}

grpc::CallStatus to_call_status(const Error& error) {
  return grpc::CallStatus{status_code_for(error.code), error.message};
}

}  // namespace berth::cri

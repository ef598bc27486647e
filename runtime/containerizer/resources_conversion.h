// CRI-style resources as the OCI runtime's resources, for live updates.
#pragma once

#include "runtime/containerizer/pod_spec.h"
#include "runtime/oci/spec.h"

namespace berth::pod {

oci::Resources to_oci_resources(const Resources& r);

}  // namespace berth::pod

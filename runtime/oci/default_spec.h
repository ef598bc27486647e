// The starter config.json `berth spec` writes: the same content runc writes, so
// bundles move between the two unchanged (the hostname says "berth").
#pragma once

#include <string>

namespace berth::oci {

// rootless: adds a user namespace mapping the caller's uid/gid to root and drops
// what an unprivileged user cannot set up (as `runc spec --rootless`).
std::string default_spec_json(bool rootless, unsigned uid = 0, unsigned gid = 0);

}  // namespace berth::oci

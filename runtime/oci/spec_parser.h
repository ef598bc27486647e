// config.json -> oci::Spec, with errors that name the offending field
// ("linux.resources.memory.limit: must be >= -1").
#pragma once

#include <string>

#include "common/error.h"
#include "runtime/oci/spec.h"

namespace berth::oci {

Result<Spec> parse_spec(const std::string& json_text);
// Reads <bundle>/config.json and parses it.
Result<Spec> load_spec(const std::string& bundle_dir);

// `berth exec --process FILE`: a process object alone.
Result<Process> parse_process(const std::string& json_text);
// `berth update --resources FILE`: a linux.resources object alone.
Result<Resources> parse_resources(const std::string& json_text);

// Checks what parsing cannot: known namespace types without duplicates, mappings
// present for a user namespace, mount destinations that stay inside the rootfs,
// limits in range, a rootfs that exists (relative to the bundle).
Result<> validate_spec(const Spec& spec, const std::string& bundle_dir);
Result<> validate_resources(const Resources& resources);

// The rootfs path made absolute against the bundle.
std::string rootfs_path(const Spec& spec, const std::string& bundle_dir);

}  // namespace berth::oci

// `berth features`: what this build and host support, as runtime-spec features.md.
#pragma once

#include <string>

namespace berth::cli {
std::string features_json();
}

// berthctl's pod and container commands: a CRI client of berthd (version, info,
// pods, ps, run, logs, exec, stop, rm, rmp, stats), speaking the same runtime.v1
// API kubelet does.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace berth::ctl {

void add_cri_commands(CLI::App& app, const std::string& socket, std::function<int()>& run);

}  // namespace berth::ctl

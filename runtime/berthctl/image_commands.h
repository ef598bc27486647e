// berthctl's image commands: pull, images, inspect, rmi, import, df, prune.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>

#include "storage/image_store.h"

namespace berth::ctl {

// Opens the store on first use, after the command line is parsed.
using StoreOpener = std::function<Result<std::unique_ptr<storage::ImageStore>>()>;

// Adds the subcommands; each sets `run` to its action when chosen.
void add_image_commands(CLI::App& app, StoreOpener open_store, std::function<int()>& run);

}  // namespace berth::ctl

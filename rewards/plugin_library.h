// The `plugin` reward: a reward compiled into a shared library and loaded by path (dlopen)
// through the small C ABI in reward_plugin_abi.h. Options: {"name": "plugin", "path":
// "libmy_reward.so", "options": {...}} ("options" goes to the library as JSON text).
// Errors (missing file, missing symbol, ABI mismatch, create failure) are one line naming
// the path. The library stays loaded for the life of the process (no dlclose: a late
// score call must never jump into unmapped code).
#pragma once
#include <memory>
#include <string>

#include "rewards/reward.h"

namespace r1kit::rewards {

std::unique_ptr<Reward> load_plugin_reward(const std::string& path, const Json& options);

}  // namespace r1kit::rewards

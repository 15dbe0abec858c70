// The `plugin` reward: a reward compiled into a shared library and loaded by path through
// the small C ABI in reward_plugin_abi.h. Options: {"name": "plugin", "path":
// "libmy_reward.so", "options": {...}, "isolate": true}. "options" goes to the library as
// JSON text. With "isolate": true (the default) the library runs in a plug-in host process
// (plugin_host.h): its crash stops the stage with an error naming it, the row and the
// signal, and a hang is stopped at the timeout; "isolate": false loads it into r1kit itself
// (no round trip per batch, but a crash is r1kit's crash and a hang cannot be interrupted).
// Either way a non-zero return of r1kit_reward_score, or a NaN/inf value, is a counted
// reward error (rewards/<name>/errors), not a skip.
#pragma once
#include <memory>
#include <string>

#include "rewards/reward.h"

namespace r1kit::rewards {

std::unique_ptr<Reward> load_plugin_reward(const std::string& path, const Json& options, bool isolate);

}  // namespace r1kit::rewards

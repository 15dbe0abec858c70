// The `process` reward: an external program scores completions over JSON lines.
//
// Options: {"name": "process", "command": ["python3", "my_reward.py"] (or one string, run
// by /bin/sh -c), "batch": false, "timeout_s": 30}. r1kit starts the command once and
// writes one JSON object per line to its stdin:
//   {"prompt": "...", "completion": "...", "fields": {...row...}}
// and reads one line back: {"value": 1.0, "why": "...", "parts": {"x": 0.5}} ("value":
// null skips the row; {"error": "..."} is a reward error, counted in rewards/<name>/errors and
// scored 0). With "batch": true one line carries every completion of a batch,
// {"batch": [request, ...]}, and the answer is {"results": [answer, ...]}. Calls are
// serialised (one process). A reply later than the timeout kills the process (it is
// restarted on the next call) and scores 0 with why "timeout"; a process that exits or
// writes something that is not a JSON line is an Error naming the command.
// Example: examples/rewards/python_reward.py. The process is trusted code (not sandboxed).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rewards/reward.h"

namespace r1kit::rewards {

std::unique_ptr<Reward> make_process_reward(std::vector<std::string> command, bool batch, double timeout_s);

}  // namespace r1kit::rewards

// `r1kit bench reward`: math answer checks per second, r1kit vs Math-Verify (Python, the
// project's .venv) on the same (gold, prediction) pairs in one run, plus sandboxed code
// executions per second and the sandbox's overhead per execution, and a reward plug-in's
// rows per second in-process and isolated in the plug-in host ("plugin_isolated_over_in_process":
// 0.5 or more is within 2x). Torch-free.
// The last line printed is a JSON object; its "ratio" is r1kit's checks/s over
// Math-Verify's (both single-threaded). Only ratios from one run mean anything here.
#pragma once

namespace r1kit::bench {

// json: print only the JSON line. Returns the exit code.
int bench_reward(bool json);

}  // namespace r1kit::bench

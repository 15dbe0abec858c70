// The `code` reward: run the completion's program against the row's tests in the sandbox.
//
// Tests, by row shape:
//  - HumanEval (prompt, test, entry_point, as the dataset has them): the program is the
//    completion (or prompt + completion when it does not define entry_point), then `test`,
//    then check(entry_point). One case.
//  - "tests": ["assert f(1) == 2", ...]: each assert is a case, run after the program in
//    its namespace.
//  - "tests": {"inputs": [...], "outputs": [...]} or [{"input":..,"output":..}, ...]: one run
//    per case with stdin fed in; stdout compared exactly (trailing newlines aside) or
//    whitespace-tolerantly (per line, split on whitespace; the line counts must match, so
//    too few output lines fail).
// Assert-style runs pass a case only when the harness prints a random per-run nonce after
// that case, read from stdin before the program runs: a program that exits 0 (sys.exit,
// os._exit) before its tests ran passes nothing. Score: passed / total (partial_credit),
// or 1 only when all pass.
#pragma once
#include <string>

#include "rewards/reward.h"
#include "rewards/sandbox.h"

namespace r1kit::rewards {

struct CodeOptions {
  std::string python = "/usr/bin/python3";  // inside the sandbox (the system python)
  std::string tests_field = "tests";        // row key of the tests
  bool partial_credit = true;               // false: 1 only when every case passes
  std::string compare = "tolerant";         // "tolerant" | "exact" (stdin/stdout cases)
  bool allow_unfenced = true;               // no ``` block: run the whole completion
  int max_cases = 0;                        // 0: all cases
  bool unsafe_no_sandbox = false;           // run without bwrap when it is unavailable
  SandboxLimits limits;                     // per program run
};

struct CodeCheck {
  int passed = 0;
  int total = 0;  // 0: the row has no tests (skip)
  std::string why;
};

CodeCheck check_code(const std::string& code, const RewardInput& in, const CodeOptions& options);

// stdout comparison for stdin/stdout cases.
bool outputs_match(const std::string& got, const std::string& expected, const std::string& mode);

CodeOptions parse_code_options(JsonFields& fields);

}  // namespace r1kit::rewards

// r1kit::Error: the one exception type for bad user input (files, recipes, flags).
// Its what() is a single line that names the file, line or key, ready for stderr; the CLI
// prints it and exits non-zero. Programming errors (broken invariants) use TORCH_CHECK or
// assertions instead, so a user never sees an internal stack of causes for their typo.
#pragma once
#include <stdexcept>
#include <string>

namespace r1kit {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace r1kit

// Helpers shared by tests: the project's .venv python (the reference implementations live
// there) and a scratch directory per test. Parity tests FAIL, never skip, when python or a
// reference package is missing: a parity test that silently skips proves nothing.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "src/files.h"

namespace r1kit::testing {

inline std::string venv_python() { return std::string(R1KIT_SOURCE_DIR) + "/.venv/bin/python"; }

// Runs `.venv/bin/python script args...` from the source dir (its output goes to stderr);
// returns the exit status.
inline int run_python(const std::string& script_and_args) {
  const std::string cmd = "cd '" + std::string(R1KIT_SOURCE_DIR) + "' && '" + venv_python() + "' " +
                          script_and_args + " 1>&2";
  return std::system(cmd.c_str());
}

inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::path(R1KIT_BINARY_DIR) / "test-scratch" / name;
  remove_tree(dir.string());  // not std::filesystem::remove_all: see src/files.h
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace r1kit::testing

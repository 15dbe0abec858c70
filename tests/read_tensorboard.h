// TensorBoard's own reader on a run directory (tests/parity/read_tensorboard.py in .venv):
// shared by the tests that check the event files r1kit writes.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "src/config.h"
#include "tests/test_util.h"

namespace r1kit::testing {

// Runs read_tensorboard.py on `dir`; its stdout parsed as {tag: [[step, value], ...]}. Its
// stderr goes to the test's stderr. Fails the test (returns null) on a non-zero exit.
inline Json read_with_tensorboard(const std::string& dir) {
  // Built by appending: g++ 12 warns falsely (-Wrestrict) on "'" + std::string.
  std::string cmd = "'";
  cmd += venv_python() + "' '" + R1KIT_SOURCE_DIR + "/tests/parity/read_tensorboard.py' '";
  cmd += dir + "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return nullptr;
  }
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (status != 0) {
    ADD_FAILURE() << cmd << " exited with status " << status << " (is tensorboard installed in .venv?)\n" << out;
    return nullptr;
  }
  return Json::parse(out);
}

}  // namespace r1kit::testing

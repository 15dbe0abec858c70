// Helpers shared by tests: the project's .venv python (the reference implementations live
// there) and a scratch directory per test. Parity tests FAIL, never skip, when python or a
// reference package is missing: a parity test that silently skips proves nothing.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "src/files.h"

namespace r1kit::testing {

inline std::string venv_python() { return std::string(R1KIT_SOURCE_DIR) + "/.venv/bin/python"; }

// Runs `.venv/bin/python script args...` from the source dir (its output goes to stderr);
// returns the exit status.
inline int run_python(const std::string& script_and_args) {
  const std::string cmd =
      "cd '" + std::string(R1KIT_SOURCE_DIR) + "' && '" + venv_python() + "' " + script_and_args + " 1>&2";
  return std::system(cmd.c_str());
}

// A fresh directory under $TMPDIR, removed with everything in it when the object dies.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "r1kit_test_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    try {
      remove_tree(path);
    } catch (...) {
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// A file's bytes ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What `r1kit ARGS` did: its exit status, its stderr (stdout is discarded unless asked for),
// its wall time.
struct Outcome {
  int rc = 0;
  std::string err;
  double seconds = 0;
};

// Runs the build's `r1kit` with `args` (already shell-quoted), stderr into `err_file` and
// stdout into `out_file`.
inline Outcome run_r1kit(const std::string& args, const std::string& err_file,
                         const std::string& out_file = "/dev/null") {
  const std::string cmd =
      "'" + std::string(R1KIT_BINARY_DIR) + "/r1kit' " + args + " >'" + out_file + "' 2>'" + err_file + "'";
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(cmd.c_str());
  Outcome o;
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.err = slurp(err_file);
  return o;
}

inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::path(R1KIT_BINARY_DIR) / "test-scratch" / name;
  remove_tree(dir.string());  // not std::filesystem::remove_all: see src/files.h
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace r1kit::testing

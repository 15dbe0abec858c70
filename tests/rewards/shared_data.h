// Where the shared test data lives: <repo>/../shared/data (CI clones the repo with shared/
// beside it). Tests that need it fail with this message when it is missing.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

inline std::string shared_data(const std::string& rel) {
  std::string path = std::string(R1KIT_SOURCE_DIR) + "/../shared/data/" + rel;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "shared test data missing: " << path
                  << " (the repository must have shared/ beside it: <dir>/main and <dir>/shared)";
  }
  return path;
}

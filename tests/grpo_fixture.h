// A one-stage GRPO recipe over the tiny policy (tests/tiny_policy.h) for the trainer tests:
// `prompts` questions "i+1" with their answers, and the stage options the test chooses.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/jsonl.h"
#include "tests/tiny_policy.h"

namespace r1kit::testing {

// Writes DIR/model, DIR/prompts.jsonl and DIR/recipe.json ({"stages": [stage]} with its
// model and data set to those); returns the recipe's path.
inline std::string write_grpo_fixture(const std::filesystem::path& dir, int prompts, Json stage) {
  std::filesystem::create_directories(dir);
  save_tiny_policy(dir / "model");
  std::vector<Json> rows;
  for (int i = 0; i < prompts; ++i)
    rows.push_back({{"prompt", std::to_string(i) + "+1"}, {"answer", std::to_string(i + 1)}});
  write_jsonl_atomic((dir / "prompts.jsonl").string(), rows);
  stage["model"] = (dir / "model").string();
  stage["data"] = (dir / "prompts.jsonl").string();
  const std::string path = (dir / "recipe.json").string();
  std::ofstream(path) << Json{{"stages", Json::array({stage})}}.dump(2);
  return path;
}

// RUN/zero/metrics.jsonl without the wall-clock and memory columns: what two equal runs must
// share.
inline std::vector<Json> metric_rows(const std::filesystem::path& run) {
  std::vector<Json> rows = read_jsonl((run / "zero" / "metrics.jsonl").string());
  for (Json& r : rows) {
    for (const char* k : {"time/rollout", "time/reward", "time/reference", "time/train", "time/s_per_step",
                          "tokens_per_second", "memory/peak_bytes", "memory/peak_rss_bytes"}) {
      r.erase(k);
    }
  }
  return rows;
}

}  // namespace r1kit::testing

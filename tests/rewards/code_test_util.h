// Helpers for the code-reward tests: build a `code` reward and score one row.
#pragma once
#include <string>

#include "rewards/scorer.h"
#include "src/config.h"

inline r1kit::rewards::Scorer code_scorer(const std::string& extra_options = "") {
  std::string spec = R"([{"name": "code", "timeout_s": 30)" + extra_options + "}]";
  return r1kit::rewards::Scorer::from_json(r1kit::Json::parse(spec), "test");
}

inline r1kit::rewards::RewardResult score_row(const r1kit::rewards::Scorer& s, const r1kit::Json& row) {
  r1kit::rewards::RewardInput in;
  static thread_local std::string completion;
  completion = row.value("completion", "");
  in.completion = completion;
  in.fields = &row;
  return s.score(in);
}

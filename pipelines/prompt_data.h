// A prompt dataset (JSONL) read in a seeded, epoch-wise shuffled order that is a pure
// function of (seed, position): resume needs only the position, never a generator state,
// and every data-parallel rank can compute its own share of any batch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::pipelines {

class PromptData {
 public:
  // Every row must have `prompt_field` (a string); errors name the file and line.
  PromptData(const std::string& path, std::string prompt_field, std::string prompt_template, uint64_t seed);

  // The rows at positions [position, position + count) of the endless shuffled stream:
  // epoch e = position / size() is a permutation seeded by (seed, e).
  std::vector<const Json*> rows(int64_t position, int64_t count) const;
  // The prompt text given to the policy: the template with {prompt} replaced.
  std::string render(const Json& row) const;
  size_t size() const { return rows_.size(); }

 private:
  std::vector<Json> rows_;
  std::string field_, template_;
  uint64_t seed_;
};

}  // namespace r1kit::pipelines

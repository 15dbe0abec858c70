// A prompt dataset (JSONL) read in a seeded, epoch-wise shuffled order that is a pure
// function of (seed, position): resume needs only the position, never a generator state,
// and every data-parallel rank can compute its own share of any batch. Prompts longer than
// max_prompt_length tokens are truncated on the left, refused, or dropped at load
// (PromptOptions::truncation), so every stage sees the same rows whatever its batch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pipelines/options.h"
#include "src/config.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {

class PromptData {
 public:
  // Every row must have `prompt_field` (a string); errors name the file and line. `tokenizer`
  // measures prompts against max_prompt_length (error / drop) at load.
  PromptData(const PromptOptions& options, uint64_t seed, const Tokenizer& tokenizer);

  // The rows at positions [position, position + count) of the endless shuffled stream:
  // epoch e = position / size() is a permutation seeded by (seed, e).
  std::vector<const Json*> rows(int64_t position, int64_t count) const;
  // The prompt text given to the policy: the template with {prompt} replaced.
  std::string render(const Json& row) const;
  // The rendered prompt's token ids, truncated on the left to max_prompt_length (any other
  // over-long prompt was refused or dropped at load; with another tokenizer than the one
  // that measured it, such a prompt is an error here).
  std::vector<int32_t> encode(const Json& row, const Tokenizer& tokenizer) const;
  size_t size() const { return rows_.size(); }

 private:
  std::vector<Json> rows_;
  PromptOptions o_;
  uint64_t seed_;
};

}  // namespace r1kit::pipelines

// A prompt dataset (JSONL or Parquet) read in a seeded, epoch-wise shuffled order that is a
// pure function of (seed, position): resume needs only the position, never a generator
// state, and every data-parallel rank can compute its own share of any batch. A row's prompt
// is text (prompt_template applies) or conversational messages (the model's chat template
// applies, with its generation prompt; see PromptOptions). Prompts longer than
// max_prompt_length tokens are truncated on the left, refused, or dropped at load
// (PromptOptions::truncation), so every stage sees the same rows whatever its batch.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pipelines/options.h"
#include "src/chat_template.h"
#include "src/config.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {

class PromptData {
 public:
  // Every row must have `prompt_field` (text, or a list of {role, content} messages); errors
  // name the file and line. `tokenizer` renders conversational prompts (its chat template) and
  // measures prompts against max_prompt_length (error / drop) at load.
  PromptData(const PromptOptions& options, uint64_t seed, const Tokenizer& tokenizer);

  // The rows at positions [position, position + count) of the endless shuffled stream:
  // epoch e = position / size() is a permutation seeded by (seed, e).
  std::vector<const Json*> rows(int64_t position, int64_t count) const;
  // The prompt text given to the policy: the template with {prompt} replaced, or the
  // conversation rendered with `tokenizer`'s chat template. `row` is one of rows()'s.
  std::string render(const Json& row, const Tokenizer& tokenizer) const;
  // The rendered prompt's token ids, truncated on the left to max_prompt_length (any other
  // over-long prompt was refused or dropped at load; with another tokenizer than the one
  // that measured it, such a prompt is an error here).
  std::vector<int32_t> encode(const Json& row, const Tokenizer& tokenizer) const;
  size_t size() const { return rows_.size(); }
  // Every distinct value of the rows' `field` as text (field_text), in numeric order when all
  // are numbers, else in text order; a row without it is an error naming its file and line.
  std::vector<std::string> field_values(const std::string& field) const;
  // Whether the prompts are conversations (then rejection_sample writes conversational rows).
  bool conversational() const { return conversational_; }

 private:
  // The conversation of rows_[i] (key order kept), or none for a text prompt.
  const std::optional<Conversation>& conversation_of(const Json& row) const;
  const ChatTemplate& chat_template(const Tokenizer& tokenizer) const;

  std::vector<Json> rows_;
  std::vector<std::optional<Conversation>> conversations_;  // per row
  std::vector<std::string> wheres_;                         // per row: "file:line"
  PromptOptions o_;
  uint64_t seed_;
  bool conversational_ = false;
  // Parsed chat templates by template text (eval renders with each model's own); shared so
  // that PromptData stays movable.
  struct TemplateCache {
    std::mutex mutex;
    std::map<std::string, std::unique_ptr<ChatTemplate>> by_text;
  };
  std::shared_ptr<TemplateCache> templates_ = std::make_shared<TemplateCache>();
};

}  // namespace r1kit::pipelines

// PromptData (see prompt_data.h).
#include "pipelines/prompt_data.h"

#include <fmt/format.h>

#include "pipelines/schedule.h"
#include "src/error.h"
#include "src/jsonl.h"
#include "src/logging.h"

namespace r1kit::pipelines {

PromptData::PromptData(const PromptOptions& options, uint64_t seed, const Tokenizer& tokenizer)
    : o_(options), seed_(seed) {
  const std::string& path = o_.data;
  JsonlReader reader(path);
  Json row;
  int64_t dropped = 0, lines = 0;
  while (reader.next(row)) {
    ++lines;
    if (!row.contains(o_.prompt_field) || !row[o_.prompt_field].is_string()) {
      throw Error(path + ":" + std::to_string(reader.line()) + ": no string field '" + o_.prompt_field + "'");
    }
    if (o_.max_prompt_length > 0 && o_.truncation != Truncation::left) {
      const size_t tokens = tokenizer.encode(render(row)).size();
      if (static_cast<int64_t>(tokens) > o_.max_prompt_length) {
        if (o_.truncation == Truncation::drop) {
          ++dropped;
          continue;
        }
        throw Error(
            fmt::format("{}:{}: the prompt is {} tokens, over max_prompt_length {} (truncation \"error\"; "
                        "\"left\" keeps its last tokens, \"drop\" leaves such rows out)",
                        path, reader.line(), tokens, o_.max_prompt_length));
      }
    }
    rows_.push_back(std::move(row));
  }
  if (rows_.empty() && dropped > 0) {
    throw Error(fmt::format("{}: all {} prompts are longer than max_prompt_length {} (truncation \"drop\")", path,
                            dropped, o_.max_prompt_length));
  }
  if (rows_.empty()) throw Error(path + ": no rows");
  if (dropped > 0) {
    log::info("{}: dropped {} of {} prompts longer than max_prompt_length {}", path, dropped, lines,
              o_.max_prompt_length);
  }
}

std::vector<const Json*> PromptData::rows(int64_t position, int64_t count) const {
  std::vector<const Json*> out;
  for (int64_t i : stream_indices(seed_, position, count, static_cast<int64_t>(rows_.size()))) out.push_back(&rows_[i]);
  return out;
}

std::string PromptData::render(const Json& row) const {
  std::string text = o_.prompt_template;
  const std::string prompt = row.at(o_.prompt_field).get<std::string>();
  for (size_t at = text.find("{prompt}"); at != std::string::npos; at = text.find("{prompt}", at + prompt.size())) {
    text.replace(at, 8, prompt);
  }
  return text;
}

std::vector<int32_t> PromptData::encode(const Json& row, const Tokenizer& tokenizer) const {
  std::vector<int32_t> ids = tokenizer.encode(render(row));
  const auto max = static_cast<size_t>(o_.max_prompt_length);
  if (max == 0 || ids.size() <= max) return ids;
  if (o_.truncation != Truncation::left) {
    throw Error(fmt::format("{}: a prompt is {} tokens with this model's tokenizer, over max_prompt_length {}", o_.data,
                            ids.size(), max));
  }
  return {ids.end() - static_cast<std::ptrdiff_t>(max), ids.end()};
}

}  // namespace r1kit::pipelines

// PromptData (see prompt_data.h).
#include "pipelines/prompt_data.h"

#include "pipelines/schedule.h"
#include "src/jsonl.h"

namespace r1kit::pipelines {

PromptData::PromptData(const std::string& path, std::string prompt_field, std::string prompt_template, uint64_t seed)
    : field_(std::move(prompt_field)), template_(std::move(prompt_template)), seed_(seed) {
  JsonlReader reader(path);
  Json row;
  while (reader.next(row)) {
    if (!row.contains(field_) || !row[field_].is_string()) {
      throw Error(path + ":" + std::to_string(reader.line()) + ": no string field '" + field_ + "'");
    }
    rows_.push_back(std::move(row));
  }
  if (rows_.empty()) throw Error(path + ": no rows");
}

std::vector<const Json*> PromptData::rows(int64_t position, int64_t count) const {
  std::vector<const Json*> out;
  for (int64_t i : stream_indices(seed_, position, count, static_cast<int64_t>(rows_.size()))) out.push_back(&rows_[i]);
  return out;
}

std::string PromptData::render(const Json& row) const {
  std::string text = template_;
  const std::string prompt = row.at(field_).get<std::string>();
  for (size_t at = text.find("{prompt}"); at != std::string::npos; at = text.find("{prompt}", at + prompt.size())) {
    text.replace(at, 8, prompt);
  }
  return text;
}

}  // namespace r1kit::pipelines

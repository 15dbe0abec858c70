// PromptData (see prompt_data.h).
#include "pipelines/prompt_data.h"

#include <algorithm>
#include <numeric>
#include <random>

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
  const int64_t n = static_cast<int64_t>(rows_.size());
  std::vector<const Json*> out;
  int64_t epoch = -1;
  std::vector<int64_t> order(n);
  for (int64_t p = position; p < position + count; ++p) {
    if (p / n != epoch) {
      epoch = p / n;
      std::iota(order.begin(), order.end(), 0);
      std::mt19937_64 rng(seed_ * 1000003ULL + static_cast<uint64_t>(epoch));
      std::shuffle(order.begin(), order.end(), rng);
    }
    out.push_back(&rows_[order[p % n]]);
  }
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

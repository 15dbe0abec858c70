// PromptData (see prompt_data.h).
#include "pipelines/prompt_data.h"

#include <fmt/format.h>

#include <algorithm>

#include "pipelines/schedule.h"
#include "src/dataset_rows.h"
#include "src/error.h"
#include "src/logging.h"

namespace r1kit::pipelines {

PromptData::PromptData(const PromptOptions& options, uint64_t seed, const Tokenizer& tokenizer)
    : o_(options), seed_(seed) {
  const std::string& path = o_.data;
  const jinja::Dict recipe_kwargs = jinja::from_json(o_.chat_template_kwargs).dict();
  int64_t dropped = 0, lines = 0, texts = 0;
  // Prompts are rendered and measured at load when an over-long one is refused or dropped.
  const bool measured = o_.max_prompt_length > 0 && o_.truncation != Truncation::left;
  for (DatasetRow& d : read_dataset(path)) {
    ++lines;
    auto field = d.fields.find(o_.prompt_field);
    std::optional<Conversation> conversation;
    if (field != d.fields.end() && field->is_array()) {
      conversation = conversation_from_row(d.fields, o_.prompt_field, d.where, recipe_kwargs);
    } else if (field == d.fields.end() || !field->is_string()) {
      throw Error(missing_field_message(d, o_.prompt_field, " holding text or a list of messages"));
    }
    const bool is_text = !conversation;
    rows_.emplace_back(d.fields);
    conversations_.push_back(std::move(conversation));
    wheres_.push_back(d.where);
    if (measured) {
      const size_t tokens = tokenizer.encode(render(rows_.back(), tokenizer)).size();
      if (static_cast<int64_t>(tokens) > o_.max_prompt_length) {
        rows_.pop_back();
        conversations_.pop_back();
        wheres_.pop_back();
        if (o_.truncation == Truncation::drop) {
          ++dropped;
          continue;
        }
        throw Error(
            fmt::format("{}: the prompt is {} tokens, over max_prompt_length {} (truncation \"error\"; "
                        "\"left\" keeps its last tokens, \"drop\" leaves such rows out)",
                        d.where, tokens, o_.max_prompt_length));
      }
    }
    texts += is_text ? 1 : 0;  // rows kept only
  }
  if (rows_.empty() && dropped > 0) {
    throw Error(fmt::format("{}: all {} prompts are longer than max_prompt_length {} (truncation \"drop\")", path,
                            dropped, o_.max_prompt_length));
  }
  if (rows_.empty()) throw Error(path + ": no rows");
  const auto conversations = static_cast<int64_t>(rows_.size()) - texts;
  if (conversations > 0 && texts > 0) {
    throw Error(fmt::format("{}: {} prompts are text and {} are conversations; a dataset is one or the other", path,
                            texts, conversations));
  }
  conversational_ = conversations > 0;
  if (conversational_ && !measured) {
    // Every conversation renders now (if the length check above did not), so a template error
    // (raise_exception on a role order) stops the stage before its first step, naming the row.
    for (const Json& row : rows_) render(row, tokenizer);
  }
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

std::vector<std::string> PromptData::field_values(const std::string& field) const {
  std::vector<std::string> values;
  bool numbers = true;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto it = rows_[i].find(field);
    if (it == rows_[i].end() || it->is_null()) throw Error(wheres_[i] + ": no field '" + field + "'");
    numbers = numbers && it->is_number();
    values.push_back(field_text(*it));
  }
  // Numbers by value, ties ("2" and "2.0") by text so that equal texts end up adjacent.
  std::sort(values.begin(), values.end(), [numbers](const std::string& a, const std::string& b) {
    if (!numbers) return a < b;
    const double x = std::stod(a), y = std::stod(b);
    return x != y ? x < y : a < b;
  });
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

const std::optional<Conversation>& PromptData::conversation_of(const Json& row) const {
  // rows() hands out pointers into rows_, so a row's index is its offset.
  const std::ptrdiff_t i = &row - rows_.data();
  if (i < 0 || i >= static_cast<std::ptrdiff_t>(rows_.size())) {
    throw std::logic_error("PromptData: the row is not one of this dataset's rows");
  }
  return conversations_[static_cast<size_t>(i)];
}

const ChatTemplate& PromptData::chat_template(const Tokenizer& tokenizer) const {
  const Tokenizer::ChatConfig& chat = tokenizer.chat_config();
  std::string key = chat.chat_template;
  for (const auto& [k, v] : chat.special_tokens) key += '\0' + k + '\0' + v;
  std::lock_guard<std::mutex> lock(templates_->mutex);
  auto& slot = templates_->by_text[key];
  if (!slot) {
    slot = std::make_unique<ChatTemplate>(chat, /*model=*/"");  // errors name the template's file
  }
  return *slot;
}

std::string PromptData::render(const Json& row, const Tokenizer& tokenizer) const {
  const std::optional<Conversation>& conversation = conversation_of(row);
  if (conversation) {
    const std::string& where = wheres_[static_cast<size_t>(&row - rows_.data())];
    try {
      return chat_template(tokenizer).render_text(*conversation, /*add_generation_prompt=*/true);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
  std::string text = o_.prompt_template;
  const std::string prompt = row.at(o_.prompt_field).get<std::string>();
  for (size_t at = text.find("{prompt}"); at != std::string::npos; at = text.find("{prompt}", at + prompt.size())) {
    text.replace(at, 8, prompt);
  }
  return text;
}

std::vector<int32_t> PromptData::encode(const Json& row, const Tokenizer& tokenizer) const {
  // A chat template writes its special tokens; a text prompt is encoded as it stands. Neither
  // gets the tokenizer's post-processor tokens (TRL encodes prompts the same way).
  std::vector<int32_t> ids = tokenizer.encode(render(row, tokenizer), /*add_special_tokens=*/false);
  const auto max = static_cast<size_t>(o_.max_prompt_length);
  if (max == 0 || ids.size() <= max) return ids;
  if (o_.truncation != Truncation::left) {
    throw Error(fmt::format("{}: a prompt is {} tokens with this model's tokenizer, over max_prompt_length {}", o_.data,
                            ids.size(), max));
  }
  return {ids.end() - static_cast<std::ptrdiff_t>(max), ids.end()};
}

}  // namespace r1kit::pipelines

// pipelines/prompt_data: the template renders every {prompt}, a row without the prompt field
// (or with a non-string one) is an error naming the file and the line, and rows(position,
// count) is the dataset in stream_indices order (pipelines/schedule), epoch after epoch;
// prompts over max_prompt_length are truncated on the left, refused or dropped.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "pipelines/prompt_data.h"
#include "pipelines/schedule.h"
#include "src/bpe_trainer.h"
#include "src/error.h"
#include "src/parquet_rows.h"
#include "tests/test_util.h"

namespace r1kit::pipelines {
namespace {

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& l : lines) out << l << "\n";
}

// A byte-level BPE that knows no merges past single characters: one token per character of
// "abc " text (the lengths below count characters).
const Tokenizer& chars() {
  static const Tokenizer tok = [] {
    BpeTrainerOptions t;
    t.vocab_size = 260;
    return train_bpe({"a b c"}, t);
  }();
  return tok;
}

PromptOptions prompts(const std::string& path, const std::string& field = "prompt",
                      const std::string& templ = "{prompt}") {
  PromptOptions o;
  o.data = path;
  o.prompt_field = field;
  o.prompt_template = templ;
  return o;
}

std::string error_of(const PromptOptions& o) {
  try {
    PromptData(o, 1, chars());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
std::string error_of(const std::string& path, const std::string& field) {
  try {
    PromptData(prompts(path, field), 1, chars());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PromptData, RendersEveryPromptPlaceholder) {
  testing::TempDir tmp;
  write_lines(tmp / "d.jsonl", {R"({"question": "2+3", "answer": "5"})", R"({"question": "{prompt}?"})"});
  const PromptData data(prompts(tmp / "d.jsonl", "question", "Q: {prompt}\nAgain: {prompt}\nA:"), 0, chars());
  ASSERT_EQ(data.size(), 2u);
  // The rendering of each question (rows come in the seeded order).
  auto rendered = [&](const PromptData& d) {
    std::map<std::string, std::string> out;
    for (const Json* row : d.rows(0, 2)) out[(*row)["question"].get<std::string>()] = d.render(*row, chars());
    return out;
  };
  EXPECT_EQ(rendered(data)["2+3"], "Q: 2+3\nAgain: 2+3\nA:");
  // A prompt that itself contains "{prompt}" is inserted once per placeholder, not expanded.
  EXPECT_EQ(rendered(data)["{prompt}?"], "Q: {prompt}?\nAgain: {prompt}?\nA:");
  // A template without the placeholder is used as is.
  const PromptData plain(prompts(tmp / "d.jsonl", "question", "fixed"), 0, chars());
  EXPECT_EQ(rendered(plain)["2+3"], "fixed");
}

TEST(PromptData, MaxPromptLengthTruncatesLeftRefusesOrDrops) {
  testing::TempDir tmp;
  const std::string path = tmp / "d.jsonl";
  write_lines(path, {R"({"prompt": "a b"})", R"({"prompt": "a b c a b c"})", R"({"prompt": "c"})"});
  PromptOptions o = prompts(path);
  o.max_prompt_length = 5;
  // left (TRL's side): every row kept, the long one keeps its last 5 tokens.
  const PromptData left(o, 0, chars());
  ASSERT_EQ(left.size(), 3u);
  // The dataset's row whose prompt is `text`.
  auto row_of = [](const PromptData& d, const std::string& text) -> const Json& {
    for (const Json* row : d.rows(0, static_cast<int64_t>(d.size()))) {
      if ((*row)["prompt"] == text) return *row;
    }
    throw std::runtime_error("no row " + text);
  };
  const std::vector<int32_t> all = chars().encode("a b c a b c");
  ASSERT_EQ(all.size(), 11u);
  EXPECT_EQ(left.encode(row_of(left, "a b c a b c"), chars()), std::vector<int32_t>(all.end() - 5, all.end()));
  EXPECT_EQ(left.encode(row_of(left, "a b"), chars()), chars().encode("a b"));
  // error: the stage stops at load, naming the file, the line and both lengths.
  o.truncation = Truncation::error;
  const std::string e = error_of(o);
  EXPECT_EQ(e.rfind(path + ":2:", 0), 0u) << e;
  EXPECT_NE(e.find("11 tokens, over max_prompt_length 5"), std::string::npos) << e;
  // drop: the row is left out.
  o.truncation = Truncation::drop;
  const PromptData dropped(o, 0, chars());
  EXPECT_EQ(dropped.size(), 2u);
  o.max_prompt_length = 0;  // no limit
  const PromptData unlimited(o, 0, chars());
  EXPECT_EQ(unlimited.encode(row_of(unlimited, "a b c a b c"), chars()), all);
  // Every prompt too long: nothing left to train on.
  o.max_prompt_length = 0;
  write_lines(path, {R"({"prompt": "a b c a b c"})"});
  o.max_prompt_length = 3;
  EXPECT_NE(error_of(o).find("all 1 prompts are longer than max_prompt_length 3"), std::string::npos) << error_of(o);
}

TEST(PromptData, MissingPromptFieldNamesFileAndLine) {
  testing::TempDir tmp;
  const std::string path = tmp / "bad.jsonl";
  // Line 3 lacks "question" (line 2 is blank, skipped but counted).
  write_lines(path, {R"({"question": "a"})", "", R"({"prompt": "b"})", R"({"question": "c"})"});
  std::string e = error_of(path, "question");
  EXPECT_EQ(e.rfind(path + ":3:", 0), 0u) << e;
  EXPECT_NE(e.find("'question'"), std::string::npos) << e;
  // A non-string prompt is the same error, at its own line.
  write_lines(path, {R"({"question": "a"})", R"({"question": 7})"});
  e = error_of(path, "question");
  EXPECT_EQ(e.rfind(path + ":2:", 0), 0u) << e;
  EXPECT_NE(e.find("'question'"), std::string::npos) << e;
  write_lines(path, {});
  EXPECT_NE(error_of(path, "question").find(path), std::string::npos) << "an empty file is an error too";
}

TEST(PromptData, RowsFollowTheStreamOrder) {
  testing::TempDir tmp;
  std::vector<std::string> lines;
  for (int i = 0; i < 5; ++i) {
    lines.push_back(Json{{"question", std::string("q").append(std::to_string(i))}, {"id", i}}.dump());
  }
  write_lines(tmp / "d.jsonl", lines);
  const uint64_t seed = 17;
  const PromptData data(prompts(tmp / "d.jsonl", "question"), seed, chars());
  // Positions [3, 15): across the epoch boundaries at 5 and 10.
  const std::vector<const Json*> rows = data.rows(3, 12);
  const std::vector<int64_t> order = stream_indices(seed, 3, 12, 5);
  ASSERT_EQ(rows.size(), order.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]->at("id").get<int64_t>(), order[i]) << "position " << 3 + i;
    EXPECT_EQ(data.render(*rows[i], chars()), std::string("q").append(std::to_string(order[i])));
  }
  // Another seed, another order (the same rows).
  const PromptData other(prompts(tmp / "d.jsonl", "question"), seed + 1, chars());
  std::vector<int64_t> a, b;
  for (const Json* r : data.rows(0, 5)) a.push_back(r->at("id").get<int64_t>());
  for (const Json* r : other.rows(0, 5)) b.push_back(r->at("id").get<int64_t>());
  EXPECT_NE(a, b);
  EXPECT_EQ(a, stream_indices(seed, 0, 5, 5));
}

}  // namespace
}  // namespace r1kit::pipelines

namespace r1kit::pipelines {
namespace {

// `chars()` with a small chat template that shows what it is given.
Tokenizer chat_tokenizer() {
  Tokenizer t = chars();
  t.set_chat_config(
      {"{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
       "{% if tools %}[{{ tools | length }} tools]{% endif %}x={{ x }} y={{ y }}"
       "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be the user') }}{% endif %}"
       "{% if add_generation_prompt %}<assistant>{% endif %}",
       "t.jinja",
       {{"eos_token", "c"}}});
  return t;
}

TEST(PromptData, ConversationalPromptsUseTheChatTemplate) {
  testing::TempDir tmp;
  write_lines(tmp / "d.jsonl",
              {R"({"prompt": [{"role": "user", "content": "a b"}], "chat_template_kwargs": {"x": "row"}})",
               R"({"prompt": [{"role": "user", "content": "c"}], "tools": [{"type": "function"}], "answer": "1"})"});
  PromptOptions o = prompts(tmp / "d.jsonl");
  o.chat_template_kwargs = {{"x", "recipe"}, {"y", "recipe"}};
  const Tokenizer tok = chat_tokenizer();
  const PromptData data(o, 0, tok);
  EXPECT_TRUE(data.conversational());
  std::map<std::string, std::string> rendered;
  for (const Json* row : data.rows(0, 2)) rendered[(*row)["prompt"][0]["content"]] = data.render(*row, tok);
  // The generation prompt is added; the row's kwargs win over the recipe's; tools reach it.
  EXPECT_EQ(rendered["a b"], "<user>a bx=row y=recipe<assistant>");
  EXPECT_EQ(rendered["c"], "<user>c[1 tools]x=recipe y=recipe<assistant>");
  const Json& row = *data.rows(0, 1)[0];
  EXPECT_EQ(data.encode(row, tok), tok.encode(data.render(row, tok)));
}

TEST(PromptData, ConversationalErrorsNameTheRow) {
  testing::TempDir tmp;
  const std::string path = tmp / "d.jsonl";
  // A template that refuses the conversation: at load, naming the row.
  write_lines(path, {R"({"prompt": [{"role": "user", "content": "a"}]})",
                     R"({"prompt": [{"role": "assistant", "content": "a"}]})"});
  std::string e;
  try {
    PromptData(prompts(path), 0, chat_tokenizer());
  } catch (const Error& err) {
    e = err.what();
  }
  EXPECT_EQ(e.rfind(path + ":2: t.jinja:1:", 0), 0u) << e;
  EXPECT_NE(e.find("first message must be the user"), std::string::npos) << e;
  // A model without a chat template.
  EXPECT_NE(error_of(prompts(path)).find(path + ":1: "), std::string::npos);
  EXPECT_NE(error_of(prompts(path)).find("has no chat template"), std::string::npos) << error_of(prompts(path));
  // Text and conversations mixed.
  write_lines(path, {R"({"prompt": [{"role": "user", "content": "a"}]})", R"({"prompt": "b"})"});
  try {
    PromptData(prompts(path), 0, chat_tokenizer());
  } catch (const Error& err) {
    e = err.what();
  }
  EXPECT_EQ(e, path + ": 1 prompts are text and 1 are conversations; a dataset is one or the other");
  // A message without a role.
  write_lines(path, {R"({"prompt": [{"content": "a"}]})"});
  EXPECT_EQ(error_of(prompts(path)), path + ":1: prompt[0] has no string 'role'");
}

// Parquet prompts (pyarrow writes them) read as the same rows as JSONL, conversations
// included; a missing column names the file and lists the columns.
TEST(PromptData, ParquetPromptsEqualJsonl) {
  if (!parquet_available()) GTEST_SKIP() << "built without Apache Arrow (no pyarrow in .venv at configure time)";
  testing::TempDir tmp;
  const std::string jsonl = tmp / "d.jsonl", parquet = tmp / "d.parquet";
  write_lines(
      jsonl,
      {R"({"prompt": [{"role": "user", "content": "a b"}], "answer": "1"})",
       R"({"prompt": [{"role": "user", "content": "é"}, {"role": "assistant", "content": "c"}], "answer": "2"})"});
  ASSERT_EQ(testing::run_python("-c \"import pyarrow.json as j, pyarrow.parquet as pq; pq.write_table(j.read_json('" +
                                jsonl + "'), '" + parquet + "')\""),
            0);
  const Tokenizer tok = chat_tokenizer();
  const PromptData from_jsonl(prompts(jsonl), 3, tok), from_parquet(prompts(parquet), 3, tok);
  ASSERT_EQ(from_parquet.size(), 2u);
  for (int64_t i = 0; i < 2; ++i) {
    const Json& a = *from_jsonl.rows(i, 1)[0];
    const Json& b = *from_parquet.rows(i, 1)[0];
    EXPECT_EQ(a, b);
    EXPECT_EQ(from_jsonl.render(a, tok), from_parquet.render(b, tok));
  }
  EXPECT_EQ(error_of(prompts(parquet, "question")),
            parquet + ": no column 'question' holding text or a list of messages (its columns: prompt, answer)");
}

}  // namespace
}  // namespace r1kit::pipelines

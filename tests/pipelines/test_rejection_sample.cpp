// The rejection_sample stage's filters on a tiny random policy, in process: greedy draws one
// sample per prompt; near-greedy sampling (T = 1e-4) makes every sample of a prompt identical,
// so dedupe keeps exactly one per prompt (and all N without it); max_per_prompt caps what passes; a threshold the
// untrained policy never reaches keeps nothing; a threshold on a reward the stage does not have is an error naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "pipelines/recipe.h"
#include "pipelines/sft.h"
#include "src/dataset_rows.h"
#include "src/jsonl.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// Runs one rejection_sample stage with `options` over 6 prompts; returns the kept rows.
std::vector<Json> sample(const fs::path& dir, const std::string& name, const Json& options) {
  if (!fs::exists(dir / "model")) {
    testing::save_tiny_policy(dir / "model");
    std::vector<Json> rows;
    for (int i = 0; i < 6; ++i)
      rows.push_back({{"prompt", std::to_string(i) + "+1"}, {"answer", std::to_string(i + 1)}});
    write_jsonl_atomic((dir / "prompts.jsonl").string(), rows);
  }
  Json stage = {{"name", "traces"},
                {"type", "rejection_sample"},
                {"model", (dir / "model").string()},
                {"data", (dir / "prompts.jsonl").string()},
                {"num_samples", 4},
                {"max_new_tokens", 8},
                {"rewards", Json::array({{{"name", "tag_count"}}, {{"name", "math"}}})},
                {"device", "cpu"}};
  stage.update(options);
  const std::string recipe = (dir / (name + ".json")).string();
  std::ofstream(recipe) << Json{{"stages", Json::array({stage})}}.dump();
  RunArgs args;
  args.recipe = recipe;
  args.out = (dir / name).string();
  EXPECT_EQ(run_recipe(args), 0);
  return read_jsonl((dir / name / "data" / "traces.jsonl").string());
}

std::map<int64_t, int> per_prompt(const std::vector<Json>& rows) {
  std::map<int64_t, int> n;
  for (const Json& r : rows) ++n[r["prompt_index"].get<int64_t>()];
  return n;
}

TEST(RejectionSample, FiltersThresholdsDedupeAndPerPromptCap) {
  const fs::path dir = testing::scratch_dir("rejection_sample");
  const Json keep_all = {{"min_rewards", {{"tag_count", 0.0}}}, {"drop_truncated", false}};

  // Greedy draws one sample per prompt (N more would all be the same).
  Json greedy = keep_all;
  greedy["temperature"] = 0.0;
  EXPECT_EQ(sample(dir, "greedy", greedy).size(), 6u);
  // Near-greedy keeps N samples, all the same: dedupe keeps one of each.
  greedy["temperature"] = 1e-4;
  greedy["dedupe"] = false;
  EXPECT_EQ(sample(dir, "greedy_all", greedy).size(), 24u);  // 6 prompts x 4 identical samples
  greedy["dedupe"] = true;
  const std::vector<Json> one_each = sample(dir, "greedy_dedupe", greedy);
  ASSERT_EQ(one_each.size(), 6u);
  for (const auto& [prompt, n] : per_prompt(one_each)) EXPECT_EQ(n, 1) << prompt;

  Json capped = keep_all;
  capped["max_per_prompt"] = 2;
  capped["temperature"] = 1.0;
  const std::vector<Json> two_each = sample(dir, "capped", capped);
  ASSERT_EQ(per_prompt(two_each).size(), 6u);
  for (const auto& [prompt, n] : per_prompt(two_each)) EXPECT_EQ(n, 2) << prompt;
  for (const Json& r : two_each) {
    EXPECT_EQ(r["stage"], "traces");
    EXPECT_TRUE(r["rewards"].contains("tag_count") && r["rewards"].contains("math"));
    EXPECT_EQ(r["prompt"], r["source"]["prompt"].get<std::string>());  // template "{prompt}"
  }

  // An untrained policy never writes the right sum in <answer> tags.
  EXPECT_TRUE(sample(dir, "strict", {{"min_rewards", {{"math", 1.0}}}}).empty());
  EXPECT_THROW(
      {
        try {
          sample(dir, "unknown", {{"min_rewards", {{"format", 1.0}}}});
        } catch (const Error& e) {
          EXPECT_NE(
              std::string(e.what()).find("stage 'traces': min_rewards 'format' is not one of the stage's rewards"),
              std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
}

// Conversational prompts (TRL's format) come out as conversational prompt-completion rows
// that the sft stage trains on with the model's chat template (loss on the completion only).
TEST(RejectionSample, ConversationalPromptsWriteConversationalRows) {
  const fs::path dir = testing::scratch_dir("rejection_sample_chat");
  testing::save_tiny_policy(dir / "model");
  std::ofstream((dir / "model" / "tokenizer_config.json").string()) << Json{
      {"eos_token", "<|endoftext|>"},
      {"chat_template",
       "{% for m in messages %}{{ m.role }}:\n{{ m.content }}\n{% endfor %}"
       "{% if add_generation_prompt %}assistant:\n{% endif %}"}}.dump();
  std::vector<Json> rows;
  for (int i = 0; i < 3; ++i) {
    rows.push_back({{"prompt", Json::array({Json{{"role", "user"}, {"content", std::to_string(i) + "+1"}}})},
                    {"tools", Json::array({Json{{"type", "function"}}})},
                    {"answer", std::to_string(i + 1)}});
  }
  write_jsonl_atomic((dir / "prompts.jsonl").string(), rows);
  const std::vector<Json> out =
      sample(dir, "chat", {{"min_rewards", {{"tag_count", 0.0}}}, {"drop_truncated", false}, {"temperature", 1.0}});
  ASSERT_EQ(out.size(), 12u);
  for (const Json& r : out) {
    EXPECT_EQ(r["prompt"], r["source"]["prompt"]);
    ASSERT_TRUE(r["completion"].is_array() && r["completion"].size() == 1u) << r.dump();
    EXPECT_EQ(r["completion"][0]["role"], "assistant");
    EXPECT_TRUE(r["completion"][0]["content"].is_string());
    EXPECT_EQ(r["tools"], r["source"]["tools"]);
  }
  // sft on them: the loss covers exactly the completion's tokens.
  write_jsonl_atomic((dir / "traces.jsonl").string(), out);
  SftOptions o;
  o.model = (dir / "model").string();
  o.seq_len = 4096;
  const Tokenizer tok = Tokenizer::load(o.model);
  const auto examples = sft_examples(read_dataset((dir / "traces.jsonl").string()), o, tok, /*eos=*/0);
  ASSERT_EQ(examples.size(), out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string prompt = "user:\n" + out[i]["prompt"][0]["content"].get<std::string>() + "\nassistant:\n";
    const std::string whole = prompt + out[i]["completion"][0]["content"].get<std::string>() + "\n";
    ASSERT_EQ(examples[i].tokens, tok.encode(whole));
    // A target counts when its token holds a byte of the completion.
    size_t end = 0;
    for (size_t t = 0; t + 1 < examples[i].tokens.size(); ++t) {
      if (t == 0) end = tok.token_bytes(examples[i].tokens[0]).size();
      end += tok.token_bytes(examples[i].tokens[t + 1]).size();
      EXPECT_EQ(examples[i].mask[t], end > prompt.size() ? 1.f : 0.f) << "row " << i << " target " << t;
    }
  }
}

}  // namespace
}  // namespace r1kit::pipelines

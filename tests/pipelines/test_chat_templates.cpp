// `r1kit tokenize --chat` against transformers' apply_chat_template on the published chat
// templates of six model families (tests/fixtures/chat_templates, sources in its README), 80
// conversations each (system or none, multi-turn, tools and tool results, Unicode, empty
// content, enable_thinking, date_string), with and without the generation prompt: text and
// ids equal. And `--assistant-masks` against transformers' return_assistant_tokens_mask
// (what TRL's assistant_only_loss trains on) with TRL's training templates.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "pipelines/sft.h"
#include "src/dataset_rows.h"
#include "src/jsonl.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

using testing::run_python;
using testing::run_r1kit;
using testing::TempDir;

const char* kScript = "tests/parity/chat_template_parity.py";

struct Family {
  std::string dir;  // the tokenizer directory the script builds
  std::string conversations;
};

// Built once per family for both suites (training a tokenizer takes seconds).
Family make_family(const std::string& family) {
  static TempDir shared;
  static std::map<std::string, Family> built;
  if (auto it = built.find(family); it != built.end()) return it->second;
  Family f{shared / family, shared / (family + ".conversations.jsonl")};
  EXPECT_EQ(run_python(std::string(kScript) + " make-model " + family + " '" + f.dir + "'"), 0) << family;
  EXPECT_EQ(run_python("tests/parity/chat_conversations.py " + family + " '" + f.conversations + "'"), 0) << family;
  return built[family] = f;
}

class ChatTemplateParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateParity, TokenizeEqualsApplyChatTemplate) {
  const std::string family = GetParam();
  TempDir tmp;
  const Family f = make_family(family);
  const std::string expected = tmp / "expected.jsonl";
  ASSERT_EQ(run_python(std::string(kScript) + " expect " + family + " '" + f.dir + "' '" + f.conversations + "' '" +
                       expected + "'"),
            0);
  const std::string without = tmp / "r1kit_false.jsonl", with = tmp / "r1kit_true.jsonl";
  const std::string common = "tokenize --chat --model '" + f.dir + "' --data '" + f.conversations + "'";
  auto o = run_r1kit(common + " --out '" + without + "'", tmp / "err");
  ASSERT_EQ(o.rc, 0) << o.err;
  o = run_r1kit(common + " --add-generation-prompt --out '" + with + "'", tmp / "err");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(run_python(std::string(kScript) + " compare '" + expected + "' '" + without + "' '" + with + "'"), 0)
      << family << ": r1kit's rendering or ids differ from transformers' (see stderr)";
}

INSTANTIATE_TEST_SUITE_P(Families, ChatTemplateParity,
                         ::testing::Values("qwen2_5_instruct", "qwen3", "llama3_1_instruct", "deepseek_r1",
                                           "deepseek_r1_distill_qwen", "deepseek_v3"));

// (family whose conversations and tokenizer are used, TRL training template)
class AssistantMaskParity : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(AssistantMaskParity, EqualsTransformersAssistantTokensMask) {
  const auto& [family, training] = GetParam();
  TempDir tmp;
  const Family f = make_family(family);
  const std::string templ = std::string(R1KIT_SOURCE_DIR) + "/.venv/lib/python3.11/site-packages/trl/chat_templates/" +
                            training + "_training.jinja";
  const std::string model = tmp / "training_model", expected = tmp / "masks.jsonl", got = tmp / "r1kit.jsonl";
  ASSERT_EQ(run_python(std::string(kScript) + " masks '" + f.dir + "' '" + templ + "' '" + f.conversations + "' '" +
                       model + "' '" + expected + "'"),
            0);
  auto o = run_r1kit(
      "tokenize --chat --assistant-masks --model '" + model + "' --data '" + f.conversations + "' --out '" + got + "'",
      tmp / "err");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(run_python(std::string(kScript) + " compare-masks '" + expected + "' '" + got + "'"), 0)
      << family << " with TRL's " << training << "_training.jinja";
}

INSTANTIATE_TEST_SUITE_P(TrlTrainingTemplates, AssistantMaskParity,
                         ::testing::Values(std::pair<std::string, std::string>{"qwen2_5_instruct", "qwen2_5"},
                                           std::pair<std::string, std::string>{"qwen3", "qwen3"},
                                           std::pair<std::string, std::string>{"llama3_1_instruct", "llama3"},
                                           std::pair<std::string, std::string>{"deepseek_r1", "deepseekv3"},
                                           std::pair<std::string, std::string>{"deepseek_r1_distill_qwen",
                                                                               "deepseek_r1_distill"}));

// The sft stage's loss mask on {"messages"} rows is TRL's assistant mask shifted to targets:
// the loss at position t (predicting token t+1) counts exactly when token t+1 is an
// assistant token of transformers' return_assistant_tokens_mask.
TEST(SftAssistantOnlyLoss, MaskIsTrlsAssistantMask) {
  TempDir tmp;
  const Family f = make_family("qwen2_5_instruct");
  const std::string templ =
      std::string(R1KIT_SOURCE_DIR) + "/.venv/lib/python3.11/site-packages/trl/chat_templates/qwen2_5_training.jinja";
  const std::string model = tmp / "training_model", expected = tmp / "masks.jsonl";
  ASSERT_EQ(run_python(std::string(kScript) + " masks '" + f.dir + "' '" + templ + "' '" + f.conversations + "' '" +
                       model + "' '" + expected + "'"),
            0);
  pipelines::SftOptions o;
  o.model = model;
  o.seq_len = 1 << 16;
  const Tokenizer tok = Tokenizer::load(model);
  const auto examples = pipelines::sft_examples(read_dataset(f.conversations), o, tok, /*eos=*/0);
  const std::vector<Json> want = read_jsonl(expected);
  ASSERT_EQ(examples.size(), want.size());
  int64_t counted = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto ids = want[i]["input_ids"].get<std::vector<int32_t>>();
    const auto mask = want[i]["assistant_masks"].get<std::vector<int>>();
    ASSERT_EQ(examples[i].tokens, ids) << "row " << i;
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      ASSERT_EQ(examples[i].mask[t], static_cast<float>(mask[t + 1])) << "row " << i << " target " << t;
      counted += mask[t + 1];
    }
  }
  EXPECT_GT(counted, 1000);
  std::printf("sft assistant-only loss: %zu conversations, %lld loss tokens, all equal TRL's mask\n", want.size(),
              static_cast<long long>(counted));
}

}  // namespace
}  // namespace r1kit

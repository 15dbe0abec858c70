// pipelines/checkpoint on the tiny qwen3_moe fixture (tests/tiny_policy.h) with AdamW after
// real steps: save_checkpoint leaves exactly step-N (no .tmp), latest_checkpoint takes the
// numerically newest complete directory and never a leftover step-N.tmp or a step-N without
// trainer_state.json, the `keep` limit (recipes' save_total_limit) prunes the oldest by step
// number, and load_checkpoint restores weights, AdamW moments and step counts, and the
// trainer state bit for bit.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "pipelines/checkpoint.h"
#include "pipelines/options.h"
#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "src/device.h"
#include "src/distributed.h"
#include "src/files.h"
#include "src/tokenizer.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

struct Trained {
  std::shared_ptr<policy::CausalLM> model;
  std::unique_ptr<torch::optim::AdamW> optimizer;
};

// The fixture model from `model_dir` and AdamW after `steps` steps on a fixed batch, so the
// optimizer has moments and step counts to save.
Trained train(const std::string& model_dir, int steps) {
  Trained t;
  t.model = policy::load_pretrained(model_dir, resolve_device("cpu"));
  t.optimizer = std::make_unique<torch::optim::AdamW>(t.model->parameters(), torch::optim::AdamWOptions(1e-2));
  const at::Tensor tokens = at::arange(12, at::kLong).view({2, 6}).add(5);  // [N, T]
  for (int s = 0; s < steps; ++s) {
    t.optimizer->zero_grad();
    t.model->forward(tokens).pow(2).mean().backward();
    t.optimizer->step();
  }
  return t;
}

// Every parameter and its AdamW state (exp_avg, exp_avg_sq, step), in parameter order.
std::vector<at::Tensor> snapshot(const Trained& t) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : t.model->parameters()) {
    out.push_back(p.detach().clone());
    const auto it = t.optimizer->state().find(p.unsafeGetTensorImpl());
    if (it == t.optimizer->state().end()) {
      out.push_back(at::empty({0}));  // no state yet: compared as such
      continue;
    }
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.push_back(s.exp_avg().clone());
    out.push_back(s.exp_avg_sq().clone());
    out.push_back(at::scalar_tensor(s.step(), at::kLong));
  }
  return out;
}

std::vector<std::string> sorted_entries(const std::string& dir) {
  std::vector<std::string> names = list_dir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::save_tiny_policy(tmp_ / "model");
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(tmp_ / "model/tokenizer.json"));
  }
  std::string model_dir() const { return tmp_ / "model"; }
  std::string root() const { return tmp_ / "checkpoints"; }

  testing::TempDir tmp_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(Checkpoint, SaveWritesACompleteStepDirAndNoTemporary) {
  Trained t = train(model_dir(), 1);
  TrainerState state;
  state.step = 3;
  // A leftover of a crash during an earlier save of the same step: cleared, never published.
  fs::create_directories(root() + "/step-3.tmp");
  std::ofstream(root() + "/step-3.tmp/junk.txt") << "partial";
  const std::string dir = save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, /*keep=*/0);
  EXPECT_EQ(dir, root() + "/step-3");
  EXPECT_EQ(sorted_entries(root()), (std::vector<std::string>{"step-3"}));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "optimizer.pt", "trainer_state.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  }
  EXPECT_FALSE(fs::exists(fs::path(dir) / "junk.txt"));
  EXPECT_EQ(latest_checkpoint(root()), dir);
}

// What a crash leaves must never be resumed from: step-N.tmp (complete or not), and a step-N
// without trainer_state.json, which is written last.
TEST_F(Checkpoint, LatestIgnoresIncompleteAndTemporaryDirs) {
  EXPECT_FALSE(latest_checkpoint(root()).has_value()) << "no root yet";
  Trained t = train(model_dir(), 1);
  TrainerState state;
  state.step = 2;
  const std::string good = save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, 0);
  // A complete-looking step-7.tmp (crash between its last file and the rename).
  fs::copy(good, root() + "/step-7.tmp", fs::copy_options::recursive);
  // A step-9 with the model but no trainer_state.json.
  fs::copy(good, root() + "/step-9", fs::copy_options::recursive);
  fs::remove(root() + "/step-9/trainer_state.json");
  // Names that are no step at all.
  fs::copy(good, root() + "/step-x", fs::copy_options::recursive);
  fs::copy(good, root() + "/final", fs::copy_options::recursive);
  EXPECT_EQ(latest_checkpoint(root()), good);
}

// Newest by step number, not by name: "step-9" sorts after "step-10" as text.
TEST_F(Checkpoint, LatestIsNumericallyNewestAndKeepPrunesTheOldest) {
  Trained t = train(model_dir(), 1);
  TrainerState state;
  for (int64_t step : {2, 9, 10}) {
    state.step = step;
    save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, /*keep=*/0);
  }
  EXPECT_EQ(latest_checkpoint(root()), root() + "/step-10");
  EXPECT_EQ(sorted_entries(root()), (std::vector<std::string>{"step-10", "step-2", "step-9"}));
  // keep = 2 on the next save: step-11 and step-10 stay; by text order step-10 would go.
  state.step = 11;
  save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, /*keep=*/2);
  EXPECT_EQ(sorted_entries(root()), (std::vector<std::string>{"step-10", "step-11"}));
  EXPECT_EQ(latest_checkpoint(root()), root() + "/step-11");
  // keep = 1 also prunes the previous one.
  state.step = 12;
  save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, /*keep=*/1);
  EXPECT_EQ(sorted_entries(root()), (std::vector<std::string>{"step-12"}));
}

// A newest checkpoint cut short after it was written (optimizer.pt truncated), or with a byte
// changed in place: latest_checkpoint skips it for the previous one (sizes and checksums in
// trainer_state.json). Loading the truncated one directly is an error naming it.
TEST_F(Checkpoint, TruncatedOrDamagedNewestFallsBackToThePrevious) {
  Trained t = train(model_dir(), 1);
  TrainerState state;
  state.step = 2;
  const std::string older = save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, 0);
  state.step = 4;
  const std::string truncated = save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, 0);
  EXPECT_EQ(latest_checkpoint(root()), truncated);
  const std::string optimizer = truncated + "/optimizer.pt";
  fs::resize_file(optimizer, fs::file_size(optimizer) / 2);
  EXPECT_EQ(latest_checkpoint(root()), older);
  Trained other = train(model_dir(), 1);
  try {
    load_checkpoint(truncated, *other.model, *other.optimizer);
    FAIL() << "a truncated optimizer.pt loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(truncated + ": cannot load the checkpoint"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("Exception raised from"), std::string::npos) << "a backtrace";
  }
  // Same size, one weight byte changed: only the checksum sees it.
  state.step = 6;
  const std::string damaged = save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, 0);
  {
    std::fstream f(damaged + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-3, std::ios::end);
    const char c = static_cast<char>(f.peek());
    f.seekp(-3, std::ios::end);
    f.put(static_cast<char>(c ^ 0x40));
  }
  EXPECT_EQ(latest_checkpoint(root()), older);
}

// A full disk (here: a file-size limit, so write() fails with EFBIG) while the optimizer
// state is written: one error naming the file and the reason, no step-N.tmp left behind,
// and the previous checkpoint is still the newest and loads.
TEST_F(Checkpoint, FailedWriteNamesTheFileAndLeavesThePreviousIntact) {
  Trained t = train(model_dir(), 2);
  TrainerState state;
  state.step = 2;
  const std::string older = save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, 0);
  const auto model_bytes = fs::file_size(older + "/model.safetensors");
  ASSERT_GT(fs::file_size(older + "/optimizer.pt"), model_bytes + 4096) << "the limit must fall between the two";
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // as the r1kit binary does: EFBIG, not a kill
  struct rlimit small = saved;
  small.rlim_cur = model_bytes + 4096;  // the model fits, AdamW's moments (2x) do not
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  state.step = 4;
  std::string error;
  try {
    save_checkpoint(root(), *t.model, *tokenizer_, *t.optimizer, state, 0);
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(error.find(root() + "/step-4: checkpoint not written (the previous ones are intact)"), std::string::npos)
      << error;
  EXPECT_NE(error.find("optimizer.pt"), std::string::npos) << error;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_EQ(sorted_entries(root()), (std::vector<std::string>{"step-2"}));
  EXPECT_EQ(latest_checkpoint(root()), older);
  Trained other = train(model_dir(), 1);
  EXPECT_EQ(load_checkpoint(older, *other.model, *other.optimizer).step, 2);
}

// Save after 3 steps; a different model (another seed) and a fresh AdamW after 1 step load
// it and then hold exactly the saved weights and optimizer state; one more step from each
// gives identical weights (nothing left unrestored that the next step reads).
TEST_F(Checkpoint, LoadRestoresWeightsOptimizerAndStateBitwise) {
  Trained saved = train(model_dir(), 3);
  TrainerState state;
  state.step = 3;
  state.data_position = 24;
  state.extra = {{"kl_coef", 0.125}, {"note", "x"}};
  const std::string dir = save_checkpoint(root(), *saved.model, *tokenizer_, *saved.optimizer, state, 0);
  const std::vector<at::Tensor> want = snapshot(saved);

  testing::save_tiny_policy(tmp_ / "other", /*seed=*/99);
  Trained loaded = train(tmp_ / "other", 1);
  ASSERT_FALSE(loaded.model->parameters()[0].equal(saved.model->parameters()[0])) << "the fixture seeds must differ";
  const TrainerState got = load_checkpoint(dir, *loaded.model, *loaded.optimizer);
  EXPECT_EQ(got.step, 3);
  EXPECT_EQ(got.data_position, 24);
  EXPECT_EQ(got.extra, state.extra);
  const std::vector<at::Tensor> have = snapshot(loaded);
  ASSERT_EQ(have.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(have[i].equal(want[i])) << "tensor " << i << " (parameter " << i / 4 << ") differs after load";
  }

  const at::Tensor tokens = at::arange(12, at::kLong).view({2, 6}).add(5);
  for (Trained* t : {&saved, &loaded}) {
    t->optimizer->zero_grad();
    t->model->forward(tokens).pow(2).mean().backward();
    t->optimizer->step();
  }
  const auto a = saved.model->parameters(), b = loaded.model->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << "parameter " << i << " after the next step";
}

// Issue 14's export defects: a model directory a stage writes must work in transformers' own
// tokenizer and in TRL unchanged: eos and pad set (TRL pads with pad_token), and R1's tags kept
// when a completion is decoded with skip_special_tokens=True (TRL, vLLM), even when the
// tokenizer it started from had marked them special.
TEST(HfExport, AutoTokenizerHasEosAndPadAndKeepsTheTags) {
  const fs::path dir = testing::scratch_dir("hf_export");
  testing::save_tiny_policy(dir / "src");
  Tokenizer tokenizer = Tokenizer::load((dir / "src").string());
  tokenizer.add_special_tokens({"<think>", "</think>", "<answer>", "</answer>"});  // an older export
  auto model = policy::load_pretrained((dir / "src").string(), resolve_device("cpu"));
  save_final_model(distributed(), *model, tokenizer, (dir / "out").string());
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json",
                           "generation_config.json", "model.safetensors"}) {
    EXPECT_TRUE(fs::exists(dir / "out" / file)) << file;
  }
  ASSERT_EQ(testing::run_python("tests/parity/hf_export_check.py '" + (dir / "out").string() + "' '" +
                                (dir / "check.json").string() + "'"),
            0);
  const Json seen = read_json_file((dir / "check.json").string());
  // transformers 5 loads tokenizer_class PreTrainedTokenizerFast as its TokenizersBackend.
  EXPECT_TRUE(seen["class"] == "PreTrainedTokenizerFast" || seen["class"] == "TokenizersBackend") << seen["class"];
  EXPECT_EQ(seen["eos_token"], "<|endoftext|>");
  EXPECT_EQ(seen["eos_token_id"], model->config().eos_token_ids.front());
  EXPECT_EQ(seen["pad_token"], "<|endoftext|>");
  EXPECT_EQ(seen["model_max_length"], model->config().max_position_embeddings);
  EXPECT_EQ(seen["decoded_skip_special"], "<think>\n1+1 is 2\n</think>\n<answer>2</answer>");
  EXPECT_EQ(seen["think_is_special"], false);

  // One TRL GRPOTrainer step on the directory as it is (TRL is in .venv): it loads, pads, and a
  // reward that needs the tags sees them in the decoded completions (with special tags it read
  // 0 on every completion and nothing was learned).
  ASSERT_EQ(testing::run_python("tests/parity/trl_export_check.py '" + (dir / "out").string() + "' '" +
                                (dir / "trl.json").string() + "'"),
            0);
  const Json trl = read_json_file((dir / "trl.json").string());
  ASSERT_EQ(trl["rewards"].size(), 16u);
  double total = 0;
  for (const Json& r : trl["rewards"]) total += r.get<double>();
  EXPECT_GT(total, 0.0) << "no completion kept a tag: " << trl["completions"].dump();
}

// Issue 14, stop tokens: generation_config.json may name more eos ids than config.json
// (Llama-3.1 and Qwen2.5 Instruct: a list); every one of them stops generation.
TEST(HfImport, GenerationConfigEosIdsJoinTheStopIds) {
  const fs::path dir = testing::scratch_dir("hf_import_eos");
  testing::save_tiny_policy(dir);
  const int64_t eos = policy::load_pretrained(dir.string(), resolve_device("cpu"))->config().eos_token_ids.at(0);
  std::ofstream((dir / "generation_config.json").string()) << Json{{"eos_token_id", {7, eos, 9}}}.dump();
  auto model = policy::load_pretrained(dir.string(), resolve_device("cpu"));
  EXPECT_EQ(model->config().eos_token_ids, (std::vector<int64_t>{eos, 7, 9}));
  std::ofstream((dir / "generation_config.json").string()) << Json{{"eos_token_id", 100000}}.dump();
  try {
    policy::load_pretrained(dir.string(), resolve_device("cpu"));
    FAIL() << "an eos id outside the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("generation_config.json: eos_token_id 100000 is not a token id"),
              std::string::npos)
        << e.what();
  }
}

// Issue 14: the tokenizer's eos_token (tokenizer_config.json) stops generation too, e.g. an
// instruct model whose turns end with "<|im_end|>" while config.json names "<|endoftext|>".
TEST(HfImport, TokenizerEosTokenJoinsTheStopIds) {
  const fs::path dir = testing::scratch_dir("hf_import_tokenizer_eos");
  testing::save_tiny_policy(dir);
  const std::vector<int64_t> before =
      policy::load_pretrained(dir.string(), resolve_device("cpu"))->config().eos_token_ids;
  Json tok = read_json_file((dir / "tokenizer.json").string());
  ASSERT_TRUE(tok.contains("added_tokens"));
  tok["added_tokens"].push_back({{"id", 5},
                                 {"content", "<|im_end|>"},
                                 {"single_word", false},
                                 {"lstrip", false},
                                 {"rstrip", false},
                                 {"normalized", false},
                                 {"special", true}});
  std::ofstream((dir / "tokenizer.json").string()) << tok.dump();
  std::ofstream((dir / "tokenizer_config.json").string()) << Json{{"eos_token", "<|im_end|>"}}.dump();
  std::vector<int64_t> want = before;
  if (std::find(want.begin(), want.end(), 5) == want.end()) want.push_back(5);
  EXPECT_EQ(policy::load_pretrained(dir.string(), resolve_device("cpu"))->config().eos_token_ids, want);
}

// Issue 14: a model's generation_config.json gives the sampling defaults for the keys a recipe
// does not set (Qwen3 ships temperature 0.6, top_p 0.95, top_k 20); a recipe's key wins.
TEST(HfImport, GenerationConfigSamplingDefaultsWhereTheRecipeSetsNone) {
  const fs::path dir = testing::scratch_dir("hf_import_sampling");
  std::ofstream((dir / "generation_config.json").string())
      << Json{{"temperature", 0.6}, {"top_p", 0.95}, {"top_k", 20}, {"do_sample", true}}.dump();
  GenerationOptions o;
  const Json recipe = {{"temperature", 0.9}};
  JsonFields f(recipe, "recipe.json: stages[0]");
  read_generation_options(f, o, "max_new_tokens");
  const rollout::SamplingOptions s = o.sampling_for(dir.string(), "eval");
  EXPECT_EQ(s.temperature, 0.9);  // the recipe's
  EXPECT_EQ(s.top_p, 0.95);
  EXPECT_EQ(s.top_k, 20);
  EXPECT_EQ(s.min_p, 0.0);  // in neither: r1kit's default
  EXPECT_EQ(GenerationOptions{}.sampling_for((dir / "none").string(), "eval").temperature, 1.0);  // no file
  std::ofstream((dir / "generation_config.json").string()) << Json{{"top_p", 2.0}}.dump();
  try {
    o.sampling_for(dir.string(), "eval");
    FAIL() << "top_p 2 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("generation_config.json.top_p"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit::pipelines

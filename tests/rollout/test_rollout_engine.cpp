// rollout::Engine on tiny random models (CPU fp32): logprobs equal a full forward over the
// finished sequences; a row alone equals the same row among 63 others; continuous batching
// (few slots) equals one big batch; a quarter-size paged pool preempts and gives the same rows;
// samples share their prompt's blocks; stop strings cut exactly; the MLA cache holds
// kv_lora_rank + qk_rope_head_dim values per token per layer; a CUDA bf16 smoke case.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "policy/causal_lm.h"
#include "policy/logprobs.h"
#include "policy/pretrained.h"
#include "rollout/engine.h"
#include "rollout/kv_cache.h"
#include "src/device.h"
#include "src/files.h"
#include "tests/tiny_policy.h"

namespace r1kit::rollout {
namespace {

using policy::ModelConfig;

ModelConfig tiny(const std::string& type) { return r1kit::testing::tiny_config(type); }

constexpr double kWeightScale = 2.0;

std::shared_ptr<policy::CausalLM> tiny_model(const std::string& type, uint64_t seed = 11) {
  auto m = policy::create_model(tiny(type), seed);
  // Random N(0, 0.02) weights give near-uniform next-token distributions; doubling them
  // makes them less flat. Much larger scales amplify fp32 rounding (matmul kernels differ
  // with the batch size M) past the 1e-5 batch-invariance tolerance.
  c10::InferenceMode guard;
  for (auto& p : m->parameters()) p.mul_(kWeightScale);
  return m;
}

std::vector<std::vector<int32_t>> random_prompts(int64_t count, uint64_t seed, int64_t min_len = 2,
                                                 int64_t max_len = 9) {
  std::vector<std::vector<int32_t>> out;
  std::srand(static_cast<unsigned>(seed));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t len = min_len + std::rand() % (max_len - min_len + 1);
    std::vector<int32_t> p;
    for (int64_t t = 0; t < len; ++t) p.push_back(2 + std::rand() % 48);
    out.push_back(p);
  }
  return out;
}

void expect_same_row(const Rollout& a, const Rollout& b, double tol, const std::string& what) {
  EXPECT_EQ(a.completion_ids, b.completion_ids) << what;
  EXPECT_EQ(a.finish, b.finish) << what;
  ASSERT_EQ(a.logprobs.size(), b.logprobs.size()) << what;
  for (size_t t = 0; t < a.logprobs.size(); ++t)
    EXPECT_NEAR(a.logprobs[t], b.logprobs[t], tol) << what << " token " << t;
}

void check_logprobs_equal_full_forward(const std::string& type) {
  auto model = tiny_model(type);
  Engine engine(model);
  SamplingOptions o;
  o.temperature = 0.7;
  o.max_new_tokens = 12;
  o.ignore_eos = true;
  o.seed = 5;
  const auto prompts = random_prompts(3, 1);
  const Rollouts r = engine.generate(prompts, /*group_size=*/2, o);
  ASSERT_EQ(r.rows.size(), 6u);
  c10::InferenceMode guard;
  model->eval();
  for (const Rollout& row : r.rows) {
    ASSERT_EQ(row.completion_ids.size(), 12u);
    EXPECT_EQ(row.finish, FinishReason::kLength);
    std::vector<int64_t> seq(row.prompt_ids.begin(), row.prompt_ids.end());
    seq.insert(seq.end(), row.completion_ids.begin(), row.completion_ids.end());
    const int64_t P = static_cast<int64_t>(row.prompt_ids.size()), T = 12;
    const at::Tensor tokens = at::tensor(seq, at::kLong).unsqueeze(0);            // [1, P+T]
    const at::Tensor hidden = model->forward_hidden(tokens).narrow(1, P - 1, T);  // [1, T, D]
    const at::Tensor targets = tokens.narrow(1, P, T);                            // [1, T]
    const at::Tensor ref = policy::token_logprobs(hidden, model->lm_head_weight(), targets, {0.7, 1024}).logprobs[0];
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_NEAR(row.logprobs[t], ref[t].item<double>(), 1e-4)
          << type << " row " << row.prompt_index << "/" << row.sample_index << " token " << t;
    }
  }
  // The G samples of a prompt differ (their own streams), the prompts are kept per row.
  EXPECT_NE(r.rows[0].completion_ids, r.rows[1].completion_ids);
  EXPECT_EQ(r.rows[3].prompt_ids, prompts[1]);
  EXPECT_EQ(r.rows[3].prompt_index, 1);
  EXPECT_EQ(r.rows[3].sample_index, 1);
  EXPECT_EQ(r.prefill_tokens, static_cast<int64_t>(prompts[0].size() + prompts[1].size() + prompts[2].size()))
      << "each prompt is prefilled once, not once per sample";
}

TEST(RolloutEngine, LogprobsEqualFullForwardGqa) { check_logprobs_equal_full_forward("qwen3_moe"); }
TEST(RolloutEngine, LogprobsEqualFullForwardMla) { check_logprobs_equal_full_forward("deepseek_v3"); }

TEST(RolloutEngine, GreedyFollowsArgmax) {
  auto model = tiny_model("qwen3_moe");
  Engine engine(model);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 8;
  o.ignore_eos = true;
  const auto prompts = random_prompts(1, 2);
  const Rollouts r = engine.generate(prompts, 1, o);
  c10::InferenceMode guard;
  model->eval();
  std::vector<int64_t> seq(prompts[0].begin(), prompts[0].end());
  for (int32_t tok : r.rows[0].completion_ids) {
    const at::Tensor logits = model->forward(at::tensor(seq, at::kLong).unsqueeze(0));  // [1, T, V]
    EXPECT_EQ(tok, logits[0][-1].argmax().item<int64_t>());
    seq.push_back(tok);
  }
}

// The model's window bounds every row (issue 12, case 2): a prompt that fills it is an error
// naming it; a huge max_new_tokens ends each row at the window instead of allocating a cache
// for it (1e9 tokens asked 128 GB before).
TEST(RolloutEngine, TheModelWindowBoundsPromptsAndCompletions) {
  policy::ModelConfig c = tiny("qwen3_moe");
  c.max_position_embeddings = 24;
  auto model = policy::create_model(c, /*seed=*/11);
  Engine engine(model);
  SamplingOptions o;
  o.max_new_tokens = 1'000'000'000;
  o.ignore_eos = true;
  const std::vector<std::vector<int32_t>> prompts = {std::vector<int32_t>(10, 3), std::vector<int32_t>(5, 4)};
  const Rollouts r = engine.generate(prompts, 2, o);
  for (const Rollout& row : r.rows) {
    EXPECT_EQ(row.prompt_ids.size() + row.completion_ids.size(), 24u);  // up to the window, not past it
    EXPECT_EQ(row.finish, FinishReason::kLength);
  }
  try {
    engine.generate({std::vector<int32_t>(24, 3)}, 1, o);
    FAIL() << "a prompt as long as the window was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prompt 0 has 24 tokens, the model's window (max_position_embeddings) is 24"),
              std::string::npos)
        << e.what();
  }
}

// max_model_len narrows the window below max_position_embeddings (vLLM's name). The memory
// budget (issue 12, case 2: generation was killed by the OOM killer at 23.4 GB): when R slots
// would not fit, fewer decode together and the tokens are the same; a request of which not
// even one row fits is an error naming both sizes, before anything is allocated.
TEST(RolloutEngine, MaxModelLenAndTheMemoryBudget) {
  const policy::ModelConfig c = tiny("qwen3_moe");
  auto model = policy::create_model(c, /*seed=*/11);
  SamplingOptions o;
  o.max_new_tokens = 12;
  o.ignore_eos = true;
  const auto prompts = random_prompts(4, 5, 3, 6);
  EngineOptions windowed;
  windowed.max_model_len = 10;
  for (const Rollout& row : Engine(model, windowed).generate(prompts, 2, o).rows) {
    EXPECT_EQ(row.prompt_ids.size() + row.completion_ids.size(), 10u);
  }
  try {
    Engine(model, windowed).generate({std::vector<int32_t>(10, 3)}, 1, o);
    FAIL() << "a prompt as long as max_model_len was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prompt 0 has 10 tokens, the model's window (max_model_len) is 10"),
              std::string::npos)
        << e.what();
  }

  const Rollouts all = Engine(model).generate(prompts, 2, o);  // 8 rows in 8 slots
  ASSERT_EQ(all.cache.rows, 8);
  // Per slot: the pool blocks of its longest row, and the [V] fp32 logits with the sampler's
  // copies (4); once: the blocks of one waiting prompt.
  const int64_t block_bytes = all.cache.block_size * all.cache.bytes_per_token;
  const int64_t per_row =
      (all.cache.capacity + all.cache.block_size - 1) / all.cache.block_size * block_bytes + 4 * c.vocab_size * 4;
  const int64_t prompt = (6 + all.cache.block_size - 1) / all.cache.block_size * block_bytes;
  EXPECT_EQ(all.cache.total_bytes, 8 * (per_row - 4 * c.vocab_size * 4) + prompt);
  EngineOptions tight;
  tight.max_memory_bytes = prompt + 3 * per_row + 1;
  const Rollouts three = Engine(model, tight).generate(prompts, 2, o);
  EXPECT_EQ(three.cache.rows, 3);
  ASSERT_EQ(three.rows.size(), all.rows.size());
  for (size_t i = 0; i < all.rows.size(); ++i) {
    expect_same_row(three.rows[i], all.rows[i], 1e-5, "row " + std::to_string(i));
  }
  tight.max_memory_bytes = prompt + per_row - 1;
  try {
    Engine(model, tight).generate(prompts, 2, o);
    FAIL() << "a request over the memory budget was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("of KV cache and logits, over the memory budget of"), std::string::npos)
        << e.what();
  }
}

TEST(RolloutEngine, RowAloneEqualsRowAmong63Others) {
  for (const std::string type : {"qwen3_moe", "deepseek_v3"}) {
    auto model = tiny_model(type);
    Engine engine(model);
    SamplingOptions o;
    o.max_new_tokens = 16;
    o.top_p = 0.9;
    o.repetition_penalty = 1.3;
    auto prompts = random_prompts(64, 3, 2, 20);
    std::vector<uint64_t> seeds;
    for (int64_t i = 0; i < 64; ++i) seeds.push_back(1000 + i);
    const Rollouts among = engine.generate(prompts, 1, o, seeds);
    for (int64_t i : {0, 37, 63}) {
      const Rollouts alone = engine.generate({prompts[i]}, 1, o, {seeds[i]});
      expect_same_row(alone.rows[0], among.rows[i], 1e-5, type + " row " + std::to_string(i));
    }
  }
}

TEST(RolloutEngine, ContinuousBatchingEqualsOneBigBatch) {
  for (const std::string type : {"qwen3_moe", "deepseek_v3"}) {
    auto model = tiny_model(type);
    SamplingOptions o;
    o.max_new_tokens = 20;
    o.stop_token_ids = {3, 4, 5};  // a few percent per step: rows end at different times
    o.seed = 9;
    const auto prompts = random_prompts(5, 4, 2, 12);
    EngineOptions big;
    big.max_batch_rows = 64;
    EngineOptions small;
    small.max_batch_rows = 4;
    small.max_prefill_tokens = 12;  // prompts prefilled a few at a time as slots free up
    const Rollouts one = Engine(model, big).generate(prompts, 3, o);
    const Rollouts few = Engine(model, small).generate(prompts, 3, o);
    ASSERT_EQ(one.rows.size(), 15u);
    EXPECT_EQ(one.cache.rows, 15);
    EXPECT_EQ(few.cache.rows, 4);
    EXPECT_GT(few.decode_steps, one.decode_steps);
    int64_t stopped = 0;
    for (size_t i = 0; i < 15; ++i) {
      expect_same_row(one.rows[i], few.rows[i], 1e-5, type + " row " + std::to_string(i));
      stopped += one.rows[i].finish == FinishReason::kEos;
    }
    EXPECT_GT(stopped, 0) << "no row stopped early: the test would not exercise slot reuse";
    EXPECT_LT(stopped, 15);
  }
}

// The paged pool at a quarter of what the rows need (issue 15): the rows outgrow it, the
// youngest are preempted and later resumed by recomputing their prefix, and every row still
// has the tokens and logprobs of the unconstrained run (draws are keyed by position), with
// top-p and a repetition penalty on; every block is handed back at the end.
TEST(RolloutEngine, AQuarterSizePoolPreemptsAndGivesTheSameRows) {
  for (const std::string type : {"qwen3_moe", "deepseek_v3"}) {
    auto model = tiny_model(type);
    SamplingOptions o;
    // Long enough that rows outgrow what admission keeps in reserve for them (256 positions).
    o.max_new_tokens = 600;
    o.ignore_eos = true;
    o.top_p = 0.9;
    o.repetition_penalty = 1.2;
    o.seed = 4;
    const auto prompts = random_prompts(6, 8, 5, 20);
    EngineOptions paged;
    paged.kv_block_size = 4;
    const Rollouts free_run = Engine(model, paged).generate(prompts, 4, o);
    EXPECT_EQ(free_run.cache.preemptions, 0);
    int64_t needed = 0;  // blocks the 24 rows hold at their longest
    for (const Rollout& r : free_run.rows) {
      needed += (static_cast<int64_t>(r.prompt_ids.size() + r.completion_ids.size()) + 3) / 4;
    }
    paged.max_kv_tokens = needed;  // a quarter: needed / 4 blocks of 4 tokens
    const Rollouts quarter = Engine(model, paged).generate(prompts, 4, o);
    EXPECT_EQ(quarter.cache.blocks, (needed + 3) / 4);
    EXPECT_GT(quarter.cache.preemptions, 0) << type;
    EXPECT_GT(quarter.cache.recomputed_tokens, 0);
    EXPECT_EQ(quarter.cache.free_blocks_at_end, quarter.cache.blocks) << "blocks were not all handed back";
    EXPECT_EQ(free_run.cache.free_blocks_at_end, free_run.cache.blocks);
    ASSERT_EQ(quarter.rows.size(), free_run.rows.size());
    for (size_t i = 0; i < free_run.rows.size(); ++i) {
      expect_same_row(quarter.rows[i], free_run.rows[i], 1e-5, type + " row " + std::to_string(i));
    }
  }
  // A pool that cannot hold one row is refused before anything runs.
  EngineOptions tiny_pool;
  tiny_pool.max_kv_tokens = 19;
  SamplingOptions o;
  o.max_new_tokens = 10;
  try {
    Engine(tiny_model("qwen3_moe"), tiny_pool).generate(random_prompts(2, 5, 10, 10), 2, o);
    FAIL() << "a pool smaller than one row was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_kv_tokens 19 cannot hold one sequence of 20 tokens"), std::string::npos)
        << e.what();
  }
}

// G samples hold one copy of their prompt's full blocks (bytes measured as the pool's peak):
// a 70-token prompt (4 full blocks of 16 + 6 positions) with G = 8 and 4 new tokens peaks at
// its 5 blocks + 7 copies of the partial one (the last sample takes the prompt's), where 8
// private copies would take 8 x 5.
TEST(RolloutEngine, SamplesShareTheirPromptBlocks) {
  auto model = tiny_model("deepseek_v3");
  SamplingOptions o;
  o.max_new_tokens = 4;
  o.ignore_eos = true;
  std::vector<int32_t> prompt;
  for (int32_t t = 0; t < 70; ++t) prompt.push_back(2 + t % 40);
  const Rollouts r = Engine(model).generate({prompt}, 8, o);
  EXPECT_EQ(r.cache.block_size, 16);
  EXPECT_EQ(r.cache.peak_blocks, 5 + 7);
  EXPECT_EQ(r.cache.shared_blocks, 8 * 4);
  const int64_t block_bytes = r.cache.block_size * r.cache.bytes_per_token;
  EXPECT_LT(r.cache.peak_blocks * block_bytes, 8 * 5 * block_bytes / 3);
  // One slot: each sample decodes alone while the prompt's blocks wait for the next one;
  // every sample reads the same prompt as it did among the others.
  EngineOptions one;
  one.max_batch_rows = 1;
  const Rollouts alone = Engine(model, one).generate({prompt}, 8, o);
  EXPECT_EQ(alone.cache.shared_blocks, 8 * 4);
  for (int64_t g = 0; g < 8; ++g) expect_same_row(alone.rows[g], r.rows[g], 1e-5, "sample " + std::to_string(g));
}

TEST(RolloutEngine, MlaCacheHoldsLatentAndRopeKeyOnly) {
  const ModelConfig mla = tiny("deepseek_v3"), gqa = tiny("qwen3_moe");
  EXPECT_EQ(kv_values_per_token_per_layer(mla), 12 + 4);       // kv_lora_rank + qk_rope_head_dim
  EXPECT_EQ(kv_values_per_token_per_layer(gqa), 2 * 2 * 8);    // k and v, Hkv = 2, Dh = 8
  EXPECT_EQ(kv_bytes_per_token(mla, at::kFloat), 16 * 2 * 4);  // L = 2, fp32
  EXPECT_EQ(kv_bytes_per_token(mla, at::kBFloat16), 16 * 2 * 2);
  KvCache cache(mla, 3, 10, at::TensorOptions().dtype(at::kFloat));
  const auto views = cache.view(2, 7);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].k.sizes(), (std::vector<int64_t>{2, 7, 12}));
  EXPECT_EQ(views[0].v.sizes(), (std::vector<int64_t>{2, 7, 4}));
  EXPECT_EQ(cache.total_bytes(), 3 * 10 * 16 * 2 * 4);
  // The engine reports the same numbers for its preallocated slots.
  SamplingOptions o;
  o.max_new_tokens = 4;
  o.ignore_eos = true;
  const Rollouts r = Engine(tiny_model("deepseek_v3")).generate(random_prompts(2, 6, 6, 6), 2, o);
  EXPECT_EQ(r.cache.values_per_token_per_layer, 16);
  EXPECT_EQ(r.cache.bytes_per_token, 16 * 2 * 4);
  // The pool: a 16-position block per row (6 + 4 positions) and one for a waiting prompt.
  EXPECT_EQ(r.cache.blocks, 4 + 1);
  EXPECT_EQ(r.cache.total_bytes, 5 * 16 * 16 * 2 * 4);
}

// Each id decodes to one letter, ids divisible by 3 to two ("c!"), so a stop string can
// end in the middle of a token's text.
std::string toy_decode(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += static_cast<char>('a' + id % 26);
    if (id % 3 == 0) s += '!';
  }
  return s;
}

TEST(RolloutEngine, StopStringsCutExactly) {
  auto model = tiny_model("qwen3_moe");
  Engine engine(model, {}, toy_decode);
  SamplingOptions o;
  o.max_new_tokens = 30;
  o.ignore_eos = true;
  o.seed = 21;
  const auto prompts = random_prompts(2, 7);
  const Rollouts free_run = engine.generate(prompts, 2, o);
  int64_t checked = 0;
  for (size_t i = 0; i < free_run.rows.size(); ++i) {
    const Rollout& ref = free_run.rows[i];
    EXPECT_EQ(ref.text, toy_decode(ref.completion_ids));
    // Stop at the 2 characters found at offset 7 of this row's own free-running text; with
    // the same seed the stopped run is the free run's prefix up to the first occurrence.
    const std::string stop = ref.text.substr(7, 2);
    const size_t at = ref.text.find(stop);
    for (bool include : {true, false}) {
      SamplingOptions os = o;
      os.stop_strings = {"zzzzzz", stop};
      os.include_stop_string = include;
      const Rollouts r = engine.generate({prompts[i / 2]}, 2, os, {prompt_seed(o.seed, static_cast<int64_t>(i / 2))});
      const Rollout& got = r.rows[i % 2];
      EXPECT_EQ(got.finish, FinishReason::kStopString);
      EXPECT_EQ(got.text, ref.text.substr(0, include ? at + 2 : at)) << "stop '" << stop << "'";
      // Tokens: the shortest prefix whose text contains the stop string.
      size_t n = 1;
      while (toy_decode({ref.completion_ids.begin(), ref.completion_ids.begin() + n}).find(stop) == std::string::npos)
        ++n;
      EXPECT_EQ(got.completion_ids, std::vector<int32_t>(ref.completion_ids.begin(), ref.completion_ids.begin() + n));
      EXPECT_EQ(got.logprobs.size(), n);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 8);
  SamplingOptions bad = o;
  bad.stop_strings = {"x"};
  EXPECT_THROW(Engine(model).generate(prompts, 1, bad), Error);  // no detokenizer
}

TEST(RolloutEngine, EosEndsARowAndIsKept) {
  auto model = tiny_model("qwen3_moe");
  SamplingOptions o;
  o.max_new_tokens = 40;
  o.seed = 2;
  const Rollouts r = Engine(model).generate(random_prompts(8, 8), 4, o);
  int64_t eos = 0;
  for (const Rollout& row : r.rows) {
    if (row.finish == FinishReason::kEos) {
      ++eos;
      EXPECT_EQ(row.completion_ids.back(), 1);
      EXPECT_LE(row.completion_ids.size(), 40u);
    } else {
      EXPECT_EQ(row.completion_ids.size(), 40u);
    }
    for (size_t t = 0; t + 1 < row.completion_ids.size(); ++t) EXPECT_NE(row.completion_ids[t], 1);
  }
  EXPECT_GT(eos, 0);
  // Same seed, same result; another seed, other tokens.
  const Rollouts again = Engine(model).generate(random_prompts(8, 8), 4, o);
  for (size_t i = 0; i < r.rows.size(); ++i) expect_same_row(r.rows[i], again.rows[i], 0.0, "rerun");
  o.seed = 3;
  const Rollouts other = Engine(model).generate(random_prompts(8, 8), 4, o);
  int64_t differ = 0;
  for (size_t i = 0; i < r.rows.size(); ++i) differ += other.rows[i].completion_ids != r.rows[i].completion_ids;
  EXPECT_GT(differ, 16);
}

TEST(RolloutEngine, CudaBf16Generates) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const std::string dir = std::string(R1KIT_BINARY_DIR) + "/test_rollout_cuda_model";
  policy::save_pretrained(*tiny_model("deepseek_v3"), dir);
  for (const std::string dtype : {"bfloat16", "float32"}) {
    auto model = policy::load_pretrained(dir, resolve_device("cuda", dtype));
    SamplingOptions o;
    o.max_new_tokens = 24;
    o.top_k = 20;
    const Rollouts r = Engine(model).generate(random_prompts(6, 9), 4, o);
    ASSERT_EQ(r.rows.size(), 24u);
    for (const Rollout& row : r.rows) {
      EXPECT_GT(row.completion_ids.size(), 0u);
      for (float lp : row.logprobs) EXPECT_TRUE(lp <= 0 && std::isfinite(lp));
    }
    EXPECT_EQ(r.cache.bytes_per_token, 16 * 2 * (dtype == "bfloat16" ? 2 : 4));
  }
  remove_tree(dir);
}

}  // namespace
}  // namespace r1kit::rollout

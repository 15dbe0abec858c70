// Hand-checkable policy tests: routing with a planted bias, the bias-update signs, the
// sort-by-expert MoE against a per-token loop and its no-grad path against the grad path,
// chunked logprobs (values and gradients) against the full log_softmax, the KV-cache paths
// (MLA absorbed, GQA) against the cache-free forward, batch invariance under right padding,
// and config errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "policy/balancing.h"
#include "policy/causal_lm.h"
#include "policy/cpu/dispatch.h"
#include "policy/layers/moe.h"
#include "policy/logprobs.h"
#include "policy/lora.h"
#include "policy/parameter_count.h"
#include "policy/pretrained.h"
#include "tests/tiny_policy.h"

namespace r1kit::policy {
namespace {

ModelConfig tiny(const std::string& type) {
  ModelConfig c;
  c.model_type = type;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  if (type == "deepseek_v3") {
    c.q_lora_rank = 16;
    c.kv_lora_rank = 12;
    c.qk_nope_head_dim = 8;
    c.qk_rope_head_dim = 4;
    c.v_head_dim = 6;
    c.head_dim = 4;
    c.scoring_func = "sigmoid";
    c.norm_topk_prob = true;
    c.routed_scaling_factor = 2.5;
    c.n_shared_experts = 1;
    c.n_group = 2;
    c.topk_group = 1;
  }
  if (type != "qwen2") {
    c.num_experts = 4;
    c.num_experts_per_tok = 2;
    c.moe_intermediate_size = 16;
  }
  return c;
}

// One token x = [1, 0] and router rows [a_i, 0] give logits a = [2, 1, 0, -1], so
// s = sigmoid(a) = [0.8808, 0.7311, 0.5, 0.2689].
Router make_router(int64_t n_group, int64_t topk_group) {
  ModelConfig c = tiny("deepseek_v3");
  c.hidden_size = 2;
  c.n_group = n_group;
  c.topk_group = topk_group;
  Router r(c);
  torch::NoGradGuard no_grad;
  r.weight.zero_();
  r.weight.select(1, 0).copy_(at::tensor({2.f, 1.f, 0.f, -1.f}));
  return r;
}

std::set<int64_t> chosen(const Routing& r) {
  std::set<int64_t> s;
  for (int64_t k = 0; k < r.experts.size(1); ++k) s.insert(r.experts[0][k].item<int64_t>());
  return s;
}

TEST(PolicyRouting, PlantedBiasSelectsButDoesNotWeight) {
  Router r = make_router(/*n_group=*/1, /*topk_group=*/1);
  const at::Tensor x = at::tensor({1.f, 0.f}).view({1, 2});
  EXPECT_EQ(chosen(r.forward(x)), (std::set<int64_t>{0, 1}));  // top-2 of s
  r.bias.copy_(at::tensor({0.f, 0.f, 0.f, 1.f}));              // s + b = [.88, .73, .5, 1.27]
  const Routing routed = r.forward(x);
  EXPECT_EQ(chosen(routed), (std::set<int64_t>{0, 3}));
  // Weights are the UNBIASED scores, normalised, times 2.5: .2689/1.1497*2.5, .8808/1.1497*2.5.
  for (int64_t k = 0; k < 2; ++k) {
    const int64_t e = routed.experts[0][k].item<int64_t>();
    EXPECT_NEAR(routed.weights[0][k].item<float>(), e == 3 ? 0.58473f : 1.91527f, 1e-4);
  }
}

TEST(PolicyRouting, GroupLimitedRoutingKeepsBestGroup) {
  // Groups {0,1} and {2,3}; a group's score is the sum of its top-2 (biased) scores.
  Router r = make_router(/*n_group=*/2, /*topk_group=*/1);
  const at::Tensor x = at::tensor({1.f, 0.f}).view({1, 2});
  EXPECT_EQ(chosen(r.forward(x)), (std::set<int64_t>{0, 1}));  // 1.61 vs 0.77
  r.bias.copy_(at::tensor({0.f, 0.f, 0.f, 1.f}));              // 1.61 vs 1.77: group 1 wins
  EXPECT_EQ(chosen(r.forward(x)), (std::set<int64_t>{2, 3}));
}

TEST(PolicyBalancing, BiasUpdateSigns) {
  // load [10, 2, 4, 0], mean 4: overloaded expert 0 goes down, 1 and 3 go up, 2 stays.
  const at::Tensor b = biased_update(at::zeros({4}), at::tensor({10.f, 2.f, 4.f, 0.f}), 0.001);
  EXPECT_TRUE(at::allclose(b, at::tensor({-0.001f, 0.001f, 0.f, 0.001f})));
}

TEST(PolicyBalancing, TrainingForwardThenUpdateMovesBiasAgainstLoad) {
  auto model = create_model(tiny("deepseek_v3"), 3);
  model->train();
  model->forward(at::randint(0, 50, {4, 9}, at::kLong));
  std::vector<at::Tensor> loads;
  for (MoeBlock* m : model->moe_blocks()) loads.push_back(m->last_counts().to(at::kFloat));
  const ExpertLoadReport report = update_router_biases(*model, 0.01);
  ASSERT_EQ(report.max_over_mean.size(), 2u);
  for (size_t i = 0; i < loads.size(); ++i) {
    const at::Tensor expected = 0.01 * at::sign(loads[i].mean() - loads[i]);
    EXPECT_TRUE(at::allclose(model->moe_blocks()[i]->router().bias, expected));
    EXPECT_NEAR(report.max_over_mean[i], (loads[i].max() / loads[i].mean()).item<double>(), 1e-6);
  }
  // The accumulated load was consumed: a second update without a forward changes nothing.
  const at::Tensor before = model->moe_blocks()[0]->router().bias.clone();
  update_router_biases(*model, 0.01);
  EXPECT_TRUE(at::equal(before, model->moe_blocks()[0]->router().bias));
}

TEST(PolicyMoe, SortedExpertsEqualPerTokenLoop) {
  const ModelConfig c = tiny("qwen3_moe");
  at::manual_seed(0);
  MoeBlock moe(c);
  const at::Tensor x = at::randn({3, 5, c.hidden_size});
  torch::NoGradGuard no_grad;
  const at::Tensor y = moe.forward(x);
  // Independent reference: every token, every chosen expert, one at a time.
  const at::Tensor flat = x.view({15, c.hidden_size});
  const Routing r = moe.router().forward(flat);
  auto params = moe.named_parameters();
  const at::Tensor gu = params["experts.gate_up_proj"], down = params["experts.down_proj"];
  const int64_t I = c.moe_intermediate_size;
  at::Tensor ref = at::zeros_like(flat);
  for (int64_t t = 0; t < 15; ++t) {
    for (int64_t k = 0; k < 2; ++k) {
      const int64_t e = r.experts[t][k].item<int64_t>();
      const at::Tensor h = at::matmul(gu[e], flat[t]);  // [2I]
      const at::Tensor a = at::silu(h.narrow(0, 0, I)) * h.narrow(0, I, I);
      ref[t] += r.weights[t][k] * at::matmul(down[e], a);
    }
  }
  EXPECT_LT((y.view({15, -1}) - ref).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(moe.last_counts().sum().item<int64_t>(), 15 * 2);  // every (token, k) counted once
}

// Without gradients the experts run as grouped GEMMs over transposed weight copies; with
// gradients as per-expert matmuls on the parameters. Both must agree, the copies must follow
// an in-place weight update (an optimizer step), and gradients must still reach the experts.
TEST(PolicyMoe, InferencePathEqualsTrainingPathAndFollowsWeightUpdates) {
  const ModelConfig c = tiny("qwen3_moe");
  at::manual_seed(1);
  MoeBlock moe(c);
  moe.eval();
  const at::Tensor x = at::randn({4, 3, c.hidden_size});
  at::Tensor gu = moe.named_parameters()["experts.gate_up_proj"];
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "fresh weights" : "after an in-place update");
    const at::Tensor trained = moe.forward(x);  // grad mode: the training path
    ASSERT_TRUE(trained.requires_grad());
    at::Tensor inferred;
    {
      torch::NoGradGuard no_grad;
      inferred = moe.forward(x);
    }
    EXPECT_LT((trained.detach() - inferred).abs().max().item<double>(), 1e-6);
    torch::NoGradGuard no_grad;
    gu.mul_(1.5).add_(0.01);  // bumps the version counter, as AdamW's step does
  }
  const at::Tensor loss = moe.forward(x).pow(2).sum();
  loss.backward();
  ASSERT_TRUE(gu.grad().defined());
  EXPECT_GT(gu.grad().abs().sum().item<double>(), 0.0);
}

TEST(PolicyLogprobs, ChunkedEqualsNaiveValuesAndGradients) {
  at::manual_seed(1);
  const at::Tensor h = at::randn({3, 7, 16}).requires_grad_(true);
  const at::Tensor w = at::randn({40, 16}).requires_grad_(true);
  const at::Tensor y = at::randint(0, 40, {3, 7}, at::kLong);
  const at::Tensor c1 = at::randn({3, 7}), c2 = at::randn({3, 7});
  LogprobOptions opt;
  opt.temperature = 0.7;
  opt.chunk_rows = 5;  // 21 rows in chunks of 5, 5, 5, 5, 1
  const TokenLogprobs a = token_logprobs(h, w, y, opt);
  const TokenLogprobs b = token_logprobs_naive(h, w, y, 0.7);
  EXPECT_TRUE(at::allclose(a.logprobs, b.logprobs, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(a.entropy, b.entropy, 1e-4, 1e-4))  // logits ~N(0, 6): fp32 rounding ~2e-5
      << "max entropy diff " << (a.entropy - b.entropy).abs().max().item<double>();
  const auto ga = torch::autograd::grad({(a.logprobs * c1).sum() + (a.entropy * c2).sum()}, {h, w});
  const auto gb = torch::autograd::grad({(b.logprobs * c1).sum() + (b.entropy * c2).sum()}, {h, w});
  EXPECT_TRUE(at::allclose(ga[0], gb[0], 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(ga[1], gb[1], 1e-4, 1e-5));
}

// Prefill P tokens into a cache, then decode the rest one token at a time; every step's
// logits must equal the cache-free forward over the whole sequence.
// With `lora`, every Linear layer carries an adapter with non-zero B (MLA's absorbed decode
// uses kv_b_proj's weight itself, which must then be the adapted one).
void check_cache_matches_full_forward(const std::string& type, bool lora = false) {
  SCOPED_TRACE(type);
  auto model = create_model(tiny(type), 5);
  if (lora) {
    LoraOptions o;
    o.r = 4;
    add_lora(*model, o, /*seed=*/2);
    torch::NoGradGuard no_grad;
    for (at::Tensor& t : trainable_parameters(*model)) t.copy_(at::randn_like(t) * 0.3);
  }
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t N = 2, T = 9, P = 4, S = 16;
  const ModelConfig& c = model->config();
  const at::Tensor tokens = at::randint(0, c.vocab_size, {N, T}, at::kLong);
  const at::Tensor full = model->forward(tokens);  // [N, T, V]
  std::vector<LayerKv> cache(c.num_hidden_layers);
  for (auto& l : cache) {
    if (c.is_mla()) {
      l.k = at::zeros({N, S, c.kv_lora_rank});      // latent only: R per token
      l.v = at::zeros({N, S, c.qk_rope_head_dim});  // + Dr
    } else {
      l.k = at::zeros({N, c.num_key_value_heads, S, c.head_dim});
      l.v = at::zeros({N, c.num_key_value_heads, S, c.head_dim});
    }
  }
  const at::Tensor pos = at::arange(T, at::kLong).unsqueeze(0).expand({N, T});
  // The prompt through the cache (masked attention over it), and as a prefill (causal over the
  // prompt, the cache only written): the same logits, and decoding after either is exact.
  for (const bool prefill : {false, true}) {
    SCOPED_TRACE(prefill ? "prefill" : "masked");
    for (auto& l : cache) {
      l.k.zero_();
      l.v.zero_();
    }
    const at::Tensor pre =
        model->logits(model->forward_hidden(tokens.narrow(1, 0, P), pos.narrow(1, 0, P), &cache, prefill));
    EXPECT_LT((pre - full.narrow(1, 0, P)).abs().max().item<double>(), 1e-5);
    for (int64_t t = P; t < T; ++t) {
      const at::Tensor step = model->logits(model->forward_hidden(tokens.narrow(1, t, 1), pos.narrow(1, t, 1), &cache));
      EXPECT_LT((step - full.narrow(1, t, 1)).abs().max().item<double>(), 1e-5) << "position " << t;
    }
  }
}

TEST(PolicyCache, MlaAbsorbedDecodeEqualsFullForward) { check_cache_matches_full_forward("deepseek_v3"); }
TEST(PolicyCache, GqaDecodeEqualsFullForward) { check_cache_matches_full_forward("qwen3_moe"); }
TEST(PolicyCache, MlaAbsorbedDecodeWithLoraEqualsFullForward) { check_cache_matches_full_forward("deepseek_v3", true); }
TEST(PolicyCache, GqaDecodeWithLoraEqualsFullForward) { check_cache_matches_full_forward("qwen3_moe", true); }

// The same through a paged cache (LayerKv::blocks): every row's positions in scattered
// blocks of 3 of a shared pool, prefilled through the table (the ATen path gathers) and
// decoded one token at a time, with the CPU decode kernel reading the blocks in place and
// with the kernels off (ATen over gathered blocks).
void check_paged_cache_matches_full_forward(const std::string& type, bool kernels) {
  SCOPED_TRACE(type + (kernels ? " kernels" : " aten"));
  const bool previous = cpu::set_kernels_enabled(kernels);
  auto model = create_model(tiny(type), 5);
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t N = 2, T = 11, P = 4, Bs = 3, nb = 4, NB = 10;
  const ModelConfig& c = model->config();
  const at::Tensor tokens = at::randint(0, c.vocab_size, {N, T}, at::kLong);
  const at::Tensor full = model->forward(tokens);  // [N, T, V]
  // Row 0 holds blocks 7, 2, 9, 4; row 1 holds 0, 8, 5, 1 (3 and 6 belong to nobody).
  const at::Tensor table = at::tensor(std::vector<int64_t>{7, 2, 9, 4, 0, 8, 5, 1}, at::kLong).view({N, nb});
  std::vector<LayerKv> cache(c.num_hidden_layers);
  for (auto& l : cache) {
    if (c.is_mla()) {
      l.k = at::zeros({NB, Bs, c.kv_lora_rank});
      l.v = at::zeros({NB, Bs, c.qk_rope_head_dim});
    } else {
      l.k = at::zeros({NB, c.num_key_value_heads, Bs, c.head_dim});
      l.v = at::zeros({NB, c.num_key_value_heads, Bs, c.head_dim});
    }
    l.blocks = table;
  }
  const int64_t calls = cpu::kernel_calls();
  const at::Tensor pos = at::arange(T, at::kLong).unsqueeze(0).expand({N, T});
  const at::Tensor pre = model->logits(model->forward_hidden(tokens.narrow(1, 0, P), pos.narrow(1, 0, P), &cache));
  EXPECT_LT((pre - full.narrow(1, 0, P)).abs().max().item<double>(), 1e-5);
  for (int64_t t = P; t < T; ++t) {
    const at::Tensor step = model->logits(model->forward_hidden(tokens.narrow(1, t, 1), pos.narrow(1, t, 1), &cache));
    EXPECT_LT((step - full.narrow(1, t, 1)).abs().max().item<double>(), 1e-5) << "position " << t;
  }
  EXPECT_EQ(cpu::kernel_calls() > calls, kernels && cpu::cpu_has_avx2_fma());
  for (const auto& l : cache) {
    EXPECT_TRUE(l.k[3].eq(0).all().item<bool>() && l.k[6].eq(0).all().item<bool>()) << "a free block was written";
  }
  cpu::set_kernels_enabled(previous);
}

TEST(PolicyCache, PagedMlaDecodeEqualsFullForward) {
  check_paged_cache_matches_full_forward("deepseek_v3", true);
  check_paged_cache_matches_full_forward("deepseek_v3", false);
}
TEST(PolicyCache, PagedGqaDecodeEqualsFullForward) {
  check_paged_cache_matches_full_forward("qwen3_moe", true);
  check_paged_cache_matches_full_forward("qwen3_moe", false);
}

TEST(PolicyBatch, RightPaddingDoesNotChangeARow) {
  auto model = create_model(tiny("qwen2"), 6);
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor row = at::randint(0, 50, {1, 6}, at::kLong);
  const at::Tensor padded = at::cat({row, at::full({1, 4}, 0, at::kLong)}, 1);  // right-padded to 10
  const at::Tensor batch = at::cat({padded, at::randint(0, 50, {3, 10}, at::kLong)}, 0);
  const at::Tensor alone = model->forward(row);
  const at::Tensor among = model->forward(batch).narrow(0, 0, 1).narrow(1, 0, 6);
  EXPECT_LT((alone - among).abs().max().item<double>(), 1e-5);
}

TEST(PolicyConfig, ErrorsNameTheProblem) {
  auto message = [](const std::string& text) {
    try {
      parse_model_config(Json::parse(text), "m/config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"model_type": "gpt9"})").find("unknown model_type 'gpt9' (known: deepseek_v3, llama"),
            std::string::npos);
  EXPECT_EQ(message(R"({"model_type": "llama", "num_attention_heads": 6, "num_key_value_heads": 4})"),
            "m/config.json: num_attention_heads (6) must be a multiple of num_key_value_heads (4)");
  EXPECT_EQ(message(R"({"model_type": "qwen2", "hidden_act": "gelu"})"),
            "m/config.json.hidden_act '"
            "gelu' is not supported (silu only)");
  EXPECT_EQ(message(R"({"model_type": "qwen2", "rope_scaling": {"type": "dynamic", "factor": 2}})"),
            "m/config.json.rope_scaling.rope_type: 'dynamic' is not supported (default, yarn, llama3, linear)");
  EXPECT_EQ(message(R"({"model_type": "qwen2", "vocab_size": "big"})"),
            "m/config.json.vocab_size must be an integer, got string");
}

TEST(PolicyParams, ActiveParametersCountKOfEExperts) {
  auto model = create_model(tiny("qwen3_moe"), 1);
  const ModelConfig& c = model->config();
  // Per MoE layer the experts hold E * 3 * I * D; only K of E are active.
  const int64_t per_layer_inactive =
      (c.num_experts - c.num_experts_per_tok) * 3 * c.moe_intermediate_size * c.hidden_size;
  EXPECT_EQ(model->num_parameters() - model->num_active_parameters(), 2 * per_layer_inactive);
}

}  // namespace
}  // namespace r1kit::policy

namespace r1kit::policy {
namespace {

// count_parameters (what `r1kit plan` sizes models by) equals the model CausalLM builds, for
// every architecture and a LoRA on each; MoE shapes with shared experts of both kinds.
TEST(ParameterCount, EqualsTheBuiltModelAndItsAdapters) {
  std::vector<ModelConfig> configs;
  for (const char* type : {"qwen3_moe", "deepseek_v3", "qwen2", "llama"}) configs.push_back(testing::tiny_config(type));
  configs[1].first_k_dense_replace = 1, configs[1].num_hidden_layers = 3;
  configs[2].qkv_bias = true, configs[2].tie_word_embeddings = true;
  configs[3].num_experts = 0, configs[3].o_bias = true, configs[3].mlp_bias = true;
  ModelConfig qwen2_moe = testing::tiny_config("qwen2_moe");
  qwen2_moe.shared_expert_intermediate_size = 24;
  qwen2_moe.qkv_bias = true;
  configs.push_back(qwen2_moe);
  ModelConfig no_q_lora = testing::tiny_config("deepseek_v3");
  no_q_lora.q_lora_rank = 0;
  configs.push_back(no_q_lora);
  for (const ModelConfig& c : configs) {
    auto model = create_model(c, 1);
    const ParameterCounts counts = count_parameters(c);
    EXPECT_EQ(counts.total, model->num_parameters()) << c.model_type;
    EXPECT_EQ(counts.active, model->num_active_parameters()) << c.model_type;
    int64_t largest = 0;
    for (const auto& p : model->parameters()) largest = std::max<int64_t>(largest, p.numel());
    EXPECT_EQ(counts.largest_tensor, largest) << c.model_type;
    for (const std::vector<std::string>& targets :
         std::vector<std::vector<std::string>>{{"all-linear"}, {"q_proj", "v_proj"}, {"o_proj", "down_proj"}}) {
      LoraOptions o;
      o.r = 3;
      o.target_modules = targets;
      auto adapted = create_model(c, 1);
      try {
        add_lora(*adapted, o, 1);
      } catch (const Error&) {
        continue;  // a target this architecture lacks: the stage refuses it before planning matters
      }
      EXPECT_EQ(lora_parameter_count(counts, o), num_trainable_parameters(*adapted))
          << c.model_type << " " << targets[0];
    }
  }
}

}  // namespace
}  // namespace r1kit::policy

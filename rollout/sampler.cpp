// Sampler (see sampler.h). Reference for the processors: HF LogitsProcessor classes
// (RepetitionPenalty, Temperature, TopK, TopP, MinP); deviation: top-p keeps token i when
// the mass strictly before it (sorted descending) is < p, which is HF's rule restated.
#include "rollout/sampler.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "policy/cpu/dispatch.h"
#include "rollout/cpu_draw.h"
#include "src/error.h"

namespace r1kit::rollout {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kMix1 = 0xBF58476D1CE4E5B9ULL;
constexpr uint64_t kMix2 = 0x94D049BB133111EBULL;

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * kMix1;
  z = (z ^ (z >> 27)) * kMix2;
  return z ^ (z >> 31);
}

int64_t as_signed(uint64_t v) { return static_cast<int64_t>(v); }

// Logical right shift of int64 bit patterns (torch's >> is arithmetic on signed types).
at::Tensor shr(const at::Tensor& z, int64_t s) {
  return at::bitwise_and(at::bitwise_right_shift(z, s), as_signed((~0ULL) >> s));
}

at::Tensor mix64(const at::Tensor& x) {  // the same splitmix64 finaliser, wrapping int64 math
  at::Tensor z = at::bitwise_xor(x, shr(x, 30)) * as_signed(kMix1);
  z = at::bitwise_xor(z, shr(z, 27)) * as_signed(kMix2);
  return at::bitwise_xor(z, shr(z, 31));
}

}  // namespace

SamplingOptions parse_sampling_options(const Json& j, const std::string& where) {
  SamplingOptions o;
  JsonFields f(j, where);
  f.get("temperature", o.temperature);
  f.get("top_k", o.top_k);
  f.get("top_p", o.top_p);
  f.get("min_p", o.min_p);
  f.get("repetition_penalty", o.repetition_penalty);
  f.get("max_new_tokens", o.max_new_tokens);
  f.get("stop_token_ids", o.stop_token_ids);
  f.get("stop_strings", o.stop_strings);
  f.get("include_stop_string", o.include_stop_string);
  f.get("ignore_eos", o.ignore_eos);
  int64_t seed = 0;
  f.get("seed", seed);
  o.seed = static_cast<uint64_t>(seed);
  f.finish();
  validate(o, where);
  return o;
}

SamplingOptionError check(const SamplingOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) return {"temperature", "must be >= 0"};
  if (o.top_k < 0) return {"top_k", "must be >= 0 (0 = off)"};
  if (!(o.top_p > 0 && o.top_p <= 1)) return {"top_p", "must be in (0, 1]"};
  if (!(o.min_p >= 0 && o.min_p <= 1)) return {"min_p", "must be in [0, 1]"};
  if (!(o.repetition_penalty > 0) || !std::isfinite(o.repetition_penalty)) return {"repetition_penalty", "must be > 0"};
  if (o.max_new_tokens < 1) return {"max_new_tokens", "must be >= 1"};
  for (const auto& s : o.stop_strings) {
    if (s.empty()) return {"stop_strings", "must not contain an empty string"};
  }
  return {};
}

void validate(const SamplingOptions& o, const std::string& where) {
  const SamplingOptionError e = check(o);
  if (!e.key.empty()) throw Error(where + ": " + e.key + " " + e.what);
}

uint64_t prompt_seed(uint64_t seed, int64_t prompt_index) {
  return mix64(mix64(seed + kGolden) ^ static_cast<uint64_t>(prompt_index));
}

uint64_t row_key(uint64_t prompt_seed_value, int64_t sample_index) {
  return mix64(prompt_seed_value ^ mix64(static_cast<uint64_t>(sample_index) + kGolden));
}

double row_uniform(uint64_t key, int64_t step) {
  // splitmix64: the step-th output of the generator seeded with `key`; top 24 bits.
  const uint64_t z = mix64(key + (static_cast<uint64_t>(step) + 1) * kGolden);
  return static_cast<double>(z >> 40) / static_cast<double>(1ULL << 24);
}

at::Tensor row_uniforms(const at::Tensor& keys, const at::Tensor& steps) {
  TORCH_CHECK(keys.sizes() == steps.sizes() && keys.dim() == 1, "row_uniforms: keys ", keys.sizes(), " and steps ",
              steps.sizes(), " must both be [N]");
  const at::Tensor z = mix64(keys + (steps + 1) * as_signed(kGolden));  // [N] int64
  // 24 bits: exactly representable in fp32, so u < 1 always.
  return shr(z, 40).to(at::kFloat) / static_cast<float>(1 << 24);
}

at::Tensor sampling_logprobs(const at::Tensor& logits_in, const at::Tensor& seen, const SamplingOptions& o) {
  TORCH_CHECK(logits_in.dim() == 2, "sampler: logits must be [N, V], got ", logits_in.sizes());
  at::Tensor logits = logits_in.to(at::kFloat);  // [N, V]
  const int64_t V = logits.size(1);
  if (o.repetition_penalty != 1.0 && seen.defined()) {
    TORCH_CHECK(seen.sizes() == logits.sizes(), "sampler: seen ", seen.sizes(), " vs logits ", logits.sizes());
    const double p = o.repetition_penalty;
    logits = at::where(seen, at::where(logits > 0, logits / p, logits * p), logits);
  }
  if (o.temperature == 0) return at::log_softmax(logits, /*dim=*/-1);
  if (o.temperature != 1.0) logits = logits / o.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < V) {
    // Ties with the k-th value are kept, as in HF's TopKLogitsWarper.
    const at::Tensor kth = std::get<0>(at::topk(logits, o.top_k, /*dim=*/-1)).narrow(-1, o.top_k - 1, 1);  // [N, 1]
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    const auto [sorted, order] = at::sort(logits, /*dim=*/-1, /*descending=*/true);  // [N, V]
    const at::Tensor probs = at::softmax(sorted, -1);
    const at::Tensor before = at::cumsum(probs, -1) - probs;  // mass strictly before each token
    const at::Tensor drop_sorted = before >= o.top_p;         // the first token is always kept
    const at::Tensor drop = at::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    logits = logits.masked_fill(drop, neg_inf);
  }
  if (o.min_p > 0) {
    const at::Tensor probs = at::softmax(logits, -1);
    const at::Tensor top = std::get<0>(probs.max(-1, /*keepdim=*/true));  // [N, 1]
    logits = logits.masked_fill(probs < top * o.min_p, neg_inf);
  }
  return at::log_softmax(logits, /*dim=*/-1);
}

Draw draw(const at::Tensor& logprobs, const at::Tensor& uniforms, bool greedy) {
  TORCH_CHECK(logprobs.dim() == 2 && uniforms.dim() == 1 && uniforms.size(0) == logprobs.size(0),
              "sampler draw: logprobs ", logprobs.sizes(), ", uniforms ", uniforms.sizes());
  at::Tensor tokens;  // [N]
  if (greedy) {
    tokens = logprobs.argmax(-1);
  } else {
    // Inverse CDF in vocabulary order: the first token whose cumulative mass exceeds u * total.
    // Each row's cumsum is computed on its own, so the draw is independent of the batch.
    const at::Tensor cdf = at::cumsum(logprobs.exp(), -1);  // [N, V]
    const int64_t V = cdf.size(1);
    const at::Tensor target = uniforms.unsqueeze(1) * cdf.narrow(1, V - 1, 1);  // [N, 1]
    tokens = at::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(1);
    // u * total can round up to total; that overflow (index V) falls back to the mode.
    tokens = at::where(tokens >= V, logprobs.argmax(-1), tokens);
  }
  const at::Tensor lp = logprobs.gather(1, tokens.unsqueeze(1)).squeeze(1);  // [N]
  return {tokens, lp};
}

Draw sample(const at::Tensor& logits_in, const at::Tensor& seen, const SamplingOptions& o, const at::Tensor& uniforms) {
  const bool only_scales = o.temperature > 0 && o.top_k == 0 && o.top_p >= 1.0 && o.min_p == 0 &&
                           (o.repetition_penalty == 1.0 || !seen.defined());
  if (!only_scales) return draw(sampling_logprobs(logits_in, seen, o), uniforms, o.temperature == 0);
  TORCH_CHECK(logits_in.dim() == 2 && uniforms.dim() == 1 && uniforms.size(0) == logits_in.size(0), "sampler: logits ",
              logits_in.sizes(), ", uniforms ", uniforms.sizes());
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  at::NoGradGuard no_grad;                       // a draw has no gradient (and the CPU kernels run only without one)
  at::Tensor logits = logits_in.to(at::kFloat);  // [N, V]
  if (policy::cpu::kernels_apply(logits)) {
    // The fused pass (rollout/cpu_draw.h); elsewhere the same rule on ATen below.
    const at::Tensor x = logits.contiguous();                              // [N, V]
    const at::Tensor u = uniforms.to(at::kCPU, at::kDouble).contiguous();  // [N]
    at::Tensor tokens = at::empty({N}, at::kLong), lp = at::empty({N}, at::kFloat);
    cpu_draw(x.data_ptr<float>(), N, V, o.temperature, u.data_ptr<double>(), tokens.data_ptr<int64_t>(),
             lp.data_ptr<float>());
    return {tokens, lp};
  }
  if (o.temperature != 1.0) logits = logits / o.temperature;
  const at::Tensor top = logits.amax(/*dim=*/-1, /*keepdim=*/true);      // [N, 1]
  const at::Tensor cdf = at::cumsum(at::exp(logits - top), /*dim=*/-1);  // [N, V] unnormalised
  const at::Tensor total = cdf.narrow(1, V - 1, 1);                      // [N, 1]
  at::Tensor tokens = at::searchsorted(cdf, uniforms.unsqueeze(1) * total, /*out_int32=*/false, /*right=*/true);
  const at::Tensor overflow = tokens >= V;                // u * total rounded up to total: the mode, as draw()
  if (!tokens.is_cpu() || overflow.any().item<bool>()) {  // a host check is free on CPU
    tokens = at::where(overflow, logits.argmax(-1, /*keepdim=*/true), tokens);
  }
  const at::Tensor lp = logits.gather(1, tokens) - top - total.log();  // [N, 1]
  return {tokens.squeeze(1), lp.squeeze(1)};
}

}  // namespace r1kit::rollout

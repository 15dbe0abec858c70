// rollout sampler: SamplingOptions, the logit processing chain and the draw.
//
// Chain (HF generate's order): repetition penalty (HF CTRL rule: positive logits / p,
// negative * p, for every token seen in prompt or completion), temperature, top-k, top-p,
// min-p; the result is the log-distribution actually sampled from, -inf outside the kept
// set, so the logprob returned for a token is that of the TRUNCATED distribution when
// top-k/top-p/min-p cut anything (equal to policy/logprobs at the same temperature only
// when nothing is cut). temperature 0 = greedy; its logprob is then log_softmax of the
// penalised logits at temperature 1 (a point mass would always say 0).
// Randomness: each row owns a counter-based stream (splitmix64 keyed by seed, prompt index,
// sample index; counter = token index), so a row's draws never depend on the batch, need
// no per-row generator object and stay on the device (inverse-CDF sampling).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::rollout {

struct SamplingOptions {
  double temperature = 1.0;               // logits / T; 0 = greedy
  int64_t top_k = 0;                      // keep the k most likely tokens; 0 = off
  double top_p = 1.0;                     // keep the smallest set with mass >= p; 1 = off
  double min_p = 0.0;                     // drop tokens below min_p * max prob; 0 = off
  double repetition_penalty = 1.0;        // HF CTRL penalty on seen tokens; 1 = off
  int64_t max_new_tokens = 256;           // completion length cap (finish reason "length")
  std::vector<int64_t> stop_token_ids;    // finish like EOS (the token is kept)
  std::vector<std::string> stop_strings;  // finish when the completion text contains one
  bool include_stop_string = true;        // text keeps the stop string (cut right after it)
  bool ignore_eos = false;                // do not stop at the model's EOS ids (benchmarks)
  uint64_t seed = 0;                      // with prompt and sample index, keys each row's stream
};

// `where` names the JSON origin in errors ("recipe.json: rollout.sampling").
SamplingOptions parse_sampling_options(const Json& j, const std::string& where);
// The first out-of-range field of `o`: its JSON key and what is wrong (key "" when valid).
struct SamplingOptionError {
  std::string key, what;
};
SamplingOptionError check(const SamplingOptions& o);
// Throws r1kit::Error "where: key what" for the first out-of-range value.
void validate(const SamplingOptions& o, const std::string& where);

// The stream key of one row (prompt_seed = seed of the row's prompt).
uint64_t row_key(uint64_t prompt_seed, int64_t sample_index);
uint64_t prompt_seed(uint64_t seed, int64_t prompt_index);
// The `step`-th uniform in [0, 1) of the stream `key` (host twin of row_uniforms).
double row_uniform(uint64_t key, int64_t step);
// keys [N] int64 (bit patterns of uint64), steps [N] int64 -> [N] fp32 uniforms in [0, 1),
// computed on the keys' device.
at::Tensor row_uniforms(const at::Tensor& keys, const at::Tensor& steps);

// logits [N, V] (any float dtype), seen [N, V] bool or undefined (needed only for the
// repetition penalty) -> [N, V] fp32 log-probabilities of the distribution sampled from.
at::Tensor sampling_logprobs(const at::Tensor& logits, const at::Tensor& seen, const SamplingOptions& o);

struct Draw {
  at::Tensor tokens;    // [N] int64
  at::Tensor logprobs;  // [N] fp32, log p of the drawn token under sampling_logprobs
};
// Inverse-CDF draw from logprobs [N, V] with uniforms [N]; argmax when greedy.
Draw draw(const at::Tensor& logprobs, const at::Tensor& uniforms, bool greedy);

// draw(sampling_logprobs(logits, seen, o), uniforms, o.temperature == 0) in fewer passes
// over [N, V] when the chain only scales (no penalty, top-k/p or min-p, temperature > 0):
// the CDF is taken over exp(x - max) and the logprob is x - max - log(total), so neither the
// [N, V] logprobs nor an argmax are materialised (the draw was a third of a decode step on
// the bench model); on CPU the CDF is walked on the host up to the drawn token. Equal to the
// chain up to float rounding at the CDF boundaries.
Draw sample(const at::Tensor& logits, const at::Tensor& seen, const SamplingOptions& o, const at::Tensor& uniforms);

}  // namespace r1kit::rollout

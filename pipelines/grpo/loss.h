// The GRPO objective and its variants, as one free function over per-token logprobs.
//
// Per token (DeepSeekMath eq. 3, with TRL's knobs):
//   ratio   = exp(logp_new - logp_old)            (token level), or, for GSPO
//             exp(mean_t(logp_new - logp_old))    (sequence level, one ratio per sequence)
//   pg      = min(ratio * A, clip(ratio, 1 - epsilon, 1 + epsilon_high) * A)
//   kl      = exp(logp_ref - logp_new) - (logp_ref - logp_new) - 1      (k3, DSM eq. 4)
//   loss_t  = -(pg - beta * kl) - entropy_coef * entropy
// aggregated by loss_type over the completion tokens (mask):
//   grpo     mean over each sequence's tokens, then over sequences (DSM eq. 3)
//   bnpo     mean over the tokens of this minibatch (TRL: "local batch")
//   dapo     sum over tokens / tokens of the whole optimizer batch (DAPO token-level)
//   dr_grpo  sum over tokens / (sequences of the batch * max_completion_length)
// so that summing the losses of the minibatches of one optimizer step gives the loss of the
// whole batch (gradient accumulation). With ratio 1 the per-token gradient coefficient is
// A + beta * (pi_ref / pi - 1) (DSM appendix A.1.6); tests/pipelines check it by autograd.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "src/config.h"

namespace r1kit::pipelines::grpo {

// How the per-token losses are aggregated (TRL's loss_type; see the table above).
enum class LossType { kGrpo, kBnpo, kDapo, kDrGrpo };
inline constexpr EnumName<LossType> kLossTypeNames[] = {
    {"grpo", LossType::kGrpo}, {"bnpo", LossType::kBnpo}, {"dapo", LossType::kDapo}, {"dr_grpo", LossType::kDrGrpo}};

// One importance ratio per token, or one per sequence (GSPO).
enum class ImportanceSampling { kToken, kSequence };
inline constexpr EnumName<ImportanceSampling> kImportanceSamplingNames[] = {
    {"token", ImportanceSampling::kToken}, {"sequence", ImportanceSampling::kSequence}};

// The objective's knobs: a typed piece of the GRPO stage's options (JSON keys = field names).
struct LossOptions {
  LossType loss_type = LossType::kDapo;
  ImportanceSampling importance_sampling_level = ImportanceSampling::kToken;
  double epsilon = 0.2;                 // lower clip: ratio >= 1 - epsilon
  double epsilon_high = 0.0;            // upper clip: ratio <= 1 + epsilon_high; 0 = epsilon
  double beta = 0.0;                    // KL coefficient (0: no reference model)
  double entropy_coef = 0.0;            // bonus on the policy entropy
  int64_t max_completion_length = 256;  // dr_grpo's constant normaliser (the sampling cap)
};

// Reads the keys above (except max_completion_length, the sampling piece's) from a stage's
// options and checks their ranges; errors name the key.
void read_loss_options(JsonFields& f, LossOptions& o);

struct LossInputs {
  at::Tensor logprobs_new;  // [n, T] fp32, differentiable: the policy being trained
  at::Tensor logprobs_old;  // [n, T] fp32: the policy that sampled (rollout logprobs)
  at::Tensor logprobs_ref;  // [n, T] fp32 or undefined (beta = 0)
  at::Tensor entropy;       // [n, T] fp32 or undefined (entropy_coef = 0)
  at::Tensor advantages;    // [n] fp32
  at::Tensor mask;          // [n, T] fp32, 1 on completion tokens that count
  // The whole optimizer batch this minibatch belongs to (for the normalisers):
  int64_t batch_sequences = 0;  // sequences in the batch (0: this minibatch's n)
  double batch_tokens = 0;      // mask sum over the batch (0: this minibatch's)
  int64_t num_minibatches = 1;  // minibatches accumulated into one step (bnpo)
};

struct LossOutput {
  at::Tensor loss;  // scalar to backward()
  // Detached diagnostics over the minibatch's masked tokens:
  double kl_mean = 0;             // mean k3 KL (0 when beta = 0)
  double clip_low_fraction = 0;   // ratio < 1 - eps with A < 0 (the clip is active)
  double clip_high_fraction = 0;  // ratio > 1 + eps_high with A > 0
  double ratio_mean = 0;
  double entropy_mean = 0;
  double tokens = 0;  // mask sum
};

LossOutput grpo_loss(const LossInputs& in, const LossOptions& options);

}  // namespace r1kit::pipelines::grpo

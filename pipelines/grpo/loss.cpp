// grpo_loss (see loss.h). Reference: DeepSeekMath eq. 3-4 and appendix A.1.6; TRL
// GRPOTrainer._compute_loss for the loss_type normalisers and clip-fraction definitions.
#include "pipelines/grpo/loss.h"

#include <ATen/ATen.h>

#include <cmath>

#include "src/error.h"

namespace r1kit::pipelines::grpo {

void read_loss_options(JsonFields& f, LossOptions& o) {
  f.get("loss_type", o.loss_type, kLossTypeNames);
  f.get("importance_sampling_level", o.importance_sampling_level, kImportanceSamplingNames);
  f.get("epsilon", o.epsilon);
  f.get("epsilon_high", o.epsilon_high);
  f.get("beta", o.beta);
  f.get("entropy_coef", o.entropy_coef);
  if (!(o.epsilon > 0 && o.epsilon < 1)) f.fail("epsilon", "must be in (0, 1), got " + std::to_string(o.epsilon));
  if (!(o.epsilon_high >= 0)) f.fail("epsilon_high", "must be >= 0 (0 = epsilon)");
  if (!(o.beta >= 0)) f.fail("beta", "must be >= 0, got " + std::to_string(o.beta));
  if (!std::isfinite(o.entropy_coef)) f.fail("entropy_coef", "must be a finite number");
}

LossOutput grpo_loss(const LossInputs& in, const LossOptions& o) {
  const int64_t n = in.logprobs_new.size(0);
  TORCH_CHECK(in.logprobs_old.sizes() == in.logprobs_new.sizes() && in.mask.sizes() == in.logprobs_new.sizes(),
              "grpo_loss: logprobs_new ", in.logprobs_new.sizes(), ", logprobs_old ", in.logprobs_old.sizes(),
              " and mask ", in.mask.sizes(), " must all be [n, T]");
  TORCH_CHECK(in.advantages.dim() == 1 && in.advantages.size(0) == n, "grpo_loss: advantages has ",
              in.advantages.sizes(), ", expected [n=", n, "]");
  const at::Tensor mask = in.mask.to(at::kFloat);
  const at::Tensor tokens_per_seq = mask.sum(-1).clamp_min(1.0);            // [n]
  const at::Tensor log_ratio = (in.logprobs_new - in.logprobs_old) * mask;  // [n, T]
  at::Tensor log_w;                                                         // [n, T] or [n, 1]
  switch (o.importance_sampling_level) {
    case ImportanceSampling::kToken:
      log_w = log_ratio;
      break;
    case ImportanceSampling::kSequence:
      log_w = (log_ratio.sum(-1) / tokens_per_seq).unsqueeze(-1);
      break;
  }
  const double eps_high = o.epsilon_high > 0 ? o.epsilon_high : o.epsilon;
  const at::Tensor ratio = at::exp(log_w);
  const at::Tensor A = in.advantages.to(at::kFloat).unsqueeze(-1);  // [n, 1]
  const at::Tensor clipped = at::clamp(ratio, 1.0 - o.epsilon, 1.0 + eps_high);
  at::Tensor per_token = -at::min(ratio * A, clipped * A);  // [n, T] or [n, 1]
  per_token = per_token.expand_as(mask);

  at::Tensor kl;
  if (o.beta != 0) {
    TORCH_CHECK(in.logprobs_ref.defined(), "grpo_loss: beta=", o.beta, " needs logprobs_ref");
    const at::Tensor d = in.logprobs_ref - in.logprobs_new;  // log(pi_ref / pi)
    kl = at::exp(d) - d - 1;
    per_token = per_token + o.beta * kl;
  }
  if (o.entropy_coef != 0) {
    TORCH_CHECK(in.entropy.defined(), "grpo_loss: entropy_coef needs entropy");
    per_token = per_token - o.entropy_coef * in.entropy;
  }

  const at::Tensor masked = per_token * mask;
  const double batch_sequences = static_cast<double>(in.batch_sequences > 0 ? in.batch_sequences : n);
  const double mb_tokens = mask.sum().item<double>();
  const double batch_tokens = in.batch_tokens > 0 ? in.batch_tokens : mb_tokens;
  LossOutput out;
  switch (o.loss_type) {
    case LossType::kGrpo:
      out.loss = (masked.sum(-1) / tokens_per_seq).sum() / batch_sequences;
      break;
    case LossType::kBnpo:
      out.loss =
          masked.sum() / std::max(mb_tokens, 1.0) / static_cast<double>(std::max<int64_t>(in.num_minibatches, 1));
      break;
    case LossType::kDapo:
      out.loss = masked.sum() / std::max(batch_tokens, 1.0);
      break;
    case LossType::kDrGrpo:
      out.loss = masked.sum() / (batch_sequences * static_cast<double>(o.max_completion_length));
      break;
  }

  // Diagnostics (TRL's definitions: a clip counts where it changes the objective).
  at::NoGradGuard no_grad;
  const double denom = std::max(mb_tokens, 1.0);
  const at::Tensor r = ratio.detach().expand_as(mask);
  const at::Tensor a = A.expand_as(mask);
  out.tokens = mb_tokens;
  out.ratio_mean = (r * mask).sum().item<double>() / denom;
  out.clip_low_fraction = ((r < 1.0 - o.epsilon).logical_and(a < 0).to(at::kFloat) * mask).sum().item<double>() / denom;
  out.clip_high_fraction = ((r > 1.0 + eps_high).logical_and(a > 0).to(at::kFloat) * mask).sum().item<double>() / denom;
  if (kl.defined()) out.kl_mean = (kl.detach() * mask).sum().item<double>() / denom;
  if (in.entropy.defined()) out.entropy_mean = (in.entropy.detach() * mask).sum().item<double>() / denom;
  return out;
}

}  // namespace r1kit::pipelines::grpo

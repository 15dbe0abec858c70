// Group-relative advantages (DeepSeekMath sec. 4.1.2, outcome supervision): each of a
// prompt's G completions gets A_i = (r_i - mean_g) / (std_g + eps), the same for all its
// tokens. Options follow TRL's GRPOConfig: scale_rewards = "group" (std of the group),
// "batch" (std of the whole batch, PPO-Lite), "none" (mean-centring only, Dr. GRPO).
// std is the unbiased (Bessel) estimate and eps = 1e-4, as TRL computes it; DeepSeekMath
// does not say which std it used. Groups whose rewards are all equal give A = 0 and are
// counted: they carry no learning signal (the "reward is 0" confusion of peers' users).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "src/config.h"

namespace r1kit::pipelines::grpo {

// What the centred rewards are divided by: the group's std, the batch's, or nothing.
enum class ScaleRewards { kGroup, kBatch, kNone };
inline constexpr EnumName<ScaleRewards> kScaleRewardsNames[] = {
    {"group", ScaleRewards::kGroup}, {"batch", ScaleRewards::kBatch}, {"none", ScaleRewards::kNone}};

struct AdvantageOptions {
  ScaleRewards scale_rewards = ScaleRewards::kGroup;
  double eps = 1e-4;  // added to the std before dividing
};

struct Advantages {
  at::Tensor values;          // [N] fp32, N = B*G, rows of a group contiguous
  at::Tensor zero_std_group;  // [B] bool: every reward of the group equal
  int64_t num_zero_std = 0;   // count of such groups
};

// rewards [N] (any float dtype), G completions per prompt.
Advantages group_advantages(const at::Tensor& rewards, int64_t G, const AdvantageOptions& options = {});

}  // namespace r1kit::pipelines::grpo

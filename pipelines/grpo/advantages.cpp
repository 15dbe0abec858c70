// group_advantages (see advantages.h).
#include "pipelines/grpo/advantages.h"

#include <ATen/ATen.h>

#include "src/error.h"

namespace r1kit::pipelines::grpo {

Advantages group_advantages(const at::Tensor& rewards, int64_t G, const AdvantageOptions& options) {
  TORCH_CHECK(rewards.dim() == 1 && G > 0 && rewards.size(0) % G == 0, "group_advantages: rewards has ",
              rewards.size(0), " rows, not a multiple of G=", G);
  const at::Tensor r = rewards.to(at::kFloat).view({-1, G});    // [B, G]
  const at::Tensor mean = r.mean(/*dim=*/1, /*keepdim=*/true);  // [B, 1]
  // Unbiased std; a group of one has no spread (std would be NaN).
  const at::Tensor group_std = G > 1 ? r.std(/*dim=*/1, /*unbiased=*/true, /*keepdim=*/true) : at::zeros_like(mean);
  Advantages a;
  a.zero_std_group = group_std.squeeze(1).abs() < 1e-12;
  a.num_zero_std = a.zero_std_group.sum().item<int64_t>();
  at::Tensor centred = r - mean;
  switch (options.scale_rewards) {
    case ScaleRewards::kGroup:
      centred = centred / (group_std + options.eps);
      break;
    case ScaleRewards::kBatch: {
      const at::Tensor all = rewards.to(at::kFloat);
      centred = centred / ((all.numel() > 1 ? all.std() : at::zeros({})) + options.eps);
      break;
    }
    case ScaleRewards::kNone:
      break;
  }
  a.values = centred.reshape({-1});
  return a;
}

}  // namespace r1kit::pipelines::grpo

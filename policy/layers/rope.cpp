// RoPE tables and rotation (see rope.h). Reference: transformers modeling_rope_utils.py
// (_compute_default/linear/llama3/yarn_parameters), DeepSeek-V3 inference/model.py.
#include "policy/layers/rope.h"

#include <ATen/ATen.h>

#include <cmath>

#include "policy/cpu/dispatch.h"
#include "policy/cpu/rope.h"

namespace r1kit::policy {
namespace {

double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

double yarn_softmax_scale(const RopeConfig& r) {
  if (r.type == "default" || r.mscale_all_dim == 0) return 1.0;
  const double m = yarn_mscale(r.factor, r.mscale_all_dim);
  return m * m;
}

RopeTable make_rope_table(const ModelConfig& c) {
  const RopeConfig& r = c.rope;
  const int64_t dim = c.rope_dim();
  // HF computes base ** (arange(0, dim, 2) / dim) in fp32; so do we, for identical tables.
  const at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  const at::Tensor pos_freqs = at::pow(r.theta, exponents);
  at::Tensor inv_freq = 1.0 / pos_freqs;  // [dim/2]
  RopeTable t;
  if (r.type == "linear") {
    inv_freq = inv_freq / r.factor;
  } else if (r.type == "llama3") {
    const double old_len = static_cast<double>(r.original_max_position);
    const double low_wavelen = old_len / r.low_freq_factor;
    const double high_wavelen = old_len / r.high_freq_factor;
    const at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / r.factor, inv_freq);
    const at::Tensor smooth = (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    const at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    const at::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv_freq = at::where(medium, smoothed, scaled);
  } else if (r.type == "yarn") {
    const double base = r.theta, factor = r.factor;
    auto correction_dim = [&](double rotations) {
      return dim * std::log(r.original_max_position / (rotations * 2 * M_PI)) / (2 * std::log(base));
    };
    double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
    if (r.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;  // HF: prevent a zero-width ramp
    const at::Tensor ramp = ((at::arange(dim / 2, at::kFloat) - low) / (high - low)).clamp(0, 1);
    const at::Tensor extrapolation = 1 - ramp;  // 1 = keep the original frequency
    const at::Tensor interpolation_freq = 1.0 / (factor * pos_freqs);
    inv_freq = interpolation_freq * (1 - extrapolation) + inv_freq * extrapolation;
    if (r.attention_factor != 0) {
      t.attention_scaling = r.attention_factor;
    } else if (r.mscale != 0 && r.mscale_all_dim != 0) {
      t.attention_scaling = yarn_mscale(factor, r.mscale) / yarn_mscale(factor, r.mscale_all_dim);
    } else {
      t.attention_scaling = yarn_mscale(factor, 1.0);
    }
  }
  t.inv_freq = inv_freq.contiguous();
  return t;
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const RopeTable& table, const at::Tensor& positions,
                                               at::ScalarType dtype) {
  // freqs[n, t, i] = position[n, t] * inv_freq[i], in fp32 as HF (autocast disabled there).
  const at::Tensor inv = table.inv_freq.to(positions.device());
  const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv;  // [N, T, Dr/2]
  const at::Tensor emb = at::cat({freqs, freqs}, /*dim=*/-1);             // [N, T, Dr]
  return {(emb.cos() * table.attention_scaling).to(dtype), (emb.sin() * table.attention_scaling).to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos_full, const at::Tensor& sin_full, bool interleaved) {
  const at::Tensor cos = cos_full.unsqueeze(1);  // [N, 1, T, Dr]
  const at::Tensor sin = sin_full.unsqueeze(1);
  const int64_t half = x.size(-1) / 2;
  if (!interleaved && cpu::kernels_apply(x) && cos_full.scalar_type() == at::kFloat && x.stride(-1) == 1) {
    return cpu::rope(x, cos_full, sin_full);  // decode: one pass (policy/cpu/rope.h)
  }
  if (!interleaved) {
    const at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    return x * cos + at::cat({-x2, x1}, -1) * sin;
  }
  const at::Tensor c = cos.narrow(-1, 0, half), s = sin.narrow(-1, 0, half);
  const at::Tensor even = x.slice(-1, 0, c10::nullopt, 2), odd = x.slice(-1, 1, c10::nullopt, 2);
  return at::cat({even * c - odd * s, odd * c + even * s}, -1);
}

}  // namespace r1kit::policy

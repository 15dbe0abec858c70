// quantize_fp8 / dequantize_fp8 (see fp8.h).
#include "policy/fp8.h"

#include <ATen/ATen.h>

namespace r1kit::policy {
namespace {

// A [ceil(out/128), ceil(in/128)] tensor's value per element of [out, in].
at::Tensor per_element(const at::Tensor& blocks, int64_t out, int64_t in) {
  return blocks.repeat_interleave(kFp8Block, 0).repeat_interleave(kFp8Block, 1).narrow(0, 0, out).narrow(1, 0, in);
}

}  // namespace

Fp8Weight quantize_fp8(const at::Tensor& w) {
  TORCH_CHECK(w.dim() == 2, "quantize_fp8: a weight must be [out, in], got ", w.sizes());
  const int64_t out = w.size(0), in = w.size(1);
  const int64_t ob = (out + kFp8Block - 1) / kFp8Block, ib = (in + kFp8Block - 1) / kFp8Block;
  const at::Tensor w32 = w.to(at::kFloat);
  // Zero-padded to whole blocks, [ob, 128, ib, 128]: the amax of each block.
  const at::Tensor padded = at::constant_pad_nd(w32, {0, ib * kFp8Block - in, 0, ob * kFp8Block - out});
  const at::Tensor amax = padded.view({ob, kFp8Block, ib, kFp8Block}).abs().amax({1, 3});  // [ob, ib]
  Fp8Weight q;
  q.scale_inv = at::where(amax > 0, amax / kFp8E4m3Max, at::ones_like(amax));
  q.weight = (w32 / per_element(q.scale_inv, out, in)).to(at::kFloat8_e4m3fn);
  return q;
}

at::Tensor dequantize_fp8(const at::Tensor& q, const at::Tensor& scale_inv) {
  return q.to(at::kFloat) * per_element(scale_inv.to(at::kFloat), q.size(0), q.size(1));
}

bool fp8_quantized(const std::string& name, const at::Tensor& t) {
  if (t.dim() != 2 || !name.ends_with(".weight")) return false;
  return name.find("embed_tokens") == std::string::npos && name.find("lm_head") == std::string::npos &&
         !name.ends_with("mlp.gate.weight");
}

}  // namespace r1kit::policy

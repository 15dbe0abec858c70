// PackedLinear (see packed_linear.h).
#include "policy/cpu/packed_linear.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <vector>

#include "policy/cpu/dispatch.h"
#include "policy/cpu/packed_gemm.h"

namespace r1kit::policy::cpu {

bool PackedLinear::applies(const at::Tensor& x, const at::Tensor& weight) {
  return kernels_apply(x) && weight.scalar_type() == at::kFloat && weight.numel() <= kMaxWeightFloats &&
         x.numel() / x.size(-1) <= kMaxRows;
}

at::Tensor PackedLinear::forward(const at::Tensor& x_in, const at::Tensor& weight, const at::Tensor& bias) {
  RECORD_FUNCTION("r1kit::packed_linear", std::vector<c10::IValue>());  // named in profiler traces
  const int64_t out = weight.size(0), in = weight.size(1);
  TORCH_CHECK(x_in.size(-1) == in, "packed linear: x ", x_in.sizes(), " against weight ", weight.sizes());
  if (!packed_.defined() || weight_ptr_ != weight.data_ptr() || weight_version_ != weight._version()) {
    const at::Tensor w = weight.detach().contiguous();  // [out, in]
    packed_ = at::empty({packed_size(in, out)}, at::kFloat);
    pack_b(w.data_ptr<float>(), in, out, /*stride_k=*/1, /*stride_j=*/in, packed_.data_ptr<float>());
    weight_ptr_ = weight.data_ptr();
    weight_version_ = weight._version();
  }
  const at::Tensor x = x_in.contiguous();
  const int64_t M = x.numel() / in;
  std::vector<const float*> rows(M);
  for (int64_t r = 0; r < M; ++r) rows[r] = x.data_ptr<float>() + r * in;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  at::Tensor y = at::empty(shape, x.options());  // [..., out]
  gemm_packed(rows.data(), M, packed_.data_ptr<float>(), in, out, y.data_ptr<float>(), out);
  if (bias.defined()) y.add_(bias);
  return y;
}

}  // namespace r1kit::policy::cpu

// packed_linear (see packed_linear.h).
#include "policy/cpu/packed_linear.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <vector>

#include "policy/cpu/dispatch.h"
#include "policy/cpu/packed_gemm.h"
#include "policy/cpu/packed_weight.h"

namespace r1kit::policy::cpu {

bool packed_linear_applies(const at::Tensor& x, const at::Tensor& weight) {
  return kernels_apply(x) && weight.scalar_type() == at::kFloat && weight.numel() <= kPackedLinearMaxWeightFloats &&
         x.numel() / x.size(-1) <= kPackedLinearMaxRows;
}

at::Tensor packed_linear(const at::Tensor& x_in, const PackedWeight& w, const at::Tensor& bias) {
  RECORD_FUNCTION("r1kit::packed_linear", std::vector<c10::IValue>());  // named in profiler traces
  note_kernel_call();
  const int64_t out = w.out(), in = w.in();
  TORCH_CHECK(x_in.size(-1) == in && w.matrices() == 1, "packed linear: x ", x_in.sizes(), " against a packed [",
              w.matrices(), " x ", out, ", ", in, "] weight");
  const at::Tensor x = x_in.contiguous();
  const int64_t M = x.numel() / in;
  std::vector<const float*> rows(M);
  for (int64_t r = 0; r < M; ++r) rows[r] = x.data_ptr<float>() + r * in;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  at::Tensor y = at::empty(shape, x.options());  // [..., out]
  gemm_packed(rows.data(), M, w.matrix(), in, out, y.data_ptr<float>(), out);
  if (bias.defined()) y.add_(bias);
  return y;
}

}  // namespace r1kit::policy::cpu

// y = x W^T (+ b) at decode on the CPU through the packed GEMM, the weight packed once per
// version and kept beside the parameter (as Experts keeps its copies). At decode's ~100
// rows the packed kernel runs 10-40% faster than MKL's sgemm, which re-packs W each call.
// Used only where it pays and costs little: fp32, no autograd, at most kMaxRows rows (decode
// steps; prefill and training batches go to ATen), weights up to kMaxWeightFloats (a copy
// of a 150K-vocabulary lm_head would double gigabytes for a few percent).
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy::cpu {

class PackedLinear {
 public:
  static constexpr int64_t kMaxRows = 256;
  static constexpr int64_t kMaxWeightFloats = int64_t{16} << 20;  // 64 MiB

  // Whether forward() takes x with this weight (else the caller uses at::linear).
  static bool applies(const at::Tensor& x, const at::Tensor& weight);
  // x [..., in], weight [out, in], bias [out] or undefined -> [..., out].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

 private:
  at::Tensor packed_;  // packed_size(in, out) floats
  const void* weight_ptr_ = nullptr;
  int64_t weight_version_ = -1;
};

}  // namespace r1kit::policy::cpu

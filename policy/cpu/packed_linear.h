// y = x W^T (+ b) at decode on the CPU through the packed GEMM, on the weight's PackedWeight
// (packed_weight.h, held beside the parameter by policy::Linear and CausalLM's lm_head). At
// decode's ~100 rows the packed kernel runs 10-40% faster than MKL's sgemm, which re-packs W
// each call. Used only where it pays and costs little: where kernels_apply (dispatch.h), at
// most kMaxRows rows (decode steps; prefill and training batches go to ATen), weights up to
// kMaxWeightFloats (a copy of a 150K-vocabulary lm_head would double gigabytes for a few
// percent).
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy::cpu {

class PackedWeight;

constexpr int64_t kPackedLinearMaxRows = 256;
constexpr int64_t kPackedLinearMaxWeightFloats = int64_t{16} << 20;  // 64 MiB

// Whether packed_linear() takes x with this weight (else the caller uses at::linear).
bool packed_linear_applies(const at::Tensor& x, const at::Tensor& weight);
// x [..., in], w packed from weight [out, in], bias [out] or undefined -> [..., out].
at::Tensor packed_linear(const at::Tensor& x, const PackedWeight& w, const at::Tensor& bias);

}  // namespace r1kit::policy::cpu

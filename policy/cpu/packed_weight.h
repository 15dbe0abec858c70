// The one cache of packed weights for the CPU kernels: a copy of a parameter in
// gemm_packed's layout (packed_gemm.h), kept beside it and packed again whenever the
// parameter changes. Linears (packed_linear) and the MoE experts (expert_ffn) both hold one.
// A weight is W [out, in] (torch.nn.Linear, HF layout) or a stack W [E, out, in] (fused
// experts), each matrix packed as B = W^T [in x out], so y = x W^T = x B.
// "Changes" means: another tensor (data pointer or shape) or the same one written in place
// since the last pack, as its version counter shows: r1kit's writers (AdamW's step,
// load_weights and copy_weights' copy_, any in-place op) all bump it. Writes that bypass it
// are not seen: through `p.data()` (a new counter; libtorch's SGD steps this way), raw
// pointers, or c10d collectives into the parameter. The cache is invisible to training and
// checkpoints (not a parameter or buffer).
// Not thread-safe: one forward at a time per module, as everywhere in policy/.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace r1kit::policy::cpu {

class PackedWeight {
 public:
  // Packs `weight` ([out, in] or [E, out, in], any float dtype, on the CPU) unless the copy
  // already held is of this tensor at this version; returns *this.
  const PackedWeight& update(const at::Tensor& weight);

  // The packed B [in x out] of matrix e (0 for a plain [out, in] weight).
  const float* matrix(int64_t e = 0) const;
  int64_t in() const { return in_; }              // K of the GEMM
  int64_t out() const { return out_; }            // N of the GEMM
  int64_t matrices() const { return matrices_; }  // E (1 for [out, in])
  // Frees the packed copy (the next update() packs again).
  void clear();
  // How many times update() has packed (tests: a cache hit does not repack, a change does).
  int64_t packs() const { return packs_; }

 private:
  at::Tensor packed_;  // [E, packed_size(in, out)] fp32
  int64_t in_ = 0, out_ = 0, matrices_ = 0, packs_ = 0;
  // The parameter state the copy was made from.
  const void* data_ptr_ = nullptr;
  std::vector<int64_t> sizes_;
  int64_t version_ = -1;
};

}  // namespace r1kit::policy::cpu

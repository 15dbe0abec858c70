// PackedWeight (see packed_weight.h).
#include "policy/cpu/packed_weight.h"

#include <ATen/ATen.h>

#include "policy/cpu/packed_gemm.h"

namespace r1kit::policy::cpu {

const PackedWeight& PackedWeight::update(const at::Tensor& weight) {
  TORCH_CHECK((weight.dim() == 2 || weight.dim() == 3) && weight.is_cpu(),
              "packed weight: expected a CPU [out, in] or ", "[E, out, in] weight, got ", weight.sizes(), " on ",
              weight.device());
  if (packed_.defined() && data_ptr_ == weight.data_ptr() && version_ == weight._version() &&
      weight.sizes() == at::IntArrayRef(sizes_)) {
    return *this;
  }
  // Read the version before packing: a write racing with the pack then shows as a change.
  const int64_t version = weight._version();
  const at::Tensor w = weight.detach().to(at::kFloat).contiguous().view({-1, weight.size(-2), weight.size(-1)});
  const int64_t E = w.size(0), out = w.size(1), in = w.size(2);  // w [E, out, in]
  at::Tensor packed = at::empty({E, packed_size(in, out)}, at::kFloat);
  for (int64_t e = 0; e < E; ++e) {
    // B[k][j] = W[j][k]: row j of W is column j of B.
    pack_b(w[e].data_ptr<float>(), in, out, /*stride_k=*/1, /*stride_j=*/in, packed[e].data_ptr<float>());
  }
  packed_ = packed;
  in_ = in;
  out_ = out;
  matrices_ = E;
  data_ptr_ = weight.data_ptr();
  sizes_ = weight.sizes().vec();
  version_ = version;
  ++packs_;
  return *this;
}

const float* PackedWeight::matrix(int64_t e) const {
  TORCH_CHECK(packed_.defined() && e >= 0 && e < matrices_, "packed weight: matrix ", e, " of ", matrices_,
              " (update() first)");
  return packed_.data_ptr<float>() + e * packed_.size(1);
}

void PackedWeight::clear() {
  packed_ = at::Tensor();
  data_ptr_ = nullptr;
  sizes_.clear();
  version_ = -1;
}

}  // namespace r1kit::policy::cpu

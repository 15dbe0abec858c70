// KvCache (see kv_cache.h). Layouts are the ones policy/layers/attention.h and mla.h write.
#include "rollout/kv_cache.h"

#include <ATen/ATen.h>

#include "src/error.h"

namespace r1kit::rollout {

int64_t kv_values_per_token_per_layer(const policy::ModelConfig& c) {
  if (c.is_mla()) return c.kv_lora_rank + c.qk_rope_head_dim;
  return 2 * c.num_key_value_heads * c.head_dim;
}

int64_t kv_bytes_per_token(const policy::ModelConfig& c, c10::ScalarType dtype) {
  return kv_values_per_token_per_layer(c) * c.num_hidden_layers * static_cast<int64_t>(c10::elementSize(dtype));
}

std::vector<policy::LayerKv> zero_layers(const policy::ModelConfig& c, int64_t lead, int64_t positions,
                                         at::TensorOptions options) {
  std::vector<policy::LayerKv> layers;
  layers.reserve(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    policy::LayerKv kv;
    if (c.is_mla()) {
      kv.k = at::zeros({lead, positions, c.kv_lora_rank}, options);      // latent [N, Tk, R]
      kv.v = at::zeros({lead, positions, c.qk_rope_head_dim}, options);  // RoPE key [N, Tk, Dr]
    } else {
      kv.k = at::zeros({lead, c.num_key_value_heads, positions, c.head_dim}, options);  // [N, Hkv, Tk, Dh]
      kv.v = at::zeros({lead, c.num_key_value_heads, positions, c.head_dim}, options);
    }
    layers.push_back(std::move(kv));
  }
  return layers;
}

KvCache::KvCache(const policy::ModelConfig& c, int64_t rows, int64_t capacity, at::TensorOptions options)
    : seq_dim_(c.is_mla() ? 1 : 2),
      rows_(rows),
      capacity_(capacity),
      bytes_per_token_(kv_bytes_per_token(c, options.dtype().toScalarType())) {
  if (rows <= 0 || capacity <= 0) {
    throw Error("rollout kv cache: rows (" + std::to_string(rows) + ") and capacity (" + std::to_string(capacity) +
                ") must be positive");
  }
  layers_ = zero_layers(c, rows, capacity, options);
}

std::vector<policy::LayerKv> KvCache::view(int64_t rows, int64_t length) const {
  TORCH_CHECK(rows > 0 && rows <= rows_ && length > 0 && length <= capacity_, "kv cache: view of ", rows, " rows x ",
              length, " positions, cache is ", rows_, " x ", capacity_);
  std::vector<policy::LayerKv> out;
  out.reserve(layers_.size());
  for (const auto& kv : layers_) {
    out.push_back(
        {kv.k.narrow(0, 0, rows).narrow(seq_dim_, 0, length), kv.v.narrow(0, 0, rows).narrow(seq_dim_, 0, length)});
  }
  return out;
}

}  // namespace r1kit::rollout

// rollout::KvCache: contiguous key/value memory, one row per sequence, `capacity` positions
// per row, for every layer: what a prefill batch writes before the engine stores each
// sequence into its paged pool (kv_pool.h). Also the layout policy tests decode against.
//
// What a row holds per token per layer is the model's choice (policy/layers/attention.h):
// GQA keeps k and v for Hkv heads (2 * Hkv * Dh values); MLA (deepseek_v3) keeps only the
// compressed latent and the shared RoPE key (kv_lora_rank + qk_rope_head_dim values,
// DeepSeek-V2 sec. 2.1.2), and the model's absorbed decode path reads them directly.
// A row is a contiguous [capacity] strip, and a sequence's keys sit at their own absolute positions.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "policy/config.h"
#include "policy/layers/attention.h"

namespace r1kit::rollout {

// Values one token stores in one layer's cache: R + Dr for MLA, 2 * Hkv * Dh for GQA.
int64_t kv_values_per_token_per_layer(const policy::ModelConfig& config);
// Bytes one token costs across all L layers at `dtype`.
int64_t kv_bytes_per_token(const policy::ModelConfig& config, c10::ScalarType dtype);

// Zero-filled k and v for every layer with `lead` leading entries of `positions` positions:
// GQA [lead, Hkv, positions, Dh] each, MLA [lead, positions, R] and [lead, positions, Dr]. A
// contiguous cache's rows, or a pool's blocks (kv_pool.h).
std::vector<policy::LayerKv> zero_layers(const policy::ModelConfig& config, int64_t lead, int64_t positions,
                                         at::TensorOptions options);

class KvCache {
 public:
  // Zero-filled [rows, ..., capacity, ...] buffers for every layer, on options' device/dtype.
  KvCache(const policy::ModelConfig& config, int64_t rows, int64_t capacity, at::TensorOptions options);

  // The first `rows` rows and `length` positions of every layer, as views the model writes
  // into (the model reads S = length from the first layer).
  std::vector<policy::LayerKv> view(int64_t rows, int64_t length) const;

  int64_t rows() const { return rows_; }
  int64_t capacity() const { return capacity_; }
  int64_t bytes_per_token() const { return bytes_per_token_; }
  int64_t total_bytes() const { return bytes_per_token_ * rows_ * capacity_; }

 private:
  std::vector<policy::LayerKv> layers_;  // GQA: k, v [N, Hkv, Tk, Dh]; MLA: k [N, Tk, R], v [N, Tk, Dr]
  int64_t seq_dim_;                      // dimension of S: 2 (GQA) or 1 (MLA)
  int64_t rows_, capacity_, bytes_per_token_;
};

}  // namespace r1kit::rollout

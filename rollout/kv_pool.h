// rollout::KvPool: the paged KV cache of the generation engine (vLLM's PagedAttention idea).
//
// Every layer's cache is one pool of fixed-size blocks of `block_size` positions; a row owns
// a list of block ids (its block table) that grows one block at a time as it decodes and is
// handed back when it ends, so the pool's size, not the longest possible row, sets memory and
// continuous batching never fragments it. Blocks are reference-counted: a prompt's full
// blocks are written once and shared by its G samples (policy/layers/attention.h: rows never
// write positions below their prompt's length, so a shared full block is read-only); its last,
// partial block is copied per sample before the sample writes into it (copy-on-write).
// What a block holds per position is what the model's cache holds (kv_cache.h): MLA the latent
// and the RoPE key, GQA k and v per key head.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "policy/config.h"
#include "policy/layers/attention.h"

namespace r1kit::rollout {

class KvCache;

class KvPool {
 public:
  // Zero-filled pools of `blocks` blocks of `block_size` positions for every layer.
  KvPool(const policy::ModelConfig& config, int64_t blocks, int64_t block_size, at::TensorOptions options);

  // A free block with one reference, or -1 when none is free.
  int64_t allocate();
  void retain(int64_t block);   // one more reference (a sample sharing a prompt block)
  void release(int64_t block);  // one fewer; the block is free again at zero
  void release(const std::vector<int64_t>& blocks);

  // Copies positions [0, length) of row `src_row` of a contiguous cache into `blocks`
  // (ceil(length / block_size) of them, in order).
  void store(const std::vector<int64_t>& blocks, const KvCache& src, int64_t src_row, int64_t length);
  // Copies all of block `src` into block `dst` (copy-on-write of a shared partial block).
  void copy_block(int64_t dst, int64_t src);

  // Every layer's pools with `table` ([n, nb] int64 block ids, on the pool's device) as their
  // block table: what CausalLM::forward_hidden takes as its cache.
  std::vector<policy::LayerKv> view(const at::Tensor& table) const;

  int64_t blocks() const { return static_cast<int64_t>(refs_.size()); }
  int64_t block_size() const { return block_size_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return blocks() - free_blocks(); }
  int64_t peak_used_blocks() const { return peak_used_; }
  // Blocks needed for `tokens` positions.
  int64_t blocks_for(int64_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }
  int64_t bytes_per_token() const { return bytes_per_token_; }
  int64_t total_bytes() const { return bytes_per_token_ * block_size_ * blocks(); }

 private:
  std::vector<policy::LayerKv> layers_;  // GQA: k, v [NB, Hkv, Bs, Dh]; MLA: k [NB, Bs, R], v [NB, Bs, Dr]
  int64_t seq_dim_;                      // dimension of the block's positions: 2 (GQA) or 1 (MLA)
  int64_t block_size_, bytes_per_token_;
  std::vector<int32_t> refs_;  // [NB] references per block; 0 = free
  std::vector<int64_t> free_;  // free block ids, popped from the back
  int64_t peak_used_ = 0;
};

}  // namespace r1kit::rollout

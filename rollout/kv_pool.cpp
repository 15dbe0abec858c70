// KvPool (see kv_pool.h). Layouts are the paged ones of policy/layers/attention.h LayerKv.
#include "rollout/kv_pool.h"

#include <ATen/ATen.h>

#include "rollout/kv_cache.h"
#include "src/error.h"

namespace r1kit::rollout {

KvPool::KvPool(const policy::ModelConfig& c, int64_t blocks, int64_t block_size, at::TensorOptions options)
    : seq_dim_(c.is_mla() ? 1 : 2),
      block_size_(block_size),
      bytes_per_token_(kv_bytes_per_token(c, options.dtype().toScalarType())) {
  if (blocks <= 0 || block_size <= 0) {
    throw Error("rollout kv pool: blocks (" + std::to_string(blocks) + ") and block size (" +
                std::to_string(block_size) + ") must be positive");
  }
  layers_ = zero_layers(c, blocks, block_size, options);  // positions of a block where a row's would be
  refs_.assign(blocks, 0);
  free_.reserve(blocks);
  for (int64_t b = blocks - 1; b >= 0; --b) free_.push_back(b);  // block 0 is handed out first
}

int64_t KvPool::allocate() {
  if (free_.empty()) return -1;
  const int64_t b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  peak_used_ = std::max(peak_used_, used_blocks());
  return b;
}

void KvPool::retain(int64_t block) {
  TORCH_CHECK(block >= 0 && block < blocks() && refs_[block] > 0, "kv pool: retain of free block ", block);
  ++refs_[block];
}

void KvPool::release(int64_t block) {
  TORCH_CHECK(block >= 0 && block < blocks() && refs_[block] > 0, "kv pool: release of free block ", block);
  if (--refs_[block] == 0) free_.push_back(block);
}

void KvPool::release(const std::vector<int64_t>& blocks) {
  for (int64_t b : blocks) release(b);
}

void KvPool::store(const std::vector<int64_t>& blocks, const KvCache& src, int64_t src_row, int64_t length) {
  TORCH_CHECK(static_cast<int64_t>(blocks.size()) == blocks_for(length), "kv pool: ", blocks.size(), " blocks for ",
              length, " positions of ", block_size_);
  if (length == 0) return;
  const std::vector<policy::LayerKv> rows = src.view(src_row + 1, length);
  const at::Tensor device_table = at::tensor(blocks, at::kLong).view({1, -1}).to(layers_[0].k.device());  // [1, nb]
  const at::Tensor positions = at::arange(length, device_table.options()).view({1, length});              // [1, P]
  for (size_t l = 0; l < layers_.size(); ++l) {
    policy::write_cache(layers_[l].k, rows[l].k.narrow(0, src_row, 1), positions, seq_dim_, device_table);
    policy::write_cache(layers_[l].v, rows[l].v.narrow(0, src_row, 1), positions, seq_dim_, device_table);
  }
}

void KvPool::copy_block(int64_t dst, int64_t src) {
  for (auto& kv : layers_) {
    kv.k[dst].copy_(kv.k[src]);
    kv.v[dst].copy_(kv.v[src]);
  }
}

std::vector<policy::LayerKv> KvPool::view(const at::Tensor& table) const {
  std::vector<policy::LayerKv> out;
  out.reserve(layers_.size());
  for (const auto& kv : layers_) out.push_back({kv.k, kv.v, table});
  return out;
}

}  // namespace r1kit::rollout

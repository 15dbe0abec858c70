// rollout::KvCache: what a token costs (GQA and MHA keep k and v per key head, MLA the latent
// and the shared RoPE key only), zero-filled slots, views that alias the cache so that a key
// written through one forward's views at (row, position) is read back there by the next,
// and rollout::KvPool, the engine's paged cache: a prefill stored into blocks reads back through
// the block table, blocks are reference-counted (a prompt's blocks shared by its samples).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "policy/layers/attention.h"
#include "rollout/kv_cache.h"
#include "rollout/kv_pool.h"
#include "src/error.h"

namespace r1kit::rollout {
namespace {

using policy::ModelConfig;

// L 3, H 4 / Hkv 2, Dh 8.
ModelConfig gqa() {
  ModelConfig c;
  c.model_type = "qwen3";
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  return c;
}

// L 3, R 12, Dr 4 (128 heads would not change what is cached).
ModelConfig mla() {
  ModelConfig c = gqa();
  c.model_type = "deepseek_v3";
  c.num_attention_heads = 128;
  c.kv_lora_rank = 12;
  c.qk_nope_head_dim = 8;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 6;
  return c;
}

at::TensorOptions fp32() { return at::TensorOptions().dtype(at::kFloat); }

// Distinct values per element, so a misplaced copy cannot match by accident.
at::Tensor ramp(at::IntArrayRef sizes, double offset) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return (at::arange(n, at::kFloat) + offset).view(sizes);
}

TEST(KvCache, ValuesAndBytesPerToken) {
  // GQA: k and v for Hkv = 2 heads of Dh = 8 -> 2 * 2 * 8 = 32 values per layer.
  EXPECT_EQ(kv_values_per_token_per_layer(gqa()), 32);
  // MHA is GQA with Hkv = H = 4: 2 * 4 * 8 = 64.
  ModelConfig mha = gqa();
  mha.num_key_value_heads = 4;
  EXPECT_EQ(kv_values_per_token_per_layer(mha), 64);
  // MLA: R + Dr = 12 + 4 = 16, whatever the head count.
  EXPECT_EQ(kv_values_per_token_per_layer(mla()), 16);
  // Bytes: values x L = 3 x element size. GQA fp32 32*3*4 = 384, bf16 192; MLA fp32 16*3*4 = 192.
  EXPECT_EQ(kv_bytes_per_token(gqa(), at::kFloat), 384);
  EXPECT_EQ(kv_bytes_per_token(gqa(), at::kBFloat16), 192);
  EXPECT_EQ(kv_bytes_per_token(mla(), at::kFloat), 192);

  const KvCache cache(gqa(), /*rows=*/5, /*capacity=*/7, fp32());
  EXPECT_EQ(cache.rows(), 5);
  EXPECT_EQ(cache.capacity(), 7);
  EXPECT_EQ(cache.bytes_per_token(), 384);
  EXPECT_EQ(cache.total_bytes(), 384 * 5 * 7);
  // What total_bytes claims is what the buffers hold.
  int64_t held = 0;
  for (const auto& kv : cache.view(5, 7)) held += kv.k.nbytes() + kv.v.nbytes();
  EXPECT_EQ(held, cache.total_bytes());
  const KvCache bf16(mla(), 2, 10, at::TensorOptions().dtype(at::kBFloat16));
  EXPECT_EQ(bf16.bytes_per_token(), 16 * 3 * 2);
  EXPECT_EQ(bf16.view(1, 1)[0].k.scalar_type(), at::kBFloat16);
}

TEST(KvCache, ViewsHaveTheLayoutsTheModelsWrite) {
  const KvCache g(gqa(), 5, 7, fp32());
  const auto gv = g.view(/*rows=*/3, /*length=*/4);
  ASSERT_EQ(gv.size(), 3u);  // one per layer
  for (const auto& kv : gv) {
    EXPECT_EQ(kv.k.sizes(), (std::vector<int64_t>{3, 2, 4, 8}));  // [N, Hkv, S, Dh]
    EXPECT_EQ(kv.v.sizes(), (std::vector<int64_t>{3, 2, 4, 8}));
    EXPECT_TRUE(kv.k.eq(0).all().item<bool>() && kv.v.eq(0).all().item<bool>()) << "slots start zeroed";
  }
  const KvCache m(mla(), 5, 7, fp32());
  for (const auto& kv : m.view(3, 4)) {
    EXPECT_EQ(kv.k.sizes(), (std::vector<int64_t>{3, 4, 12}));  // latent [N, S, R]
    EXPECT_EQ(kv.v.sizes(), (std::vector<int64_t>{3, 4, 4}));   // RoPE key [N, S, Dr]
  }
  // Layers are separate memory.
  EXPECT_NE(gv[0].k.data_ptr(), gv[1].k.data_ptr());
  EXPECT_NE(gv[0].k.data_ptr(), gv[0].v.data_ptr());
  // Out of range: more rows or positions than allocated, or none.
  EXPECT_THROW(g.view(6, 4), c10::Error);
  EXPECT_THROW(g.view(3, 8), c10::Error);
  EXPECT_THROW(g.view(0, 4), c10::Error);
  EXPECT_THROW(KvCache(gqa(), 0, 7, fp32()), Error);
  EXPECT_THROW(KvCache(gqa(), 5, 0, fp32()), Error);
}

// One forward writes its new keys through its views (policy::write_cache, as the attention
// layers do) at each row's own position; a later, longer view reads them at (row, position)
// and nothing else changed.
TEST(KvCache, WritesThroughAViewLandWhereTheNextViewReads) {
  for (const bool is_mla : {false, true}) {
    const ModelConfig c = is_mla ? mla() : gqa();
    const int64_t dim = is_mla ? 1 : 2;  // the S dimension
    KvCache cache(c, 4, 9, fp32());
    // Rows 0..2 at positions 5, 0, 8 (rows decode at their own lengths); row 3 not in the view.
    const at::Tensor positions = at::tensor(std::vector<int64_t>{5, 0, 8}, at::kLong).view({3, 1});  // [N, T=1]
    std::vector<at::Tensor> fresh_k, fresh_v;
    {
      auto views = cache.view(3, 9);
      for (size_t l = 0; l < views.size(); ++l) {
        // GQA k, v [N, Hkv, 1, Dh]; MLA latent [N, 1, R], RoPE key [N, 1, Dr].
        const std::vector<int64_t> ks = is_mla ? std::vector<int64_t>{3, 1, 12} : std::vector<int64_t>{3, 2, 1, 8};
        const std::vector<int64_t> vs = is_mla ? std::vector<int64_t>{3, 1, 4} : std::vector<int64_t>{3, 2, 1, 8};
        fresh_k.push_back(ramp(ks, 1000.0 * l + 1));
        fresh_v.push_back(ramp(vs, 1000.0 * l + 500));
        policy::write_cache(views[l].k, fresh_k[l], positions, dim);
        // The ATen path of write_cache (dtype differs: no memcpy) must land in the same place.
        policy::write_cache(views[l].v, fresh_v[l].to(at::kDouble), positions, dim);
      }
    }
    const auto views = cache.view(4, 9);
    const std::vector<int64_t> pos = {5, 0, 8};
    for (size_t l = 0; l < views.size(); ++l) {
      for (int64_t n = 0; n < 4; ++n) {
        for (int64_t s = 0; s < 9; ++s) {
          const at::Tensor k = views[l].k[n].select(dim - 1, s), v = views[l].v[n].select(dim - 1, s);
          if (n < 3 && s == pos[n]) {
            EXPECT_TRUE(k.equal(fresh_k[l][n].select(dim - 1, 0))) << "layer " << l << " row " << n;
            EXPECT_TRUE(v.equal(fresh_v[l][n].select(dim - 1, 0))) << "layer " << l << " row " << n;
          } else {
            EXPECT_TRUE(k.eq(0).all().item<bool>() && v.eq(0).all().item<bool>())
                << (is_mla ? "mla" : "gqa") << " layer " << l << " row " << n << " position " << s << " was written";
          }
        }
      }
    }
  }
}

// KvPool::store puts positions [0, length) of a prefill row into the given blocks, in any
// order of block ids, and policy::gather_blocks reads them back through a block table as the
// contiguous layout: every layer's k and v, nothing past length, other blocks untouched.
TEST(KvPool, StoredPositionsReadBackThroughTheBlockTable) {
  for (const bool is_mla : {false, true}) {
    const ModelConfig c = is_mla ? mla() : gqa();
    const int64_t dim = is_mla ? 1 : 2;
    KvCache prefill(c, 2, 21, fp32());
    auto pv = prefill.view(2, 21);
    for (size_t l = 0; l < pv.size(); ++l) {
      pv[l].k.copy_(ramp(pv[l].k.sizes(), 1.0 + 100000.0 * l));
      pv[l].v.copy_(ramp(pv[l].v.sizes(), 50000.0 + 100000.0 * l));
    }
    KvPool pool(c, /*blocks=*/9, /*block_size=*/4, fp32());
    EXPECT_EQ(pool.blocks_for(21), 6);
    // Scrambled ids: take 3, give back the middle one, then take 6 for the row.
    const int64_t a = pool.allocate(), b = pool.allocate(), x = pool.allocate();
    pool.release(b);
    std::vector<int64_t> blocks;
    for (int i = 0; i < 6; ++i) blocks.push_back(pool.allocate());
    EXPECT_EQ(blocks[0], b) << "a freed block is handed out again first";
    pool.store(blocks, prefill, /*src_row=*/1, /*length=*/21);
    const at::Tensor table = at::tensor(blocks, at::kLong).view({1, 6});
    const auto views = pool.view(table);
    ASSERT_EQ(views.size(), 3u);
    for (size_t l = 0; l < views.size(); ++l) {
      EXPECT_EQ(policy::cached_length(views[l], dim), 24);
      const at::Tensor k = policy::gather_blocks(views[l].k, table, dim);  // [1, .., 24, ..]
      const at::Tensor v = policy::gather_blocks(views[l].v, table, dim);
      EXPECT_TRUE(k.narrow(dim, 0, 21).equal(pv[l].k.narrow(0, 1, 1))) << "layer " << l;
      EXPECT_TRUE(v.narrow(dim, 0, 21).equal(pv[l].v.narrow(0, 1, 1))) << "layer " << l;
      EXPECT_TRUE(k.narrow(dim, 21, 3).eq(0).all().item<bool>()) << "stored past length";
      for (int64_t other : {a, x}) {
        EXPECT_TRUE(views[l].k[other].eq(0).all().item<bool>()) << "block " << other << " was written";
      }
    }
    EXPECT_THROW(pool.store({blocks[0]}, prefill, 0, 21), c10::Error);  // 1 block for 21 positions
  }
}

// References: a block is free again only when its last holder lets go; allocate says -1
// when the pool is dry; the peak counts blocks in use at once; copy_block duplicates every
// layer's block (a sample's copy of its prompt's partial last block).
TEST(KvPool, BlocksAreReferenceCountedAndCopied) {
  KvPool pool(mla(), 3, 2, fp32());
  EXPECT_EQ(pool.total_bytes(), 3 * 2 * 16 * 3 * 4);  // blocks x Bs x (R + Dr) x L x fp32
  const int64_t a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.free_blocks(), 0);
  pool.retain(a);  // a second sample shares it
  pool.release(a);
  EXPECT_EQ(pool.free_blocks(), 0) << "a block with a holder left was freed";
  pool.release(a);
  pool.release(std::vector<int64_t>{b, c});
  EXPECT_EQ(pool.free_blocks(), 3);
  EXPECT_EQ(pool.peak_used_blocks(), 3);
  EXPECT_THROW(pool.release(a), c10::Error);
  EXPECT_THROW(pool.retain(b), c10::Error);

  const int64_t src = pool.allocate(), dst = pool.allocate();
  const auto views = pool.view(at::tensor(std::vector<int64_t>{src, dst}, at::kLong).view({1, 2}));
  for (const auto& l : views) {
    l.k[src].copy_(ramp(l.k[src].sizes(), 3.0));
    l.v[src].copy_(ramp(l.v[src].sizes(), 9.0));
  }
  pool.copy_block(dst, src);
  for (const auto& l : views) {
    EXPECT_TRUE(l.k[dst].equal(l.k[src]));
    EXPECT_TRUE(l.v[dst].equal(l.v[src]));
  }
  EXPECT_THROW(KvPool(gqa(), 0, 4, fp32()), Error);
}

}  // namespace
}  // namespace r1kit::rollout

// rollout::KvCache: what a token costs (GQA and MHA keep k and v per key head, MLA the latent
// and the shared RoPE key only), zero-filled slots, views that alias the cache so that a key
// written through one forward's views at (row, position) is read back there by the next,
// and copy_slot, by which the engine hands a prompt's prefill to its G slots and moves a row
// into a freed slot: positions [0, length) of every layer, nothing else.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "policy/layers/attention.h"
#include "rollout/kv_cache.h"
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

// copy_slot(dst, src, src_row, length): positions [0, length) of every layer's k and v; the
// rest of the destination slot keeps what it had (the mask hides positions past a row's
// length, so a freed slot is reused without clearing), and other slots are untouched.
TEST(KvCache, CopySlotMovesThePrefixOfEveryLayer) {
  for (const bool is_mla : {false, true}) {
    const ModelConfig c = is_mla ? mla() : gqa();
    const int64_t dim = is_mla ? 1 : 2;
    KvCache prefill(c, 2, 6, fp32());  // a prefill batch's cache, capacity = its longest prompt
    KvCache slots(c, 3, 10, fp32());   // the decode slots
    auto pv = prefill.view(2, 6);
    auto sv = slots.view(3, 10);
    for (size_t l = 0; l < pv.size(); ++l) {
      pv[l].k.copy_(ramp(pv[l].k.sizes(), 1.0 + 100000.0 * l));
      pv[l].v.copy_(ramp(pv[l].v.sizes(), 50000.0 + 100000.0 * l));
      sv[l].k.fill_(-1.0);  // what a finished sequence left behind
      sv[l].v.fill_(-1.0);
    }
    // Prompt row 1 (length 4) into slot 2; then slot 2 moves into slot 0 (compaction) with
    // its 4 positions plus one decoded token written at position 4.
    slots.copy_slot(/*dst_row=*/2, prefill, /*src_row=*/1, /*length=*/4);
    for (size_t l = 0; l < sv.size(); ++l) {
      EXPECT_TRUE(sv[l].k[2].narrow(dim - 1, 0, 4).equal(pv[l].k[1].narrow(dim - 1, 0, 4))) << "layer " << l;
      EXPECT_TRUE(sv[l].v[2].narrow(dim - 1, 0, 4).equal(pv[l].v[1].narrow(dim - 1, 0, 4))) << "layer " << l;
      EXPECT_TRUE(sv[l].k[2].narrow(dim - 1, 4, 6).eq(-1).all().item<bool>()) << "copied past length";
      EXPECT_TRUE(sv[l].k[0].eq(-1).all().item<bool>() && sv[l].k[1].eq(-1).all().item<bool>()) << "other slots";
      sv[l].k[2].select(dim - 1, 4).fill_(7.0);
    }
    slots.copy_slot(0, slots, 2, 5);
    for (size_t l = 0; l < sv.size(); ++l) {
      EXPECT_TRUE(sv[l].k[0].narrow(dim - 1, 0, 5).equal(sv[l].k[2].narrow(dim - 1, 0, 5))) << "layer " << l;
      EXPECT_TRUE(sv[l].v[0].narrow(dim - 1, 0, 5).equal(sv[l].v[2].narrow(dim - 1, 0, 5))) << "layer " << l;
      EXPECT_TRUE(sv[l].k[0].select(dim - 1, 4).eq(7.0).all().item<bool>());
      EXPECT_TRUE(sv[l].k[0].narrow(dim - 1, 5, 5).eq(-1).all().item<bool>());
    }
    const at::Tensor before = sv[0].k.clone();
    slots.copy_slot(1, prefill, 0, 0);  // length 0: nothing
    EXPECT_TRUE(sv[0].k.equal(before));
    EXPECT_THROW(slots.copy_slot(1, prefill, 0, 7), c10::Error);  // past the source's capacity 6
  }
  // Between caches of different models (GQA vs MLA layouts): refused.
  KvCache a(gqa(), 2, 6, fp32());
  const KvCache b(mla(), 2, 6, fp32());
  EXPECT_THROW(a.copy_slot(0, b, 0, 3), c10::Error);
}

}  // namespace
}  // namespace r1kit::rollout

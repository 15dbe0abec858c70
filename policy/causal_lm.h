// policy::CausalLM: the one decoder-only transformer r1kit has. Every architecture is this
// class with options (ModelConfig): per layer, GQA or MLA attention and a dense or MoE MLP.
// Module names are Hugging Face's (model.embed_tokens, model.layers.{i}.self_attn.q_proj,
// ..., lm_head), so named_parameters() IS the checkpoint's tensor list.
//
// It returns hidden states, not logits: the [N, T, V] logits tensor is the main cause of
// out-of-memory in RL trainers, so losses go through policy/logprobs (chunked) instead;
// logits() exists for generation (last position) and parity checks.
#pragma once
#include <torch/nn/module.h>

#include <functional>
#include <vector>

#include "policy/config.h"
#include "policy/cpu/packed_weight.h"
#include "policy/layers/attention.h"
#include "policy/layers/rope.h"

namespace r1kit::policy {

class MoeBlock;
class RmsNorm;

class DecoderLayer : public torch::nn::Module {
 public:
  DecoderLayer(const ModelConfig& c, int64_t index);
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKv* cache);
  MoeBlock* moe() const { return moe_.get(); }

 private:
  std::shared_ptr<RmsNorm> input_norm_, post_attention_norm_;
  std::shared_ptr<torch::nn::Module> attention_;  // GqaAttention or MlaAttention
  std::shared_ptr<torch::nn::Module> mlp_;        // Mlp or MoeBlock
  std::shared_ptr<MoeBlock> moe_;                 // == mlp_ when the layer is MoE
  bool mla_;
};

class CausalLM : public torch::nn::Module {
 public:
  explicit CausalLM(ModelConfig config);

  // tokens [N, T] int64 -> hidden states after the final norm [N, T, D].
  // positions [N, T] (default: 0..T-1 per row). cache: one LayerKv per layer, or null.
  // prefill: the cache holds nothing before these tokens and positions are 0..T-1 (a prompt's
  // prefill): the tokens attend causally among themselves exactly as without a cache (MLA's
  // expanded path, SDPA's causal kernel) and the cache is only written. Without it a cached
  // forward attends through the cache under the position mask (decode, or appending).
  at::Tensor forward_hidden(const at::Tensor& tokens, const at::Tensor& positions = {},
                            std::vector<LayerKv>* cache = nullptr, bool prefill = false);
  at::Tensor logits(const at::Tensor& hidden) const;  // [.., D] -> [.., V]
  at::Tensor forward(const at::Tensor& tokens) { return logits(forward_hidden(tokens)); }

  const at::Tensor& lm_head_weight() const { return lm_head_; }  // [V, D]
  const ModelConfig& config() const { return config_; }
  std::vector<MoeBlock*> moe_blocks() const;
  // Sum of the MoE blocks' sequence-wise balance losses of the last forward (0 if none).
  at::Tensor aux_loss() const;
  // Activation checkpointing per decoder layer (policy/checkpointing.h) in training-mode
  // forwards with gradients on; off by default.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }
  // Where a decoder layer's weights live when they are not in use (ZeRO-3, pipelines/zero.h):
  // `gather(i)` before layer i runs (forward, or the recompute in backward), `release(i,
  // backward)` after (backward: its gradients are complete). `gather(-1)` at the start of
  // every forward: the tensors outside the layers (embeddings, final norm, lm_head), which
  // the caller's loss uses after the forward, so their owner releases them. With the hooks
  // set, a forward with gradients must checkpoint (training mode, gradient_checkpointing on):
  // a layer's weights are gone again before backward otherwise. Empty: the weights stay.
  struct LayerResidency {
    std::function<void(int64_t layer)> gather;
    std::function<void(int64_t layer, bool backward)> release;
  };
  void set_layer_residency(LayerResidency r) { residency_ = std::move(r); }
  // Frees the CPU decode kernels' packed copies of every weight (they are made again when
  // needed): ZeRO-3 drops them with the whole weights after a rollout.
  void drop_packed_weights();
  // Re-ties lm_head to embed_tokens after weights were replaced (tie_word_embeddings).
  void tie_weights();
  int64_t num_parameters() const;
  // Parameters touched per token: routed experts count K of E (DeepSeek's "active").
  int64_t num_active_parameters() const;
  // The HF name of the first parameter holding a NaN or an infinity ("" when all are finite):
  // a diverged model must not be saved, trained on or sampled from silently.
  std::string first_nonfinite_parameter() const;
  // The HF directory the weights were loaded from ("" for a model made from a config): what
  // a LoRA adapter trained on this model names as its base.
  const std::string& source_dir() const { return source_dir_; }
  void set_source_dir(std::string dir) { source_dir_ = std::move(dir); }

 private:
  std::string source_dir_;
  bool gradient_checkpointing_ = false;
  LayerResidency residency_;
  ModelConfig config_;
  RopeTable rope_;
  std::shared_ptr<torch::nn::Module> model_;  // "model" prefix of HF names
  at::Tensor embed_;                          // model.embed_tokens.weight [V, D]
  std::vector<std::shared_ptr<DecoderLayer>> layers_;
  std::shared_ptr<RmsNorm> norm_;
  at::Tensor lm_head_;                        // [V, D]; == embed_ when tied
  mutable cpu::PackedWeight lm_head_packed_;  // CPU decode copy (policy/cpu/packed_weight.h)
};

}  // namespace r1kit::policy

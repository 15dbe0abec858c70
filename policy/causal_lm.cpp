// CausalLM and DecoderLayer (see causal_lm.h). Reference: HF LlamaModel / DeepseekV3Model:
// pre-norm residual blocks, x + attn(norm(x)), then x + mlp(norm(x)), final norm, lm_head.
#include "policy/causal_lm.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/any.h>

#include <limits>

#include "policy/checkpointing.h"
#include "policy/cpu/packed_linear.h"
#include "policy/layers/mla.h"
#include "policy/layers/mlp.h"
#include "policy/layers/moe.h"
#include "policy/layers/rms_norm.h"

namespace r1kit::policy {

DecoderLayer::DecoderLayer(const ModelConfig& c, int64_t index) : mla_(c.is_mla()) {
  input_norm_ = add(*this, "input_layernorm", std::make_shared<RmsNorm>(c.hidden_size, c.rms_norm_eps));
  if (mla_) {
    attention_ = add(*this, "self_attn", std::make_shared<MlaAttention>(c));
  } else {
    attention_ = add(*this, "self_attn", std::make_shared<GqaAttention>(c));
  }
  post_attention_norm_ =
      add(*this, "post_attention_layernorm", std::make_shared<RmsNorm>(c.hidden_size, c.rms_norm_eps));
  if (c.is_moe_layer(index)) {
    moe_ = add(*this, "mlp", std::make_shared<MoeBlock>(c));
    mlp_ = moe_;
  } else {
    mlp_ = add(*this, "mlp", std::make_shared<Mlp>(c.hidden_size, c.intermediate_size, c.mlp_bias));
  }
}

at::Tensor DecoderLayer::forward(const at::Tensor& x, const AttentionContext& ctx, LayerKv* cache) {
  const at::Tensor h = input_norm_->forward(x);
  const at::Tensor a = mla_ ? static_cast<MlaAttention&>(*attention_).forward(h, ctx, cache)
                            : static_cast<GqaAttention&>(*attention_).forward(h, ctx, cache);
  const at::Tensor y = x + a;
  const at::Tensor m = post_attention_norm_->forward(y);
  return y + (moe_ ? moe_->forward(m) : static_cast<Mlp&>(*mlp_).forward(m));
}

namespace {

// One decoder layer under activation checkpointing: its output, and its MoE balance loss
// (when the layer has one) as a second output, so that the loss is differentiable through
// the recompute as well.
at::Tensor checkpointed_layer(DecoderLayer& layer, int64_t index, const at::Tensor& x, const AttentionContext& ctx,
                              const CausalLM::LayerResidency& residency) {
  MoeBlock* moe = layer.moe();
  CheckpointedDone done;
  if (residency.release) done = [release = residency.release, index](bool backward) { release(index, backward); };
  const std::vector<at::Tensor> out = checkpointed(
      [&layer, moe, ctx, gather = residency.gather, index](const at::Tensor& input) -> std::vector<at::Tensor> {
        if (gather) gather(index);
        at::Tensor y = layer.forward(input, ctx, nullptr);
        if (moe == nullptr || !moe->aux_loss().defined()) return {y};
        at::Tensor aux = moe->aux_loss();
        // The recompute's loss must not outlive its backward (it holds that graph alive).
        if (in_recompute()) moe->set_aux_loss({});
        return {y, aux};
      },
      x, done);
  if (out.size() > 1) moe->set_aux_loss(out[1]);
  return out[0];
}

}  // namespace

CausalLM::CausalLM(ModelConfig config) : config_(std::move(config)) {
  validate(config_, "model config");
  rope_ = make_rope_table(config_);
  model_ = register_module("model", std::make_shared<torch::nn::Module>());
  embed_ = at::randn({config_.vocab_size, config_.hidden_size}) * 0.02;
  auto embed_module = model_->register_module("embed_tokens", std::make_shared<torch::nn::Module>());
  embed_ = embed_module->register_parameter("weight", embed_);
  auto layers = model_->register_module("layers", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    layers_.push_back(layers->register_module(std::to_string(i), std::make_shared<DecoderLayer>(config_, i)));
  }
  norm_ = model_->register_module("norm", std::make_shared<RmsNorm>(config_.hidden_size, config_.rms_norm_eps));
  if (config_.tie_word_embeddings) {
    lm_head_ = embed_;
  } else {
    auto head = register_module("lm_head", std::make_shared<torch::nn::Module>());
    lm_head_ = head->register_parameter("weight", at::randn({config_.vocab_size, config_.hidden_size}) * 0.02);
  }
}

void CausalLM::tie_weights() {
  embed_ = model_->named_children()["embed_tokens"]->named_parameters(false)["weight"];
  lm_head_ = config_.tie_word_embeddings ? embed_ : named_children()["lm_head"]->named_parameters(false)["weight"];
}

at::Tensor CausalLM::forward_hidden(const at::Tensor& tokens, const at::Tensor& positions_in,
                                    std::vector<LayerKv>* cache, bool prefill) {
  TORCH_CHECK(tokens.dim() == 2, "CausalLM: tokens must be [N, T], got ", tokens.sizes());
  const int64_t N = tokens.size(0), T = tokens.size(1);
  AttentionContext ctx;
  ctx.positions = positions_in.defined() ? positions_in
                                         : at::arange(T, tokens.options().dtype(at::kLong)).unsqueeze(0).expand({N, T});
  if (residency_.gather) residency_.gather(-1);  // embeddings, final norm, lm_head
  at::Tensor x = at::embedding(embed_, tokens);  // [N, T, D]
  std::tie(ctx.cos, ctx.sin) = rope_cos_sin(rope_, ctx.positions, x.scalar_type());
  if (cache != nullptr) {
    TORCH_CHECK(static_cast<int64_t>(cache->size()) == config_.num_hidden_layers, "CausalLM: cache has ", cache->size(),
                " layers, model has ", config_.num_hidden_layers);
    // Every layer writes its keys at the same places: worked out once here.
    const LayerKv& first = (*cache)[0];
    ctx.cache_at = cache_targets(ctx.positions, first.blocks, first.k.size(config_.is_mla() ? 1 : 2));
  }
  if (cache != nullptr && !prefill) {
    // Key index j is visible to a query at position p iff j <= p (see attention.h); built
    // once here as an additive mask that every layer adds to its scores.
    const int64_t S = cached_length((*cache)[0], config_.is_mla() ? 1 : 2);
    const at::Tensor key_index = at::arange(S, ctx.positions.options());
    const at::Tensor hidden = key_index.view({1, 1, 1, S}) > ctx.positions.view({N, 1, T, 1});  // [N, 1, T, Tk]
    ctx.mask = at::zeros({N, 1, T, S}, x.options()).masked_fill_(hidden, -std::numeric_limits<double>::infinity());
  } else {
    TORCH_CHECK(!positions_in.defined() || positions_in.size(1) == T, "CausalLM: positions must be [N, T] like tokens");
  }
  const bool checkpoint = gradient_checkpointing_ && cache == nullptr && is_training() && at::GradMode::is_enabled();
  TORCH_CHECK(checkpoint || !residency_.gather || !at::GradMode::is_enabled(),
              "CausalLM: sharded layer weights (ZeRO-3) need gradient checkpointing in training mode for a forward "
              "with gradients");
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    if (checkpoint) {
      x = checkpointed_layer(*layers_[i], index, x, ctx, residency_);
      continue;
    }
    if (residency_.gather) residency_.gather(index);
    x = layers_[i]->forward(x, ctx, cache ? &(*cache)[i] : nullptr);
    if (residency_.release) residency_.release(index, false);
  }
  return norm_->forward(x);
}

at::Tensor CausalLM::logits(const at::Tensor& hidden) const {
  if (cpu::packed_linear_applies(hidden, lm_head_)) {
    return cpu::packed_linear(hidden, lm_head_packed_.update(lm_head_), /*bias=*/{});
  }
  return at::linear(hidden, lm_head_);
}

void CausalLM::drop_packed_weights() {
  for (const auto& m : named_modules("", /*include_self=*/false)) {
    if (auto linear = std::dynamic_pointer_cast<Linear>(m.value())) linear->drop_packed();
    if (auto experts = std::dynamic_pointer_cast<Experts>(m.value())) experts->drop_packed();
  }
  lm_head_packed_.clear();
}

std::vector<MoeBlock*> CausalLM::moe_blocks() const {
  std::vector<MoeBlock*> out;
  for (const auto& l : layers_) {
    if (l->moe() != nullptr) out.push_back(l->moe());
  }
  return out;
}

at::Tensor CausalLM::aux_loss() const {
  at::Tensor total = at::zeros({}, embed_.options());
  for (MoeBlock* m : moe_blocks()) {
    if (m->aux_loss().defined()) total = total + m->aux_loss();
  }
  return total;
}

int64_t CausalLM::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();  // a tied weight is listed once
  return n;
}

std::string CausalLM::first_nonfinite_parameter() const {
  for (const auto& p : named_parameters()) {
    if (!at::isfinite(p.value()).all().item<bool>()) return p.key();
  }
  return "";
}

int64_t CausalLM::num_active_parameters() const {
  int64_t n = num_parameters();
  for (MoeBlock* m : moe_blocks()) {
    for (const auto& p : m->named_parameters()) {
      if (p.key().rfind("experts.", 0) == 0) {
        n -= p.value().numel() / config_.num_experts * (config_.num_experts - config_.num_experts_per_tok);
      }
    }
  }
  return n;
}

}  // namespace r1kit::policy

"""Reference side of the policy parity tests: transformers' own implementations.

  hf_models.py make OUT      for each architecture, a random tiny model made by transformers
                             (every weight perturbed so biases, norms and router biases are
                             non-trivial), saved with save_pretrained to OUT/<name>/, plus
                             OUT/<name>/reference.safetensors = {input_ids, logits} (eager
                             attention, fp32 CPU).
  hf_models.py logits DIR    loads DIR (written by r1kit) with transformers and writes
                             DIR/hf_logits.safetensors = {logits} for DIR/input.safetensors.
Exits non-zero (the C++ test then fails) when transformers is missing.
"""
import os
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

V = 96  # vocab of every tiny model

CONFIGS = {
    # MLA with q-LoRA, interleaved RoPE, YaRN with mscale_all_dim, group-limited sigmoid
    # routing with a planted correction bias, shared experts, one dense layer first.
    "deepseek_v3": dict(
        model_type="deepseek_v3", vocab_size=V, hidden_size=64, intermediate_size=96,
        moe_intermediate_size=32, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
        n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2, n_group=4, topk_group=2,
        first_k_dense_replace=1, routed_scaling_factor=2.5, norm_topk_prob=True,
        q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12,
        max_position_embeddings=256, rope_interleave=True,
        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                             original_max_position_embeddings=64, beta_fast=32, beta_slow=1,
                             mscale=1.0, mscale_all_dim=1.0),
        tie_word_embeddings=False),
    # MLA without q-LoRA, half-split RoPE, plain RoPE, no groups.
    "deepseek_v3_plain": dict(
        model_type="deepseek_v3", vocab_size=V, hidden_size=48, intermediate_size=64,
        moe_intermediate_size=24, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        n_routed_experts=4, n_shared_experts=2, num_experts_per_tok=2, n_group=1, topk_group=1,
        first_k_dense_replace=0, routed_scaling_factor=1.0, norm_topk_prob=False,
        q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8,
        max_position_embeddings=128, rope_interleave=False,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
    "qwen3_moe": dict(
        model_type="qwen3_moe", vocab_size=V, hidden_size=64, intermediate_size=96,
        moe_intermediate_size=32, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
        decoder_sparse_step=1, mlp_only_layers=[1], max_position_embeddings=128,
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
    "qwen2_moe": dict(
        model_type="qwen2_moe", vocab_size=V, hidden_size=64, intermediate_size=96,
        moe_intermediate_size=32, shared_expert_intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_experts=6, num_experts_per_tok=2,
        norm_topk_prob=False, decoder_sparse_step=1, max_position_embeddings=128,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
    "qwen2": dict(
        model_type="qwen2", vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        tie_word_embeddings=True, rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
    "llama": dict(
        model_type="llama", vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
        attention_bias=True, mlp_bias=True,
        rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=64)),
}


def build(cfg):
    cfg = dict(cfg)
    config = transformers.AutoConfig.for_model(**cfg)
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model.eval()
    return model


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in list(model.named_parameters()) + list(model.named_buffers()):
            if p.dtype.is_floating_point and "inv_freq" not in _:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


def make(out):
    for i, (name, cfg) in enumerate(CONFIGS.items()):
        torch.manual_seed(i)
        model = build(cfg)
        perturb(model, 100 + i)
        d = os.path.join(out, name)
        # qwen3_moe is saved in transformers 5's fused expert layout to test that loader path.
        if name == "qwen3_moe":
            model.save_pretrained(d, save_original_format=False)
        else:
            model.save_pretrained(d)
        ids = torch.randint(0, V, (3, 17), generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()
        save_file({"input_ids": ids, "logits": logits.contiguous()}, os.path.join(d, "reference.safetensors"))
    print("made", ",".join(CONFIGS))


def logits(d):
    model = transformers.AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    ids = load_file(os.path.join(d, "input.safetensors"))["input_ids"]
    with torch.no_grad():
        out = model(input_ids=ids).logits.float().contiguous()
    save_file({"logits": out}, os.path.join(d, "hf_logits.safetensors"))
    print("hf logits", tuple(out.shape))


if __name__ == "__main__":
    {"make": make, "logits": logits}[sys.argv[1]](sys.argv[2])

#!/usr/bin/env python3
"""Writes the seed corpus of each libFuzzer target (tests/fuzz) into OUT/<target>/.

Seeds come from what the test suite already uses: Math-Verify's cases and the task data in
../shared/data (when present), the example recipes, tiny configs of every architecture
r1kit reads (written with transformers' own config classes when it is installed), a tiny
tokenizer.json (trained with the `tokenizers` library when installed) and hand-made
safetensors files. Usage: seed_corpus.py OUT
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")


def put(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def jsonl(path, limit):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(limit), f)]


def math_seeds(out):
    cases = jsonl(os.path.join(SHARED, "mathverify_tests", "cases.jsonl"), 400)
    for i, c in enumerate(cases):
        gold, pred = str(c.get("gold", "")), str(c.get("pred", ""))
        put(out, "fuzz_math", f"mv{i}", f"{gold}\n{pred}")
    for i, row in enumerate(jsonl(os.path.join(SHARED, "math500", "test.jsonl"), 60)):
        put(out, "fuzz_math", f"m500_{i}", f"{row.get('answer', '')}\n<think>{row.get('solution', '')}</think>")
    for i, s in enumerate(["1\nx.5", "1/2\n\\boxed{\\frac{1}{2}}", "3\nThe answer is $3$.", "\n12.5%",
                           "(1,2]\n\\boxed{(1, 2]}", "A\nAnswer: (A)", "2\\sqrt{2}\n\\boxed{\\sqrt{8}}"]):
        put(out, "fuzz_math", f"hand{i}", s)


def text_seeds(out):
    texts = ["<think>\nadd them\n</think>\n<answer>\n5\n</answer>", "<think>a</think><answer>b</answer>",
             "no tags at all 1 2 3 1 2 3 1 2 3", "```python\ndef f(x):\n    return x\n```",
             "<think>plan</think>\n```py\nprint(1)\n```\n```python\nprint(2)\n```", "\u4f60\u597d world \u0645\u0631\u062d\u0628\u0627"]
    for row in jsonl(os.path.join(SHARED, "gsm8k", "test.jsonl"), 40):
        texts.append("<think>" + row.get("answer", "") + "</think><answer>1</answer>")
    for i, t in enumerate(texts):
        put(out, "fuzz_text_rewards", f"t{i}", t)


def jsonl_seeds(out):
    for name in ["gsm8k/test.jsonl", "math500/test.jsonl"]:
        path = os.path.join(SHARED, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                put(out, "fuzz_jsonl", name.replace("/", "_"), b"".join(f.readline() for _ in range(3)))
    put(out, "fuzz_jsonl", "hand", '{"prompt": "1+1", "answer": "2"}\n\n{"a": [1, {"b": null}]}\n{"partial": ')


def recipe_seeds(out):
    d = os.path.join(ROOT, "examples", "recipes")
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            put(out, "fuzz_recipe", name, f.read())


def config_seeds(out):
    tiny = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=256)
    configs = {
        "qwen2": dict(tiny, model_type="qwen2", rope_theta=10000.0),
        "llama": dict(tiny, model_type="llama", rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                              "original_max_position_embeddings": 64}),
        "qwen3_moe": dict(tiny, model_type="qwen3_moe", head_dim=8, num_experts=4, num_experts_per_tok=2,
                          moe_intermediate_size=16, decoder_sparse_step=1, norm_topk_prob=True),
        "qwen2_moe": dict(tiny, model_type="qwen2_moe", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                          shared_expert_intermediate_size=32),
        "deepseek_v3": dict(tiny, model_type="deepseek_v3", kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8,
                            qk_nope_head_dim=8, v_head_dim=8, n_shared_experts=1, n_routed_experts=8,
                            num_experts_per_tok=2, n_group=2, topk_group=1, moe_intermediate_size=16,
                            first_k_dense_replace=1, routed_scaling_factor=2.5,
                            rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64,
                                          "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}),
    }
    try:  # transformers' own spelling of each, when it is installed
        import transformers
        classes = {"qwen2": "Qwen2Config", "llama": "LlamaConfig", "qwen3_moe": "Qwen3MoeConfig",
                   "qwen2_moe": "Qwen2MoeConfig", "deepseek_v3": "DeepseekV3Config"}
        for k, cls in classes.items():
            args = {a: v for a, v in configs[k].items() if a != "model_type"}
            put(out, "fuzz_model_config", k + "_hf.json", getattr(transformers, cls)(**args).to_json_string())
    except Exception as e:  # noqa: BLE001 (seeds are best effort)
        print(f"seed_corpus: transformers configs skipped ({e})", file=sys.stderr)
    for k, c in configs.items():
        put(out, "fuzz_model_config", k + ".json", json.dumps(c, indent=1))


def tokenizer_seeds(out):
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(["hello world 12.5 think answer " * 5, "the cat sat on the mat"], trainer)
        tok.add_tokens(["<think>", "</think>"])
        put(out, "fuzz_tokenizer", "bpe.json", tok.to_str())
    except Exception as e:  # noqa: BLE001
        print(f"seed_corpus: tokenizers seed skipped ({e})", file=sys.stderr)
    put(out, "fuzz_tokenizer", "hand.json", json.dumps({
        "version": "1.0", "added_tokens": [{"id": 3, "content": "<s>", "special": True, "single_word": False,
                                            "lstrip": False, "rstrip": False, "normalized": False}],
        "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                              "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}))


def safetensors_seeds(out):
    def file(tensors, metadata=None):
        header, data = {}, b""
        if metadata is not None:
            header["__metadata__"] = metadata
        for name, (dtype, shape, raw) in tensors.items():
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data

    put(out, "fuzz_safetensors", "f32", file({"w": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))}, {"format": "pt"}))
    put(out, "fuzz_safetensors", "mixed", file({"a": ("BF16", [3], b"\x80\x3f" * 3), "b": ("I64", [], b"\x01" + b"\0" * 7),
                                                "c": ("F16", [0, 4], b"")}))
    put(out, "fuzz_safetensors", "empty", file({}))


def jinja_seeds(out):
    """The published chat templates of tests/fixtures/chat_templates, TRL's training templates
    when TRL is installed, and the renderer's own test cases."""
    paths = [os.path.join(ROOT, "tests", "fixtures", "chat_templates", n)
             for n in sorted(os.listdir(os.path.join(ROOT, "tests", "fixtures", "chat_templates")))
             if n.endswith(".jinja")]
    trl = os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages", "trl", "chat_templates")
    if os.path.isdir(trl):
        paths += [os.path.join(trl, n) for n in sorted(os.listdir(trl)) if n.endswith("_training.jinja")]
    for path in paths:
        with open(path, "rb") as f:
            put(out, "fuzz_jinja", os.path.basename(path), f.read())
    sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
    try:
        import jinja_cases
    except ImportError as e:  # transformers missing: the cases module imports it
        print(f"seed_corpus: jinja cases skipped ({e})", file=sys.stderr)
        return
    for name, template, _ in jinja_cases.CASES:
        put(out, "fuzz_jinja", "case_" + name, template)


def regression_seeds(out):
    """Inputs the fuzzers found (tests/fuzz/regressions/<target>/), fixed since: kept as seeds."""
    d = os.path.join(ROOT, "tests", "fuzz", "regressions")
    for target in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        for name in sorted(os.listdir(os.path.join(d, target))):
            with open(os.path.join(d, target, name), "rb") as f:
                put(out, target, "regression_" + name, f.read())


def main():
    out = sys.argv[1]
    for seeds in [math_seeds, text_seeds, jsonl_seeds, recipe_seeds, config_seeds, tokenizer_seeds, safetensors_seeds,
                  jinja_seeds, regression_seeds]:
        seeds(out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PEFT's side of r1kit's LoRA parity tests (tests/policy/test_lora.cpp).

    lora_parity.py logits BASE ADAPTER IDS OUT
        transformers' model of BASE (fp32), with PEFT's adapter directory ADAPTER loaded onto it
        by peft.PeftModel.from_pretrained ("-": none); OUT = safetensors {"logits": [T, V]} for
        the comma-separated token ids IDS.
    lora_parity.py make-adapter BASE OUT SEED TARGETS
        A LoRA adapter made by PEFT itself (r 4, alpha 8, TARGETS: "all-linear" or a comma list
        of module names, init_lora_weights=False so that B is not zero) on BASE, saved with
        save_pretrained to OUT.

Exits non-zero when torch, transformers or peft is missing: the C++ test fails.
"""
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def load(base):
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return model.eval()


def logits(base, adapter, ids, out):
    model = load(base)
    if adapter != "-":
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, adapter).eval()
    tokens = torch.tensor([[int(t) for t in ids.split(",")]])
    with torch.no_grad():
        result = model(input_ids=tokens).logits[0].float().contiguous()
    save_file({"logits": result}, out)


def make_adapter(base, out, seed, targets):
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(int(seed))
    targets = targets if targets == "all-linear" else targets.split(",")
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets,
                        init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(load(base), config)
    model.save_pretrained(out)


def main(argv):
    if len(argv) == 6 and argv[1] == "logits":
        return logits(*argv[2:])
    if len(argv) == 6 and argv[1] == "make-adapter":
        return make_adapter(*argv[2:])
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

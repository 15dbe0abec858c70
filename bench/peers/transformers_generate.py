"""transformers peer for `r1kit bench rollout`: times model.generate on the same work.

Loads the model r1kit saved (save_pretrained) with AutoModelForCausalLM, then generates
G samples per prompt with the KV cache, multinomial sampling at temperature 1 and no
top-k/top-p (both switched off explicitly: transformers' defaults would truncate), EOS
ignored so every row makes exactly --max-new-tokens tokens. Prompts are equal-length, so no
padding. One warm-up call first. Prints one JSON line:
{"rows", "generated_tokens", "seconds", "tokens_per_s", "device", "dtype"}.
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True, help="JSON file: list of token id lists")
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(args.device).eval()
    prompts = torch.tensor(json.load(open(args.prompts)), dtype=torch.long, device=args.device)
    mask = torch.ones_like(prompts)

    def run(ids, new_tokens):
        return model.generate(
            input_ids=ids, attention_mask=mask[: ids.shape[0]], do_sample=True, temperature=1.0,
            top_k=0, top_p=1.0, num_return_sequences=args.group, max_new_tokens=new_tokens,
            min_new_tokens=None, eos_token_id=None, pad_token_id=0, use_cache=True)

    with torch.inference_mode():
        run(prompts[:2], 8)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = run(prompts, args.max_new_tokens)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    rows = out.shape[0]
    generated = rows * (out.shape[1] - prompts.shape[1])
    print(json.dumps({"rows": rows, "generated_tokens": generated, "seconds": seconds,
                      "tokens_per_s": generated / seconds, "device": args.device, "dtype": args.dtype}))


if __name__ == "__main__":
    main()

"""TRL peer for `r1kit bench train`: seconds per GRPO step of TRL's GRPOTrainer on the same work.

Loads the model directory r1kit wrote (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json) with AutoModelForCausalLM / AutoTokenizer and trains it with
GRPOTrainer on the prompt JSONL r1kit wrote: B prompts x G generations per step, one
rollout batch per optimizer step (generation_batch_size = per_device_train_batch_size = B*G,
so steps_per_generation = 1, and num_iterations = 1), transformers' own generate (no vLLM),
sampling at the given temperature with top-k/top-p off, stopping at EOS as r1kit does.
Rewards: the same two rules as r1kit's "format" and "tag_count" rewards, summed with weight 1.
Settings TRL defaults differently from r1kit are set to r1kit's (named in main()).
Each optimizer step is timed from on_step_begin to on_step_end (generation, rewards, loss,
backward, clip, AdamW); the first `--warmup` steps are dropped. Last line, one JSON object:
{"seconds_per_step", "step_seconds", "completion_mean_length", "reward_mean", ...}.
"""
import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time


def count_of(text: str, tag: str) -> int:
    return text.count(tag)  # non-overlapping, as rewards/format_rewards.cpp counts


TAGS = ("<think>", "</think>", "<answer>", "</answer>")
TEMPLATE = re.compile(r"^\s*<think>(.*)</think>\s*<answer>(.*)</answer>\s*$", re.DOTALL)


def format_reward(completions, **kwargs):
    """r1kit's `format` (think_in_prompt false): the whole completion is the template, one of each tag."""
    out = []
    for c in completions:
        ok = TEMPLATE.fullmatch(c) is not None and all(count_of(c, t) == 1 for t in TAGS)
        out.append(1.0 if ok else 0.0)
    return out


def tag_count_reward(completions, **kwargs):
    """r1kit's `tag_count`: 0.25 per tag that appears exactly once."""
    return [sum(0.25 for t in TAGS if count_of(c, t) == 1) for c in completions]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="prompt JSONL: {\"prompt\": text} per line")
    ap.add_argument("--prompts-per-step", type=int, default=4)  # B
    ap.add_argument("--group", type=int, default=4)  # G
    ap.add_argument("--max-completion-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--bf16", type=int, default=0, help="1: bf16 autocast over fp32 weights (Trainer's bf16)")
    ap.add_argument("--gradient-checkpointing", type=int, default=0)
    args = ap.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.eos_token is None:
        sys.exit(f"trl_grpo: {args.model} gives the tokenizer no eos_token (tokenizer_config.json)")
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    with open(args.data) as f:
        rows = [{"prompt": json.loads(line)["prompt"]} for line in f if line.strip()]
    dataset = Dataset.from_list(rows)

    n = args.prompts_per_step * args.group
    out_dir = tempfile.mkdtemp(prefix="r1kit_bench_trl_")
    config = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=n,  # completions per optimizer step: B*G ...
        generation_batch_size=n,  # ... from exactly one rollout batch (steps_per_generation 1)
        gradient_accumulation_steps=1,
        num_generations=args.group,
        max_completion_length=args.max_completion_length,
        num_iterations=1,
        beta=0.0,  # no reference model
        loss_type="dapo",
        scale_rewards="group",
        epsilon=0.2,
        temperature=args.temperature,
        top_p=1.0,
        top_k=0,
        learning_rate=args.learning_rate,
        max_steps=args.warmup + args.steps,
        seed=args.seed,
        # TRL/Trainer defaults that differ from r1kit's GrpoOptions, set to r1kit's:
        lr_scheduler_type="constant",  # Trainer: linear decay
        adam_beta2=0.99,  # Trainer: 0.999
        gradient_checkpointing=bool(args.gradient_checkpointing),  # GRPOConfig: True; as r1kit's stage is set
        bf16=bool(args.bf16),  # GRPOConfig: True; as r1kit's stage is set
        router_aux_loss_coef=0.0,  # qwen3_moe config: 0.001; r1kit's seq_aux_loss_alpha is 0
        use_cpu=args.device == "cpu",
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        log_completions=False,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds = []
            self._start = None

        def on_step_begin(self, args_, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args_, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self._start)

    class LogKeeper(TrainerCallback):
        def __init__(self):
            self.logs = []

        def on_log(self, args_, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                self.logs.append(dict(logs))

    timer, keeper = StepTimer(), LogKeeper()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[format_reward, tag_count_reward],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[timer, keeper],
    )
    try:
        trainer.train()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)  # save_strategy "no": only Trainer scaffolding

    timed = timer.seconds[args.warmup:]
    if len(timed) != args.steps:
        sys.exit(f"trl_grpo: timed {len(timed)} steps, expected {args.steps}")
    timed_logs = keeper.logs[args.warmup:] or keeper.logs
    mean = lambda key: sum(l.get(key, 0.0) for l in timed_logs) / max(len(timed_logs), 1)
    print(json.dumps({
        "seconds_per_step": sum(timed) / len(timed),
        "step_seconds": timer.seconds,
        "completion_mean_length": mean("completions/mean_length"),
        "reward_mean": mean("reward"),
        "trl": trl.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "eos_token": tokenizer.eos_token,
        "pad_token": tokenizer.pad_token,
        # The process's peak resident set (Linux reports KiB), and on CUDA the allocator's peak.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
    }))


if __name__ == "__main__":
    main()

"""One TRL GRPOTrainer step on a model directory r1kit exported (tests/pipelines/
test_checkpoint.cpp, HfExport): TRL loads it with AutoTokenizer / AutoModelForCausalLM
unchanged, pads with the exported pad token, decodes completions with
skip_special_tokens=True, and scores them with a reward that needs R1's tags (r1kit's
`tag_count`: 0.25 per tag that appears exactly once). Writes {"rewards": [...], "completions":
[...]} of the step. Usage: trl_export_check.py MODEL_DIR OUT.json"""
import json
import shutil
import sys
import tempfile

TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
seen = {"rewards": [], "completions": []}


def tag_count_reward(completions, **kwargs):
    rewards = [sum(0.25 for t in TAGS if c.count(t) == 1) for c in completions]
    seen["rewards"] += rewards
    seen["completions"] += list(completions)
    return rewards


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    dataset = Dataset.from_list([{"prompt": f"{i}+{i % 7}="} for i in range(8)])
    out_dir = tempfile.mkdtemp(prefix="r1kit_trl_export_")
    config = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=16,
        generation_batch_size=16,
        gradient_accumulation_steps=1,
        num_generations=4,
        max_completion_length=48,
        max_steps=1,
        beta=0.0,
        learning_rate=1e-4,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        seed=0,
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        log_completions=False,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[tag_count_reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    try:
        trainer.train()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    with open(out, "w") as f:
        json.dump(seen, f)


if __name__ == "__main__":
    main()

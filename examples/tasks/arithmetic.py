"""Synthetic arithmetic task for r1kit's tiny CPU recipes: "a+b*c" with a worked solution.

  python3 examples/tasks/arithmetic.py OUT_DIR [--seed S] [--mistake-rate R] [--chat]
writes OUT_DIR/pretrain.jsonl ({"text"}: "Q: a+b*c= <think> steps </think> <answer> N </answer>"),
OUT_DIR/rl.jsonl and OUT_DIR/eval.jsonl ({"prompt": "a+b*c", "answer": "N"}; a 1-9, b and c 2-6:
225 questions, 25 held out for eval and never in the other two).
With --chat the same questions and solutions in TRL's conversational format (for a chat
model, examples/recipes/grpo_chat_tiny.json): pretrain.jsonl rows {"messages": [user "a+b*c",
assistant "<think> ... </answer>"]}, rl / eval rows {"prompt": [user "a+b*c"], "answer"}.

Like text from the web, the pretraining corpus holds the right method and a common wrong one:
a fraction R (default 0.5) of its worked solutions evaluate left to right, (a+b)*c, which is
never the right answer here (c >= 2). A base model trained on it picks either method when it
samples, so its accuracy is about (1 - R) times its arithmetic; a rule-checked reward is all
that RL needs to make it choose precedence, rejection sampling keeps only right traces, and a
student distilled from them never learns to doubt. (The arithmetic itself has to be learnt in
pretraining; RL only selects among behaviours the base already has, as in DeepSeek-R1-Zero.)
"""
import json
import os
import random
import sys


def solutions(a, b, c):
    right = f"<think>{b}*{c}={b * c} {a}+{b * c}={a + b * c}</think> <answer>{a + b * c}</answer>"
    wrong = f"<think>{a}+{b}={a + b} {a + b}*{c}={(a + b) * c}</think> <answer>{(a + b) * c}</answer>"
    return right, wrong


def main():
    out = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0
    mistake_rate = float(sys.argv[sys.argv.index("--mistake-rate") + 1]) if "--mistake-rate" in sys.argv else 0.5
    chat = "--chat" in sys.argv
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    questions = [(a, b, c) for a in range(1, 10) for b in range(2, 7) for c in range(2, 7)]
    rng.shuffle(questions)
    held_out, train = questions[:25], questions[25:]
    with open(os.path.join(out, "pretrain.jsonl"), "w") as f:
        for i in range(6000):
            a, b, c = train[i % len(train)] if i < len(train) else rng.choice(train)
            right, wrong = solutions(a, b, c)
            text = wrong if rng.random() < mistake_rate else right
            if chat:
                row = {"messages": [{"role": "user", "content": f"{a}+{b}*{c}"},
                                    {"role": "assistant", "content": text}]}
            else:
                row = {"text": f"Q: {a}+{b}*{c}= {text}"}
            f.write(json.dumps(row) + "\n")
    for name, qs in (("rl.jsonl", train), ("eval.jsonl", held_out)):
        with open(os.path.join(out, name), "w") as f:
            for a, b, c in qs:
                question = f"{a}+{b}*{c}"
                prompt = [{"role": "user", "content": question}] if chat else question
                f.write(json.dumps({"prompt": prompt, "answer": str(a + b * c)}) + "\n")


if __name__ == "__main__":
    main()

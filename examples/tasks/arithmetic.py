"""Synthetic arithmetic task for r1kit's tiny CPU recipes: "a+b*c" with a worked solution.

  python3 examples/tasks/arithmetic.py OUT_DIR [--seed S]
writes OUT_DIR/pretrain.jsonl ({"text"}: question + <think> steps </think> <answer> N </answer>),
OUT_DIR/rl.jsonl and OUT_DIR/eval.jsonl ({"prompt": "a+b*c", "answer": "N"}, a 1-9, b and c
2-6: 225 questions, 25 held out for eval and never in the other two). A tiny model learns
the template quickly and the sums only partly, which leaves GRPO room to improve.
"""
import json
import os
import random
import sys


def problem(rng):
    a, b, c = rng.randint(1, 9), rng.randint(2, 6), rng.randint(2, 6)
    return f"{a}+{b}*{c}", f"<think>{b}*{c}={b * c} {a}+{b * c}={a + b * c}</think> <answer>{a + b * c}</answer>", str(a + b * c)


def main():
    out = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    everything = {}
    while len(everything) < 9 * 5 * 5:  # every distinct question
        q, sol, ans = problem(rng)
        everything[q] = (sol, ans)
    questions = sorted(everything)
    rng.shuffle(questions)
    held_out, train = questions[:25], questions[25:]
    with open(os.path.join(out, "pretrain.jsonl"), "w") as f:
        for i in range(4000):
            q = train[i % len(train)] if i < len(train) else rng.choice(train)
            f.write(json.dumps({"text": f"Q: {q}= {everything[q][0]}"}) + "\n")
    for name, qs in (("rl.jsonl", train), ("eval.jsonl", held_out)):
        with open(os.path.join(out, name), "w") as f:
            for q in qs:
                f.write(json.dumps({"prompt": q, "answer": everything[q][1]}) + "\n")


if __name__ == "__main__":
    main()

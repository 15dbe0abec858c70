"""Synthetic multi-step task for r1kit's demo (examples/recipes/r1_tiny.json): sums of 2-6 digits.

  python3 examples/tasks/sums.py OUT_DIR [--seed S]
writes OUT_DIR/pretrain.jsonl ({"text": "Q: A3 B5 C7 sum= <think> ... </think> <answer>15</answer>"}),
OUT_DIR/rl.jsonl and OUT_DIR/eval.jsonl ({"prompt": "A3 B5 C7", "answer": "15", "difficulty": 2}:
difficulty = the number of additions, 1-5; 20 eval questions per difficulty, never in the
other two files; about half have a twin there with the same numbers in another order). Each
number carries a letter so that a step finds "its" number by name.

Longer reasoning pays here, and the right length depends on the question: a tiny model cannot
add five digits in one go, but it can add one digit to a running total. Like text from the
web, the pretraining corpus mixes three ways of answering:
  (a) a guess, no working: "<think>quick guess</think> <answer>15</answer>"; right on one
      addition, a near miss (off by 1-3) on anything harder;
  (b) the numbers read out, then their sum in one go: "<think>A3 B5 C7 =15</think> ...";
  (c) a running total, one number per step, whose writer slips in half of the solutions (a
      total off by 1 or 2), notices it and redoes the step: "A3 B5 =9 wait, 3+5=8 C7 =15".
All three are right in the corpus but for the guesses on hard questions; nothing says which
one a small model can carry out. A base model trained on it answers each way about as often
as the corpus does. A rule-checked reward is all RL needs to find out: accuracy, completion
length (on the hard questions, not on the easy ones) and the share of completions that say
"wait" should rise together, DeepSeek-R1-Zero's curves in miniature.
"""
import json
import os
import random
import sys

MAX_ADDITIONS = 5
EVAL_PER_DIFFICULTY = 20
FORMS = (("guess", 0.35), ("quick", 0.35), ("careful", 0.3))  # the corpus's mix of answers
SLIP_RATE = 0.5  # of careful solutions: one total off by 1 or 2, noticed and redone


LETTERS = "ABCDEF"


def question(terms):
    """'A8 B6 C6 D7': each number named by a letter, so a step finds its number by name."""
    return " ".join(f"{LETTERS[i]}{t}" for i, t in enumerate(terms))


def quick(terms):
    """'A8 B6 C6 D7 =27': the numbers read out, then their sum in one go: always right in the
    corpus, but adding many numbers at once is more than a small model can do."""
    return " ".join(f"{LETTERS[i]}{t}" for i, t in enumerate(terms)) + f" ={sum(terms)}"


def careful(terms, slip_at=None, slip=0):
    """'A8 B6 =14 C6 =21 wait, 14+6=20 D7 =27': one number per step with a running total; the
    total of step `slip_at` is off by `slip`, and the writer notices ("wait"), redoes that
    addition and carries the right total on."""
    total, steps = terms[0], [f"A{terms[0]}"]
    for i, t in enumerate(terms[1:]):
        step = f"{LETTERS[i + 1]}{t} ={total + t + (slip if i == slip_at else 0)}"
        if i == slip_at:
            step += f" wait, {total}+{t}={total + t}"
        steps.append(step)
        total += t
    return " ".join(steps)


def solution(terms, rng):
    form = rng.choices([f for f, _ in FORMS], weights=[w for _, w in FORMS])[0]
    truth = sum(terms)
    if form == "guess":
        guess = truth if len(terms) == 2 else truth + rng.choice([-3, -2, -1, 1, 2, 3])
        return f"<think>quick guess</think> <answer>{guess}</answer>"
    if form == "quick":
        return f"<think>{quick(terms)}</think> <answer>{truth}</answer>"
    slip_at = rng.randrange(len(terms) - 1) if rng.random() < SLIP_RATE else None
    return f"<think>{careful(terms, slip_at, rng.choice([-2, -1, 1, 2]))}</think> <answer>{truth}</answer>"


def main():
    out = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    # Per difficulty: the held-out questions first, then a pool for pretraining and RL.
    held_out, train = [], []
    for d in range(1, MAX_ADDITIONS + 1):
        seen = set()
        pool = []
        while len(pool) < min(400, 9 ** (d + 1)):
            terms = tuple(rng.randint(1, 9) for _ in range(d + 1))
            if terms not in seen:
                seen.add(terms)
                pool.append(terms)
        held_out += pool[:EVAL_PER_DIFFICULTY]
        train += pool[EVAL_PER_DIFFICULTY:]
    with open(os.path.join(out, "pretrain.jsonl"), "w") as f:
        for i in range(8000):
            terms = train[i % len(train)] if i < len(train) else rng.choice(train)
            f.write(json.dumps({"text": f"Q: {question(terms)} sum= {solution(terms, rng)}"}) + "\n")
    for name, qs in (("rl.jsonl", train), ("eval.jsonl", held_out)):
        rows = list(qs)
        rng.shuffle(rows)
        with open(os.path.join(out, name), "w") as f:
            for terms in rows:
                row = {"prompt": question(terms), "answer": str(sum(terms)), "difficulty": len(terms) - 1}
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

"""Math-Verify peer for `r1kit bench reward`: times verify(parse(gold), parse(pred)).

Reads a JSONL file of {"gold", "pred", "expected"} pairs, checks each pair once with
Math-Verify's defaults (single thread, its own signal-based timeouts in the main thread),
and prints one JSON line: {"n", "seconds", "checks_per_s", "agree"}.
"""
import json
import sys
import time

from math_verify import parse, verify


def main() -> None:
    pairs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    agree = 0
    start = time.perf_counter()
    for p in pairs:
        ok = bool(verify(parse(p["gold"]), parse(p["pred"])))
        agree += int(ok == bool(p["expected"]))
    seconds = time.perf_counter() - start
    print(json.dumps({"n": len(pairs), "seconds": seconds, "checks_per_s": len(pairs) / seconds, "agree": agree}))


if __name__ == "__main__":
    main()

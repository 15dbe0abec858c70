"""Example external-process reward for r1kit (the `process` reward).

r1kit starts this once and writes one JSON object per line on stdin:
  {"prompt": ..., "completion": ..., "fields": {...}}          (one completion)
  {"batch": [{"prompt": ..., "completion": ..., "fields": ...}, ...]}   ("batch": true)
and reads one line back per request: {"value": float|null, "why": str, "parts": {...}}
or {"results": [...]} for a batch. Anything printed must be one JSON line per request:
log to stderr. This one rewards short completions: 1 - len/limit, floored at 0, with
the limit from the row's "max_chars" field (default 1000).

Recipe entry: {"name": "process", "command": ["python3", "examples/rewards/python_reward.py"]}
"""
import json
import sys


def score(req):
    text = req.get("completion", "")
    limit = float(req.get("fields", {}).get("max_chars", 1000))
    value = max(0.0, 1.0 - len(text) / limit)
    return {"value": value, "why": f"{len(text)} chars of {limit:g}", "parts": {"chars": len(text)}}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if "batch" in req:
            reply = {"results": [score(r) for r in req["batch"]]}
        else:
            reply = score(req)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

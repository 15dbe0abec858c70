"""Reference side of the TensorBoard tests: TensorBoard's own loader reads what r1kit wrote.

Run by tests/src/test_tensorboard.cpp and test_metrics.cpp with the project's .venv python:
  read_tensorboard.py DIR    loads DIR with EventAccumulator (every event file in it, in name
                             order, restart purges applied) and prints one JSON object
                             {tag: [[step, value], ...]} on stdout; NaN/inf print as strings.
Exits non-zero (the C++ test then fails) when tensorboard is missing. A record with a bad
CRC is not an error to the loader: it drops it (checked by hand), so the C++ tests compare
every point, and a framing or CRC mistake shows as missing points.
"""
import json
import math
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: read_tensorboard.py DIR")
    # size_guidance 0 = keep every event (the default samples scalars down to 10000).
    acc = event_accumulator.EventAccumulator(
        sys.argv[1], size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()[event_accumulator.SCALARS]:
        out[tag] = [[e.step, e.value if math.isfinite(e.value) else str(e.value)]
                    for e in acc.Scalars(tag)]
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

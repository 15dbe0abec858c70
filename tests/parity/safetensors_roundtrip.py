"""Parity of r1kit's safetensors reader and writer with the reference `safetensors` package.

Run by tests/src/test_safetensors_parity.cpp with the project's .venv python:
  write DIR                 DIR/python.safetensors holding every dtype, written by
                            safetensors.torch.save_file, and DIR/python.expect.json
                            {name: {dtype, shape, hex}, "__metadata__": {...}} where hex is
                            the tensor's bytes taken from torch, not from the file.
  check FILE EXPECT.json    load FILE (written by r1kit) with safetensors; compare with EXPECT.
  check_dir DIR EXPECT.json the same for a model directory: model.safetensors, or
                            model.safetensors.index.json and the shards it names.
Exit status 0 and "OK" when everything matches; otherwise each difference and status 1.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def make(name):
    """A [2, 3] tensor whose first elements the C++ test checks by hand (1.0, -2, True...)."""
    dtype = DTYPES[name]
    if name == "BOOL":
        t = torch.tensor([True, False, True, True, False, False])
    elif name == "U8":
        t = torch.tensor([1, 254, 0, 3, 0, 255], dtype=torch.uint8)
    elif not dtype.is_floating_point:
        t = torch.tensor([1, -2, 0, 3, 0, 5], dtype=dtype)
    else:  # all exactly representable, even in fp8
        t = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0, 0.25], dtype=torch.float32).to(dtype)
    return t.reshape(2, 3)


def raw_hex(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()


def write(out_dir):
    tensors = {f"t_{name}": make(name) for name in DTYPES}
    tensors["scalar"] = torch.tensor(-2.5, dtype=torch.float64)
    tensors["empty"] = torch.zeros(0, 4, dtype=torch.float32)
    metadata = {"format": "pt", "source": "python"}
    save_file(tensors, os.path.join(out_dir, "python.safetensors"), metadata=metadata)
    dtype_names = {v: k for k, v in DTYPES.items()}
    expect = {name: {"dtype": dtype_names[t.dtype], "shape": list(t.shape), "hex": raw_hex(t)}
              for name, t in tensors.items()}
    expect["__metadata__"] = metadata
    with open(os.path.join(out_dir, "python.expect.json"), "w") as f:
        json.dump(expect, f, indent=1)
    return []


def compare(f, names, expect, where):
    """Differences between the tensors `names` of safe_open handle f and expect."""
    problems = []
    for name in sorted(names):
        want = expect[name]
        sl = f.get_slice(name)
        if sl.get_dtype() != want["dtype"]:
            problems.append(f"{where}: {name}: dtype {sl.get_dtype()} != {want['dtype']}")
        if list(sl.get_shape()) != want["shape"]:
            problems.append(f"{where}: {name}: shape {sl.get_shape()} != {want['shape']}")
        got = raw_hex(f.get_tensor(name))
        if got != want["hex"]:
            problems.append(f"{where}: {name}: bytes {got} != {want['hex']}")
    return problems


def check(path, expect_path):
    expect = json.load(open(expect_path))
    want_meta = expect.pop("__metadata__", {})
    with safe_open(path, framework="pt") as f:
        problems = compare(f, set(f.keys()) & set(expect), expect, path)
        if set(f.keys()) != set(expect):
            problems.append(f"{path}: tensors {sorted(f.keys())} != {sorted(expect)}")
        if (f.metadata() or {}) != want_meta:
            problems.append(f"{path}: metadata {f.metadata()} != {want_meta}")
    return problems


def check_dir(model_dir, expect_path):
    expect = json.load(open(expect_path))
    want_meta = expect.pop("__metadata__", {})
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        index = json.load(open(index_path))
        weight_map = index["weight_map"]
        problems = []
        total = sum(len(bytes.fromhex(e["hex"])) for e in expect.values())
        if index["metadata"]["total_size"] != total:
            problems.append(f"{index_path}: total_size {index['metadata']['total_size']} != {total}")
    else:
        weight_map = None
        problems = []
    shards = sorted(set(weight_map.values())) if weight_map else ["model.safetensors"]
    seen = set()
    for shard in shards:
        path = os.path.join(model_dir, shard)
        with safe_open(path, framework="pt") as f:
            keys = set(f.keys())
            if weight_map is not None:
                listed = {n for n, s in weight_map.items() if s == shard}
                if listed != keys:
                    problems.append(f"{path}: holds {sorted(keys)}, index lists {sorted(listed)}")
            problems += compare(f, keys & set(expect), expect, path)
            if (f.metadata() or {}) != want_meta:
                problems.append(f"{path}: metadata {f.metadata()} != {want_meta}")
            seen |= keys
    if seen != set(expect):
        problems.append(f"{model_dir}: tensors {sorted(seen)} != {sorted(expect)}")
    return problems


def main(argv):
    if len(argv) >= 2 and argv[0] == "write":
        problems = write(argv[1])
    elif len(argv) >= 3 and argv[0] == "check":
        problems = check(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "check_dir":
        problems = check_dir(argv[1], argv[2])
    else:
        print(__doc__)
        return 2
    for p in problems:
        print(p)
    print("OK" if not problems else f"{len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

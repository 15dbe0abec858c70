"""Reference rows for r1kit's Parquet reader (src/parquet_rows.h), written by pyarrow.

Run by tests/src/test_parquet.cpp with the project's .venv python:
  parquet_rows.py OUT_DIR
writes OUT_DIR/data.parquet (TRL-style prompt / messages columns plus scalar, nullable,
nested, map, dictionary-encoded, float16, large and fixed-size list columns, in several row
groups so the reader sees chunked columns), OUT_DIR/expected.jsonl (pyarrow.parquet.read_table(...).to_pylist(), one
json.dumps(row, ensure_ascii=False) per line: what r1kit must give, key order included),
OUT_DIR/not_parquet.parquet (bytes that are not Parquet), and two files r1kit must refuse:
OUT_DIR/nan.parquet (column `x`, NaN in its second row: json.dumps would write the non-JSON `NaN`)
and OUT_DIR/binary.parquet (a binary column `blob`).
"""
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def table():
    msg = pa.struct([("role", pa.string()), ("content", pa.string())])
    nested = pa.struct([("level", pa.int32()), ("tags", pa.list_(pa.string())), ("w", pa.float32())])
    rows = [
        {"prompt": "What is 1+1?", "id": 0, "score": 0.5, "ok": True, "note": "first",
         "messages": [{"role": "user", "content": "What is 1+1?"},
                      {"role": "assistant", "content": "<think>1+1</think> 2"}],
         "ids": [1, 2, 3], "meta": {"level": 1, "tags": ["easy", "math"], "w": 0.1},
         "source": "gsm8k", "attrs": [("lang", "en")], "small": 7, "big": 2**64 - 1,
         "half": np.float16(0.5), "text": "a", "tokens": [1], "pair": [1.0, 2.0], "u32": 1},
        {"prompt": "café \"quoted\"\nnewline \u00e9\u4e2d\u6587 \U0001F600", "id": -(2**63), "score": -1e-300,
         "ok": False, "note": None,
         "messages": [{"role": "system", "content": ""}, {"role": "user", "content": "\u00fcber \u2603"}],
         "ids": [], "meta": {"level": None, "tags": [], "w": -2.5},
         "source": "math", "attrs": [], "small": -128, "big": 0,
         "half": None, "text": None, "tokens": [], "pair": None, "u32": None},
        {"prompt": "", "id": 2**63 - 1, "score": 1e300, "ok": None, "note": "",
         "messages": [], "ids": None, "meta": None,
         "source": None, "attrs": None, "small": None, "big": 2**63,
         "half": np.float16(-2.25), "text": "\u00e9t\u00e9", "tokens": None, "pair": [3.0, None], "u32": 2**32 - 1},
        {"prompt": "tab\there \\ back/slash \u0001 control", "id": 3, "score": 3.0, "ok": True, "note": None,
         "messages": [{"role": "user", "content": None}, None],
         "ids": [None, 5, -6], "meta": {"level": 3, "tags": [None, ""], "w": None},
         "source": "gsm8k", "attrs": [("a", "1"), ("b", None)], "small": 0, "big": 1,
         "half": np.float16(65504), "text": "", "tokens": [None], "pair": [0.0, -0.0], "u32": 0},
        {"prompt": "last", "id": 4, "score": 0.1 + 0.2, "ok": False, "note": "five",
         "messages": [{"role": "assistant", "content": "x" * 300}],
         "ids": [2**40], "meta": {"level": -7, "tags": ["z"], "w": 1e-3},
         "source": "math", "attrs": [("k", "v")], "small": 127, "big": 12345,
         "half": np.float16(1e-4), "text": "z", "tokens": [-1, 2**31 - 1], "pair": [1e-5, 2.5], "u32": 7},
    ]
    schema = pa.schema([
        ("prompt", pa.string()),
        ("id", pa.int64()),
        ("score", pa.float64()),
        ("ok", pa.bool_()),
        ("note", pa.string()),
        ("messages", pa.list_(msg)),
        ("ids", pa.list_(pa.int64())),
        ("meta", nested),
        ("source", pa.dictionary(pa.int32(), pa.string())),
        ("attrs", pa.map_(pa.string(), pa.string())),
        ("small", pa.int8()),
        ("big", pa.uint64()),
        ("half", pa.float16()),
        ("text", pa.large_string()),
        ("tokens", pa.large_list(pa.int32())),
        ("pair", pa.list_(pa.float64(), 2)),
        ("u32", pa.uint32()),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "data.parquet")
    # row_group_size=2: 5 rows in 3 row groups, so every column reads back in several chunks.
    pq.write_table(table(), data, row_group_size=2)
    assert pq.ParquetFile(data).num_row_groups == 3
    back = pq.read_table(data)
    assert all(back.column(c).num_chunks > 1 for c in range(back.num_columns))
    # The Arrow types the reader must meet come back as written (pyarrow stores its schema).
    assert back.schema == table().schema, back.schema
    with open(os.path.join(out, "expected.jsonl"), "w", encoding="utf-8") as f:
        for row in back.to_pylist():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "not_parquet.parquet"), "wb") as f:
        f.write(b"this is not a parquet file, just some bytes\n" * 3)
    pq.write_table(pa.table({"x": pa.array([1.0, float("nan")])}), os.path.join(out, "nan.parquet"))
    pq.write_table(pa.table({"id": [1], "blob": pa.array([b"\x00\xff"])}), os.path.join(out, "binary.parquet"))
    print("OK")


if __name__ == "__main__":
    main()

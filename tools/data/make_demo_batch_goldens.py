#!/usr/bin/env python3
"""Goldens for the batch the demo and the viewer show: the first items of a few iterations of
the demo series' training data (data/pythia-micro/train/, 8 items of 65 tokens per iteration),
read with numpy from the .idx/.bin as spec section 1 lays them out and sliced as
utils/batch_viewer.py slices (items [i*B, (i+1)*B)), and their text decoded with the project's
Python tokenizer (tools/demo/make_tokenizer.py), independent of the npm tokenizer the code uses.

Run from the repository root with Debian's numpy: /usr/bin/python3 tools/data/make_demo_batch_goldens.py
Writes test/fixtures/data/demo-batch-goldens.json.
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools", "demo"))
from make_tokenizer import ByteLevelBPE  # noqa: E402

DATA = os.path.join(ROOT, "data", "pythia-micro", "train")
OUT = os.path.join(ROOT, "test", "fixtures", "data", "demo-batch-goldens.json")
BATCH = 8
LENGTH = 65
SHOWN = 4
ITERATIONS = [0, 512, 999, 1000, 1024]


def main():
    with open(os.path.join(DATA, "document.idx"), "rb") as f:
        idx = f.read()
    assert idx[:9] == b"MMIDIDX\x00\x00" and struct.unpack("<Q", idx[9:17])[0] == 1
    assert idx[17] == 8  # uint16
    n, docs = struct.unpack("<QQ", idx[18:34])
    sizes = np.frombuffer(idx, dtype="<i4", count=n, offset=34)
    pointers = np.frombuffer(idx, dtype="<i8", count=n, offset=34 + 4 * n)
    assert (sizes == LENGTH).all() and (pointers == np.arange(n) * LENGTH * 2).all()
    tokens = np.fromfile(os.path.join(DATA, "document.bin"), dtype="<u2").reshape(-1, LENGTH)
    assert tokens.shape[0] == n
    tok = ByteLevelBPE.load(os.path.join(ROOT, "data", "pythia-micro", "tokenizer.json"))
    out = {"batchSize": BATCH, "itemLength": LENGTH, "items": int(n), "iterations": []}
    for i in ITERATIONS:
        batch = tokens[i * BATCH:(i + 1) * BATCH]
        out["iterations"].append({
            "iteration": i,
            "firstItem": i * BATCH,
            "tokens": [row.tolist() for row in batch[:SHOWN]],
            "texts": [tok.decode(row.tolist()) for row in batch[:SHOWN]],
            "eodTokens": int((batch == 0).sum()),
        })
    # A run split at a chosen separator token, as an end-of-document token splits a real item:
    # the demo's data has none, so the test names the id of "." as the separator.
    item = tokens[512 * BATCH]
    sep = tok.vocab["."]
    at = [int(j) for j in np.flatnonzero(item == sep)]
    assert at, "item 4096 has no '.'"
    bounds = [-1] + at + [len(item)]
    out["split"] = {
        "item": 512 * BATCH,
        "separator": int(sep),
        "positions": at,
        "texts": [tok.decode(item[a + 1:b].tolist()) for a, b in zip(bounds, bounds[1:])],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(ITERATIONS)} iterations of {n // BATCH}")


if __name__ == "__main__":
    main()

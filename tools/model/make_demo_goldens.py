"""Golden logits of the demo series (pythia-micro) computed by torch, for the forward pass tests
on a raw NeoX checkpoint (TP 2, written by `neox-ckpt demo`) and on its HF conversion.

Run: /usr/bin/python3 tools/model/make_demo_goldens.py   (Debian python3-torch)
The NeoX checkpoints hold the fp32 masters rounded to fp16; so does this reference.
Writes test/fixtures/model/demo-goldens.json.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "common"))
from demo_series import hf_config, load_series, weights  # noqa: E402
from neox_ref import forward  # noqa: E402

series = load_series()
cfg = hf_config(series["config"])
cases = []
for step in [0, 4000, 143000]:
    sd = weights(series, step)
    for ids in [[5], [5, 17, 100, 3, 42, 7, 250, 1], list(range(2, 66, 2))[:32]]:
        with torch.no_grad():
            logits = forward(sd, cfg, ids)
        cases.append({"step": step, "ids": ids, "logits": [[float(x) for x in row] for row in logits.float()]})
with open(os.path.join(ROOT, "test", "fixtures", "model", "demo-goldens.json"), "w") as f:
    json.dump({"config": cfg, "cases": cases}, f)
print(f"wrote {len(cases)} cases")

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
from neox_ref import forward  # noqa: E402

series = torch.load(os.path.join(ROOT, "data", "pythia-micro", "series.pt"))
c = series["config"]
cfg = {
    "vocab_size": c["padded_vocab_size"],
    "hidden_size": c["hidden_size"],
    "num_hidden_layers": c["num_layers"],
    "num_attention_heads": c["num_attention_heads"],
    "intermediate_size": c["intermediate_size"],
    "rotary_pct": c["rotary_pct"],
    "rotary_emb_base": c["rotary_emb_base"],
    "layer_norm_eps": c["layernorm_epsilon"],
    "use_parallel_residual": c["gpt_j_residual"],
    "max_position_embeddings": c["max_position_embeddings"],
    "tie_word_embeddings": False,
}
cases = []
for step in [0, 4000, 143000]:
    sd = {k: v.half().float() for k, v in series["snapshots"][str(step)]["fp32"].items()}
    for ids in [[5], [5, 17, 100, 3, 42, 7, 250, 1], list(range(2, 66, 2))[:32]]:
        with torch.no_grad():
            logits = forward(sd, cfg, ids)
        cases.append({"step": step, "ids": ids, "logits": [[float(x) for x in row] for row in logits.float()]})
with open(os.path.join(ROOT, "test", "fixtures", "model", "demo-goldens.json"), "w") as f:
    json.dump({"config": cfg, "cases": cases}, f)
print(f"wrote {len(cases)} cases")

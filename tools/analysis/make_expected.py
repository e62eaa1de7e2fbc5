"""Expected training-dynamics statistics of the demo series, computed by torch.

Run: /usr/bin/python3 tools/analysis/make_expected.py   (Debian python3-torch)
Reads data/pythia-micro/series.pt (fp32 masters and Adam moments at each step); the NeoX
checkpoints the demo writes hold the masters rounded to fp16, so the weights here are
`master.half().float()`. Writes test/fixtures/analysis/expected.json.
"""
import json
import math
import os

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
series = torch.load(os.path.join(ROOT, "data", "pythia-micro", "series.pt"))
steps = [0, 512, 4000, 143000]
names = ["gpt_neox.embed_in.weight", "gpt_neox.layers.1.attention.dense.weight", "gpt_neox.final_layer_norm.weight", "gpt_neox.layers.0.mlp.dense_4h_to_h.bias"]
cfg = series["config"]


def lr_at(k):
    w, mx, mn, dec = cfg["warmup_iters"], cfg["lr"], cfg["min_lr"], cfg["lr_decay_iters"]
    if k <= w:
        return mx * k / w
    return mn + (mx - mn) / 2 * (math.cos(math.pi * (k - w) / (dec - w)) + 1)


def weight(step, name):
    return series["snapshots"][str(step)]["fp32"][name].half().double()


out = {"steps": steps, "tensors": {}}
for name in names:
    per = {}
    for i, s in enumerate(steps):
        w = weight(s, name)
        f = w.flatten()
        m = {
            "l2": f.norm().item(),
            "rms": f.pow(2).mean().sqrt().item(),
            "mean": f.mean().item(),
            "std": f.std(unbiased=False).item(),
            "maxAbs": f.abs().max().item(),
            "zeros": int((f == 0).sum().item()),
        }
        mx = m["maxAbs"]
        if mx > 0:
            bins = torch.clamp(((f + mx) / (2 * mx) * 64).floor().long(), 0, 63)
            m["histogram"] = torch.bincount(bins, minlength=64).tolist()
        for tag, other in [("toPrevious", steps[i - 1] if i > 0 else None), ("toFirst", steps[0]), ("toFinal", steps[-1])]:
            if other is None:
                continue
            o = weight(other, name).flatten()
            m[tag] = {"relL2": ((f - o).norm() / o.norm()).item() if o.norm() > 0 else 0.0, "cosine": (f @ o / (f.norm() * o.norm())).item() if f.norm() > 0 and o.norm() > 0 else 0.0}
        if w.dim() == 2:
            s1 = torch.linalg.svdvals(w)[0].item()
            m["sigma1"] = s1
            m["stableRank"] = (w.norm() ** 2 / s1 ** 2).item()
        snap = series["snapshots"][str(s)]
        ea, ev = snap["exp_avg"][name].double().flatten(), snap["exp_avg_sq"][name].double().flatten()
        if ev.abs().sum() > 0:
            lr, eps = lr_at(s), cfg["eps"]
            u = lr * ea / (ev.clamp(min=0).sqrt() + eps)
            m["adam"] = {"rmsSqrtV": ev.mean().sqrt().item(), "rmsM": ea.pow(2).mean().sqrt().item(), "updateRms": u.pow(2).mean().sqrt().item(), "updateToWeight": (u.norm() / f.norm()).item(), "lr": lr}
        per[str(s)] = m
    out["tensors"][name] = per
os.makedirs(os.path.join(ROOT, "test", "fixtures", "analysis"), exist_ok=True)
with open(os.path.join(ROOT, "test", "fixtures", "analysis", "expected.json"), "w") as fh:
    json.dump(out, fh, indent=1)
print("wrote test/fixtures/analysis/expected.json")

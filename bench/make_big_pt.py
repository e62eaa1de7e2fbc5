"""Writes a large state-dict-like .pt file for the listing benchmark (not committed).

Run: /usr/bin/python3 bench/make_big_pt.py OUT.pt [GiB]   (Debian python3-torch)
"""
import sys

import torch

out = sys.argv[1]
gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.25
torch.manual_seed(0)
d = {}
budget = int(gib * 2**30)
i = 0
# shapes of a Pythia-410m-like state dict, repeated until the budget is used (fp16)
shapes = [(3072, 1024), (3072,), (1024, 1024), (1024,), (4096, 1024), (4096,), (1024, 4096), (1024,), (1024,), (1024,)]
used = 0
while used < budget:
    for s in shapes:
        t = torch.empty(s, dtype=torch.float16).uniform_(-1, 1)
        d[f"layers.{i}.p{len(d)}"] = t
        used += t.numel() * 2
    i += 1
torch.save(d, out)
print(f"wrote {out}: {len(d)} tensors, {used / 2**30:.2f} GiB")

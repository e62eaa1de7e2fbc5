"""Loads every file our writer produced with torch and checks it against the manifest.

Run: /usr/bin/python3 tools/written/check_with_torch.py   (Debian python3-torch)
Writes test/fixtures/written/torch-check.json: per file its sha256, whether torch loaded it,
how many checks passed, and the failures.
"""
import hashlib
import json
import os
import sys
import types

import torch

DIR = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "written")

# A stand-in for DeepSpeed's class so torch.load can rebuild the foreign object.
for m in ["deepspeed", "deepspeed.runtime", "deepspeed.runtime.fp16", "deepspeed.runtime.fp16.loss_scaler"]:
    sys.modules.setdefault(m, types.ModuleType(m))


class DynamicLossScaler:
    pass


sys.modules["deepspeed.runtime.fp16.loss_scaler"].DynamicLossScaler = DynamicLossScaler


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.numpy().tobytes()


def lookup(root, path):
    import re
    cur = root
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            cur = cur[int(part[1:-1])]
        elif isinstance(cur, dict):
            cur = cur[part]
        else:
            cur = getattr(cur, part) if not hasattr(cur, "__dict__") or part not in cur.__dict__ else cur.__dict__[part]
    return cur


manifest = json.load(open(os.path.join(DIR, "manifest.json")))
result = {"torch": torch.__version__, "files": {}}
for name, m in manifest.items():
    path = os.path.join(DIR, name)
    entry = {"sha256_of_file": hashlib.sha256(open(path, "rb").read()).hexdigest(), "loaded": False, "checks_passed": 0, "failures": []}
    try:
        obj = torch.load(path)
        entry["loaded"] = True
    except Exception as e:  # noqa: BLE001
        entry["failures"].append(f"load: {e!r}")
        result["files"][name] = entry
        continue
    for t in m["tensors"]:
        try:
            v = lookup(obj, t["name"])
            ok = str(v.dtype).replace("torch.", "") == t["dtype"] and list(v.shape) == t["shape"] and hashlib.sha256(tensor_bytes(v)).hexdigest() == t["sha256"]
            if t["name"] == "param":
                ok = ok and isinstance(v, torch.nn.Parameter) and v.requires_grad
        except Exception as e:  # noqa: BLE001
            ok = False
            entry["failures"].append(f"{t['name']}: {e!r}")
        if ok:
            entry["checks_passed"] += 1
        else:
            entry["failures"].append(f"tensor {t['name']} differs")
    for s in m["scalars"]:
        v = lookup(obj, s["path"])
        want = s["value"]
        if s["type"] == "int" and isinstance(want, str):
            want = int(want)
        if s["type"] == "bytes":
            v = v.hex()
        if s["type"] == "ndarray-u4":
            v = [int(x) for x in v]
        if s["type"] == "float":
            ok = isinstance(v, float) and v == want
        else:
            ok = v == want
        if ok:
            entry["checks_passed"] += 1
        else:
            entry["failures"].append(f"scalar {s['path']}: {v!r} != {want!r}")
    result["files"][name] = entry
json.dump(result, open(os.path.join(DIR, "torch-check.json"), "w"), indent=2)
bad = sum(len(e["failures"]) for e in result["files"].values())
print(f"{len(result['files'])} files checked with torch {torch.__version__}, {bad} failures")
sys.exit(1 if bad else 0)

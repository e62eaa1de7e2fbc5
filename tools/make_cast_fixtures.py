"""Expected dtype casts of every 16-bit pattern, computed by torch.

Run: /usr/bin/python3 tools/make_cast_fixtures.py  (Debian python3-torch)
Writes test/fixtures/cast.json: for each cast from a 16-bit dtype (float16, bfloat16) to
another float dtype, the sha256 of torch's output bytes (little-endian) for the input of all
65536 bit patterns in order, and the output bits of a few named inputs (zeros, subnormals,
infinities, NaNs, rounding ties) so that a failure is readable.
"""
import hashlib
import json

import numpy as np
import torch

ALL = np.arange(65536, dtype=np.uint16)
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
# float16 and bfloat16 patterns worth naming: ±0, smallest/largest subnormal, smallest normal,
# largest finite, ±inf, quiet and signalling NaNs with payloads, values whose last mantissa bits
# are ties when rounded to the other format.
NAMED = {
    "float16": [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00,
                0x7C01, 0x7E00, 0xFE00, 0x7FFF, 0x3C00, 0x3C04, 0x3C0C, 0x3C05, 0x3C03, 0x3BFF],
    "bfloat16": [0x0000, 0x8000, 0x0001, 0x007F, 0x8001, 0x0080, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80,
                 0x7F81, 0x7FC0, 0xFFC0, 0x7FFF, 0x3F80, 0x477F, 0x4780, 0x387F, 0x3380, 0x3381,
                 0x3F81, 0x3A80],
}

out = {"torch": torch.__version__, "casts": {}}
for src in ("float16", "bfloat16"):
    x = torch.from_numpy(ALL.view(np.int16).copy()).view(DTYPES[src])
    for dst, dt in DTYPES.items():
        if dst == src:
            continue
        y = x.to(dt)
        raw = y.view(torch.int32 if dst == "float32" else torch.int16).numpy()
        raw = raw.view(np.uint32 if dst == "float32" else np.uint16).astype("<u4" if dst == "float32" else "<u2")
        out["casts"][f"{src}>{dst}"] = {
            "sha256": hashlib.sha256(raw.tobytes()).hexdigest(),
            "named": [[int(h), int(raw[h])] for h in NAMED[src]],
        }
with open("test/fixtures/cast.json", "w") as f:
    json.dump(out, f)
print("wrote test/fixtures/cast.json", sorted(out["casts"]))

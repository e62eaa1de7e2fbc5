"""Expected float32 -> float16 / bfloat16 rounding, computed by torch.

Run: /usr/bin/python3 tools/make_half_fixtures.py  (Debian python3-torch)
Writes test/fixtures/half.json: float32 bit patterns with torch's .half() and .bfloat16() bits.
"""
import json
import struct

import numpy as np
import torch

rng = np.random.default_rng(1234)
edge = [
    0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 1e-8, 5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5,
    6.097e-5, 3.0e38, float("inf"), float("-inf"), 1.0009765625, 1.00048828125, 1.000732421875,
    0.333333333, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14 - 2 ** -25,
]
bits = [struct.unpack("<I", struct.pack("<f", x))[0] for x in edge]
bits += [0x7FC00000, 0xFFC00001, 0x7F800001, 0x3F808000, 0x3F818000, 0x3F80FFFF, 0x00000001, 0x807FFFFF]
bits += [int(b) for b in rng.integers(0, 2 ** 32, size=3000, dtype=np.uint64)]
# values concentrated where half rounding matters
bits += [struct.unpack("<I", struct.pack("<f", float(x)))[0] for x in rng.normal(0, 1, 2000).astype(np.float32)]
bits += [struct.unpack("<I", struct.pack("<f", float(x)))[0] for x in (rng.normal(0, 1, 1000) * 1e-5).astype(np.float32)]

f32 = torch.tensor(np.array(bits, dtype=np.uint32).view(np.float32))
half = f32.half().view(torch.int16).numpy().astype(np.uint16)
bf = f32.bfloat16().view(torch.int16).numpy().astype(np.uint16)
# half -> float32 for every half bit pattern, as exact float32 bits
allh = torch.tensor(np.arange(65536, dtype=np.uint16).view(np.int16)).view(torch.float16).float()
allh_bits = allh.numpy().view(np.uint32)
out = {
    "torch": torch.__version__,
    "f32_bits": [int(b) for b in bits],
    "f16_bits": [int(h) for h in half],
    "bf16_bits": [int(b) for b in bf],
    "f16_to_f32_bits_sha256": __import__("hashlib").sha256(allh_bits.astype("<u4").tobytes()).hexdigest(),
}
with open("test/fixtures/half.json", "w") as f:
    json.dump(out, f)
print("wrote test/fixtures/half.json", len(bits))

#!/usr/bin/env python3
"""Mutants of small torch.save zip fixtures, and what torch.load reads from each.

Run from the repository root with Debian's python3-torch (torch 1.13):

    /usr/bin/python3 tools/make_zip_mutants.py

Writes test/fixtures/torch/zip-mutants.json: for a fixed seed, a list of mutants, each a
fixture name and the byte operations that make it from that fixture (so the TypeScript test
rebuilds the same bytes), and torch's reading of it: "error" (with the exception type), or the
sha256 of every tensor's little-endian C-order bytes by name (stored only when it differs from
the unmutated file's reading, which is recorded once per fixture).

Mutations are of two kinds: random byte edits anywhere (set, cut, insert, delete), and edits of
the zip's own fields (sizes, offsets, name lengths, CRC-32s, methods, flags in the local headers,
the central directory, the end records), plus data edits with the CRC-32 recomputed in the
directory so that the file is consistent and torch reads a changed tensor.

torch.load runs with weights_only=True (nothing a mutant names is imported or called), in a
forked child with a memory limit and a timeout, so a mutant that makes torch allocate a huge
record, crash or hang is recorded as an error, never stops the script.
"""

import hashlib
import io
import json
import os
import random
import resource
import signal
import struct
import sys
import zlib

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "torch")
OUT = os.path.join(FIXTURES, "zip-mutants.json")
SEED = 20240614
# Fixtures torch loads with weights_only=True whose trees are dicts and lists of tensors.
BASES = [
    "small.pt",
    "dtypes.pt",
    "views.pt",
    "scalars_and_empty.pt",
    "named_parameters.pt",
    "state_dict.pt",
]
RANDOM_PER_BASE = 20
FIELD_PER_BASE = 24
RESIGNED_PER_BASE = 4
CHILD_MEMORY = 2 << 30
CHILD_SECONDS = 20


def tensor_le_bytes(t):
    t = t.detach().contiguous()
    a = t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()
    return np.ascontiguousarray(a).tobytes(order="C")


def walk(root):
    """(name, tensor) depth-first in insertion order, named as tools/make_torch_fixtures.py does."""
    out = []
    stack = [("", root)]
    while stack:
        path, obj = stack.pop()
        if isinstance(obj, torch.Tensor):
            out.append((path, obj))
            continue
        children = []
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(k, str):
                    children.append((k if path == "" else path + "." + k, v))
                else:
                    children.append((path + "[" + repr(k) + "]", v))
        elif isinstance(obj, (list, tuple)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        stack.extend(reversed(children))
    return out


def reading(data):
    """torch's reading of a file's bytes: [[name, dtype, shape, sha256], ...]."""
    obj = torch.load(io.BytesIO(data), weights_only=True)
    return [
        [name, str(t.dtype).replace("torch.", ""), list(t.shape),
         hashlib.sha256(tensor_le_bytes(t)).hexdigest()]
        for name, t in walk(obj)
    ]


def isolated_reading(data):
    """reading() in a forked child with bounded memory and time; {'error': type} on failure."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
        signal.alarm(CHILD_SECONDS)
        try:
            result = {"tensors": reading(data)}
        except BaseException as e:  # noqa: BLE001 - every failure is an outcome here
            result = {"error": type(e).__name__}
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"error": f"child died (status {status})"}
    return json.loads(b"".join(chunks))


def apply(base, ops):
    """The ops applied in order, as test/torch/zip-property.test.ts applies them (absolute offsets)."""
    b = bytearray(base)
    for op in ops:
        if "set" in op:
            at = op["at"]
            v = bytes.fromhex(op["set"])
            b[at:at + len(v)] = v
        elif "cut" in op:
            del b[op["cut"]:]
        elif "insert" in op:
            b[op["at"]:op["at"]] = bytes.fromhex(op["insert"])
        elif "delete" in op:
            del b[op["at"]:op["at"] + op["delete"]]
    return bytes(b)


def zip_layout(data):
    """Offsets of the end records and of each record's central and local headers."""
    eocd = len(data) - 22
    assert struct.unpack_from("<I", data, eocd)[0] == 0x06054B50
    loc = eocd - 20
    assert struct.unpack_from("<I", data, loc)[0] == 0x07064B50
    z64 = struct.unpack_from("<Q", data, loc + 8)[0]
    count, cd_size, cd_off = struct.unpack_from("<QQQ", data, z64 + 32)
    records = []
    p = cd_off
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, p + 28)
        name = data[p + 46:p + 46 + name_len].decode()
        size = struct.unpack_from("<I", data, p + 24)[0]
        lho = struct.unpack_from("<I", data, p + 42)[0]
        l_name, l_extra = struct.unpack_from("<HH", data, lho + 26)
        records.append({
            "name": name, "cd": p, "lfh": lho, "size": size,
            "payload": lho + 30 + l_name + l_extra,
        })
        p += 46 + name_len + extra_len + comment_len
    return {"eocd": eocd, "locator": loc, "zip64": z64, "cd": cd_off, "records": records}


# (where, offset in that header, width) of every field a reader trusts.
CD_FIELDS = [(6, 2), (8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4)]
LFH_FIELDS = [(6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)]
EOCD_FIELDS = [(8, 2), (10, 2), (12, 4), (16, 4), (20, 2)]
ZIP64_FIELDS = [(24, 8), (32, 8), (40, 8), (48, 8)]
LOCATOR_FIELDS = [(8, 8), (16, 4)]


def field_value(rng, old, width):
    top = (1 << (8 * width)) - 1
    choice = rng.randrange(7)
    if choice == 0:
        v = old + rng.choice([1, -1, 2, -2, 64, -64])
    elif choice == 1:
        v = 0
    elif choice == 2:
        v = top
    elif choice == 3:
        v = old ^ (1 << rng.randrange(8 * width))
    elif choice == 4:
        v = rng.randrange(0, min(top, 1 << 16) + 1)
    elif choice == 5:
        v = 1 << rng.randrange(8 * width)
    else:
        v = rng.randrange(0, top + 1)
    return v & top


def field_mutant(rng, data, lay):
    kind = rng.choice(["cd", "cd", "lfh", "lfh", "eocd", "zip64", "locator", "name", "both"])
    if kind in ("cd", "lfh", "both"):
        rec = rng.choice(lay["records"])
        fields = CD_FIELDS if kind == "cd" else LFH_FIELDS
        if kind == "both":
            # The same value in both copies of a size or CRC: the copies agree, the data does not.
            cd_at, lfh_at, width = rng.choice([(16, 14, 4), (20, 18, 4), (24, 22, 4), (28, 26, 2)])
            old = int.from_bytes(data[rec["cd"] + cd_at:rec["cd"] + cd_at + width], "little")
            v = field_value(rng, old, width).to_bytes(width, "little").hex()
            return [{"at": rec["cd"] + cd_at, "set": v}, {"at": rec["lfh"] + lfh_at, "set": v}]
        off, width = rng.choice(fields)
        at = rec["cd" if kind == "cd" else "lfh"] + off
    elif kind == "name":
        rec = rng.choice(lay["records"])
        name_len = len(rec["name"].encode())
        i = rng.randrange(name_len)
        v = bytes([rng.choice([ord("0"), ord("9"), ord("/"), ord("."), 0, 0xFF, rng.randrange(256)])])
        # In one copy of the name, or in both (a consistently renamed record).
        ats = [rec["cd"] + 46 + i] if rng.random() < 0.5 else [rec["cd"] + 46 + i, rec["lfh"] + 30 + i]
        return [{"at": a, "set": v.hex()} for a in ats]
    else:
        base = {"eocd": lay["eocd"], "zip64": lay["zip64"], "locator": lay["locator"]}[kind]
        fields = {"eocd": EOCD_FIELDS, "zip64": ZIP64_FIELDS, "locator": LOCATOR_FIELDS}[kind]
        off, width = rng.choice(fields)
        at = base + off
    old = int.from_bytes(data[at:at + width], "little")
    return [{"at": at, "set": field_value(rng, old, width).to_bytes(width, "little").hex()}]


def resigned_mutant(rng, data, lay):
    """A data byte changed and its record's CRC-32 recomputed in the central directory."""
    recs = [r for r in lay["records"] if r["size"] > 0 and "/data/" in r["name"]]
    rec = rng.choice(recs)
    i = rng.randrange(rec["size"])
    old = data[rec["payload"] + i]
    new = (old + 1 + rng.randrange(255)) & 0xFF
    ops = [{"at": rec["payload"] + i, "set": bytes([new]).hex()}]
    payload = bytearray(data[rec["payload"]:rec["payload"] + rec["size"]])
    payload[i] = new
    crc = zlib.crc32(bytes(payload)) & 0xFFFFFFFF
    ops.append({"at": rec["cd"] + 16, "set": crc.to_bytes(4, "little").hex()})
    return ops


def random_mutant(rng, data):
    ops = []
    size = len(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["set", "set", "set", "cut", "insert", "delete"])
        at = rng.randrange(max(size, 1))
        if kind == "set":
            ops.append({"at": at, "set": bytes([rng.randrange(256)]).hex()})
        elif kind == "cut":
            ops.append({"cut": at})
            size = at
        elif kind == "insert":
            b = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
            ops.append({"at": at, "insert": b.hex()})
            size += len(b)
        else:
            n = rng.randint(1, 8)
            ops.append({"at": at, "delete": n})
            size = max(at, size - n)
    return ops


def main():
    rng = random.Random(SEED)
    bases = {}
    mutants = []
    for name in BASES:
        with open(os.path.join(FIXTURES, name), "rb") as f:
            data = f.read()
        base = isolated_reading(data)
        assert "tensors" in base, (name, base)
        bases[name] = {"sha256": hashlib.sha256(data).hexdigest(), "tensors": base["tensors"]}
        lay = zip_layout(data)
        ops_list = (
            [("random", random_mutant(rng, data)) for _ in range(RANDOM_PER_BASE)]
            + [("field", field_mutant(rng, data, lay)) for _ in range(FIELD_PER_BASE)]
            + [("resigned", resigned_mutant(rng, data, lay)) for _ in range(RESIGNED_PER_BASE)]
        )
        for kind, ops in ops_list:
            got = isolated_reading(apply(data, ops))
            torch_result = (
                {"error": got["error"]} if "error" in got
                else "same" if got["tensors"] == base["tensors"]
                else {"tensors": got["tensors"]}
            )
            mutants.append({"base": name, "kind": kind, "ops": ops, "torch": torch_result})
    out = {
        "generator": {
            "script": "tools/make_zip_mutants.py",
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
            "seed": SEED,
        },
        "rules": {
            "ops": "applied in order to the base file's bytes: {at, set: hex} overwrites, "
                   "{cut: at} truncates, {at, insert: hex} inserts, {at, delete: n} removes n bytes",
            "torch": "torch.load(weights_only=True) of the mutant: {error: exception type}, 'same' "
                     "(the base's reading), or {tensors: [[name, dtype, shape, sha256 of LE C-order bytes]]}",
        },
        "bases": bases,
        "mutants": mutants,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    kinds = {}
    for m in mutants:
        k = "error" if isinstance(m["torch"], dict) and "error" in m["torch"] else (
            "same" if m["torch"] == "same" else "changed")
        kinds[k] = kinds.get(k, 0) + 1
    print(f"{len(mutants)} mutants -> {os.path.relpath(OUT, ROOT)}: {kinds}")


if __name__ == "__main__":
    main()

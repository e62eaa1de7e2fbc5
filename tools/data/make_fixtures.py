#!/usr/bin/env python3
"""Writes the indexed-dataset fixtures of test/data/ with numpy, following
shared/spec/pythia-training-data.md (Megatron's MMIDIDX index + .bin, Pythia's 2049-token
uint16 items, 1024 per step, the .bin cut into shards), and the expected batches computed by
numpy slicing the way pythia's utils/batch_viewer.py does (memory-map the index, take items
[a*B, (b+1)*B), reshape to (-1, 2049), np.save).

Run from the repository root with Debian's numpy: /usr/bin/python3 tools/data/make_fixtures.py
Writes test/fixtures/data/ and prints the SHA-256 digests of the real-geometry case (3 steps of
1024 items, 12.6 MB: too big to commit), which the test regenerates from the same seed and
checks against test/fixtures/data/pythia-geometry.json.

Token streams come from a counter-based hash (murmur3's 32-bit finaliser of position ^ seed) so
that the TypeScript test can rebuild them bit for bit: token j is the end-of-document id 0 when
fmix32(j ^ doc_seed) % doc_mean == 0, else 1 + fmix32(j ^ seed) % (vocab - 1).
"""
import hashlib
import io
import json
import os
import struct

import numpy as np

OUT = os.path.join("test", "fixtures", "data")
MAGIC = b"MMIDIDX\x00\x00"
# dtype codes as Megatron's indexed_dataset.py / pythia's mmap_dataset.py number them
CODES = {
    np.uint8: 1,
    np.int8: 2,
    np.int16: 3,
    np.int32: 4,
    np.int64: 5,
    np.float32: 6,
    np.float64: 7,
    np.uint16: 8,
}
DOC_SEED_SALT = 0x5BD1E995


def fmix32(x):
    """murmur3's finaliser on a uint32 array (wrapping arithmetic)."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def token_stream(n, seed, vocab, doc_mean):
    j = np.arange(n, dtype=np.uint32)
    ids = (np.uint32(1) + fmix32(j ^ np.uint32(seed)) % np.uint32(vocab - 1)).astype(np.uint16)
    eod = fmix32(j ^ np.uint32(seed ^ DOC_SEED_SALT)) % np.uint32(doc_mean) == 0
    ids[eod] = 0
    return ids


def index_bytes(dtype, sizes, doc_idx):
    """The .idx as spec section 1 lays it out: header, sizes, pointers, doc_idx."""
    sizes = np.asarray(sizes, dtype=np.int64)
    pointers = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        pointers[1:] = np.cumsum(sizes[:-1]) * np.dtype(dtype).itemsize
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(struct.pack("<Q", 1))
    out.write(struct.pack("<B", CODES[dtype]))
    out.write(struct.pack("<Q", len(sizes)))
    out.write(struct.pack("<Q", len(doc_idx)))
    out.write(sizes.astype("<i4").tobytes())
    out.write(pointers.astype("<i8").tobytes())
    out.write(np.asarray(doc_idx, dtype="<i8").tobytes())
    return out.getvalue()


def read_dataset(idx, bin_bytes):
    """The index read back as np.memmap/np.frombuffer read it (sizes, pointers, doc_idx)."""
    assert idx[:9] == MAGIC and struct.unpack("<Q", idx[9:17])[0] == 1
    dtype = {v: k for k, v in CODES.items()}[idx[17]]
    n, docs = struct.unpack("<QQ", idx[18:34])
    sizes = np.frombuffer(idx, dtype=np.int32, count=n, offset=34)
    pointers = np.frombuffer(idx, dtype=np.int64, count=n, offset=34 + sizes.nbytes)
    return dtype, sizes, pointers, bin_bytes


def batch_items(ds, first, stop, item_length):
    """dataset[first:stop] as pythia's MMapIndexedDataset slices it: one frombuffer, reshaped."""
    dtype, sizes, pointers, bin_bytes = ds
    total = int(np.sum(sizes[first:stop], dtype=np.int64))
    arr = np.frombuffer(bin_bytes, dtype=dtype, count=total, offset=int(pointers[first]))
    return arr.reshape(-1, item_length)


def npy_bytes(arr):
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def shards(bin_bytes, shard_size):
    parts = [bin_bytes[i : i + shard_size] for i in range(0, len(bin_bytes), shard_size)]
    last = len(parts) - 1
    return [(f"document-{i:05}-of-{last:05}.bin", p) for i, p in enumerate(parts)]


def write(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def pythia_like(seed, items, vocab=50277, doc_mean=3000, item_length=2049):
    """Items of item_length uint16 tokens cut from one stream; doc_idx one entry per item plus
    the end, as a builder that ends a document after every item writes it."""
    tokens = token_stream(items * item_length, seed, vocab, doc_mean)
    sizes = [item_length] * items
    return index_bytes(np.uint16, sizes, list(range(items + 1))), tokens.astype("<u2").tobytes()


def small_fixture(expected):
    """Pythia's item length and dtype, batch size 8, 5 steps; whole and in odd-sized shards."""
    B, L = 8, 2049
    idx, bin_bytes = pythia_like(seed=1, items=5 * B, doc_mean=500)
    write("small/document.idx", idx)
    write("small/document.bin", bin_bytes)
    write("small-sharded/document.idx", idx)
    # 40,001 bytes: odd, so shard boundaries fall inside items and inside a token
    for name, part in shards(bin_bytes, 40_001):
        write(f"small-sharded/{name}", part)
    ds = read_dataset(idx, bin_bytes)
    cases = {}
    for a, b in [(0, 0), (1, 2), (4, 4), (0, 4)]:
        arr = batch_items(ds, a * B, (b + 1) * B, L)
        name = f"steps-{a}-{b}.npy"
        if (a, b) in [(1, 2), (4, 4)]:  # the others are checked by digest only
            write(f"small/expected/{name}", npy_bytes(arr))
        cases[name] = {
            "firstStep": a,
            "lastStep": b,
            "items": int(arr.shape[0]),
            "tokens": int(arr.size),
            "eodTokens": int(np.count_nonzero(arr == 0)),
            "sha256": sha(npy_bytes(arr)),
        }
    arr = batch_items(ds, 1 * B, 2 * B, L)
    lines = "".join(
        json.dumps({"item": B + k, "step": 1, "tokens": [int(t) for t in row]}) + "\n"
        for k, row in enumerate(arr)
    )
    write("small/expected/step-1.jsonl", lines.encode())
    expected["small"] = {
        "batchSize": B,
        "itemLength": L,
        "items": 5 * B,
        "binBytes": len(bin_bytes),
        "shardBytes": 40_001,
        "shards": len(shards(bin_bytes, 40_001)),
        "cases": cases,
    }


def dtype_fixtures(expected):
    """One small dataset per dtype code: 6 items of 5 tokens, batch size 2."""
    out = {}
    for dtype, code in CODES.items():
        name = np.dtype(dtype).name
        n = 6 * 5
        h = fmix32(np.arange(n, dtype=np.uint32) ^ np.uint32(code))
        if np.issubdtype(dtype, np.floating):
            values = (h.astype(np.float64) / 2**32 * 20 - 10).astype(dtype)
        elif dtype == np.int64:
            # beyond 32 bits, within the 2^53 a JavaScript number holds exactly
            values = (h.astype(np.int64) - 2**31) * 4096
        else:
            values = h.astype(dtype)  # wraps: the full range of the type, negatives included
        bin_bytes = values.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
        idx = index_bytes(dtype, [5] * 6, list(range(7)))
        write(f"dtypes/{name}.idx", idx)
        write(f"dtypes/{name}.bin", bin_bytes)
        arr = batch_items(read_dataset(idx, bin_bytes), 2, 6, 5)
        write(f"dtypes/expected/{name}.npy", npy_bytes(arr))
        out[name] = {"code": code, "values": [v.item() for v in values]}
    expected["dtypes"] = out


def varied_fixture(expected):
    """Documents of different lengths as items (a raw tokenized corpus, not Pythia's
    preshuffled items), each ending in EOD; doc_idx as a builder ending each document writes."""
    lengths = [7, 1, 30, 12, 5, 64, 3, 9]
    stream = token_stream(sum(lengths), 7, 50277, 10**9)
    items, at = [], 0
    for n in lengths:
        item = stream[at : at + n].copy()
        item[-1] = 0
        items.append(item)
        at += n
    bin_bytes = np.concatenate(items).astype("<u2").tobytes()
    # two items per document for the first three documents, then one each
    doc_idx = [0, 2, 4, 6, 7, 8]
    write("varied/document.idx", index_bytes(np.uint16, lengths, doc_idx))
    write("varied/document.bin", bin_bytes)
    expected["varied"] = {
        "sizes": lengths,
        "docIdx": doc_idx,
        "items": [[int(t) for t in it] for it in items],
    }


def geometry_case(expected):
    """Pythia's real geometry: 3 steps x 1024 items x 2049 uint16 tokens, shards of 5,000,000
    bytes (Pythia's 5,000,000,000 scaled down 1000x), so item 1220 straddles shards 0 and 1."""
    B, L, steps, seed, shard = 1024, 2049, 3, 20490, 5_000_000
    idx, bin_bytes = pythia_like(seed=seed, items=steps * B)
    ds = read_dataset(idx, bin_bytes)
    case = {
        "seed": seed,
        "vocab": 50277,
        "docMean": 3000,
        "batchSize": B,
        "itemLength": L,
        "items": steps * B,
        "shardBytes": shard,
        "sha256": {"document.idx": sha(idx), "document.bin": sha(bin_bytes)},
        "batches": {},
    }
    for name, part in shards(bin_bytes, shard):
        case["sha256"][name] = sha(part)
    for a, b in [(1, 1), (0, 2)]:
        arr = batch_items(ds, a * B, (b + 1) * B, L)
        case["batches"][f"{a}..{b}"] = {
            "npyBytes": len(npy_bytes(arr)),
            "sha256": sha(npy_bytes(arr)),
            "eodTokens": int(np.count_nonzero(arr == 0)),
        }
    expected["geometry"] = case
    for k, v in case["sha256"].items():
        print(f"{v}  {k}")
    for k, v in case["batches"].items():
        print(f"{v['sha256']}  steps {k} (.npy, {v['npyBytes']} bytes, {v['eodTokens']} EOD)")


def npy_headers(expected):
    """np.save's header (the same writer, without the data) for shapes around the 64-byte pad."""
    out = []
    for shape in [(0, 2049), (3, 2049), (1024, 2049), (146_432_000, 2049), (7,), (), (2, 3, 4)]:
        b = io.BytesIO()
        d = {"descr": "<u2", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(b, d)
        out.append({"shape": list(shape), "descr": "<u2", "header": b.getvalue().decode("latin-1")})
    # the header np.save itself wrote for one real array, to tie the two together
    full = npy_bytes(np.zeros((3, 2049), dtype=np.uint16))
    assert full[: len(out[1]["header"])] == out[1]["header"].encode("latin-1")
    expected["npyHeaders"] = out


def main():
    expected = {"numpy": np.__version__}
    small_fixture(expected)
    dtype_fixtures(expected)
    varied_fixture(expected)
    npy_headers(expected)
    geometry = {}
    geometry_case(geometry)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "pythia-geometry.json"), "w") as f:
        json.dump(geometry["geometry"], f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

"""Reference safetensors files, written independently of the TypeScript writer.

Run: /usr/bin/python3 tools/safetensors/make_reference.py  (Debian python3-torch, python3-numpy)

Debian has no python3-safetensors package and nothing is pip-installed here, so this script
implements the format from its specification (spec/torch-serialization.md §4; the reference
library's `safetensors/src/tensor.rs`, `prepare` and `Metadata`): tensors sorted by dtype enum
rank, largest first, then by name as UTF-8 bytes; compact JSON header (`__metadata__` first,
then tensors in offset order with `dtype`, `shape`, `data_offsets`); spaces to a multiple of 8.
Tensor bytes come from torch. Before writing anything the script checks its writer against the
byte vectors in the reference library's own unit tests (test_serialization, test_empty,
test_serialization_forced_alignement).

Sharding follows huggingface_hub's `split_state_dict_into_shards_factory`; the index text is
`json.dumps(index, indent=2, sort_keys=True) + "\\n"` as transformers' `save_pretrained` writes
it, and `json.dumps(index, indent=2)` as huggingface_hub's `save_torch_state_dict` does.

It deletes and rewrites test/fixtures/safetensors/:
    mixed.safetensors, no_metadata.safetensors, empty.safetensors, pythia_tiny.safetensors
    sharded/model-0000K-of-00003.safetensors, sharded/model.safetensors.index.json
    expected.json   every tensor (name, dtype, shape, hex bytes) in state-dict order, the
                    sha256 of every file, the huggingface_hub-style index text, and Python's
                    json.dumps output for HF configs and float reprs
"""
import hashlib
import json
import math
import os
import shutil
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "safetensors")

# The reference library's Dtype enum in declaration order (its derived Ord).
DTYPE_ORDER = [
    "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
    "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
    "F64", "I64", "U64",
]
TORCH_TO_ST = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
    torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32", torch.float32: "F32",
    torch.complex64: "C64", torch.float64: "F64", torch.int64: "I64",
}


def tensor_bytes(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def serialize(tensors, metadata):
    items = sorted(
        tensors.items(),
        key=lambda kv: (-DTYPE_ORDER.index(TORCH_TO_ST[kv[1].dtype]), kv[0].encode("utf-8")),
    )
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    data = []
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {
            "dtype": TORCH_TO_ST[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(b)],
        }
        offset += len(b)
        data.append(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(data)


def parse(buf):
    """An independent reader, to check what was written against the torch tensors."""
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    out = {}
    st_to_torch = {v: k for k, v in TORCH_TO_ST.items()}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = bytearray(buf[8 + n + b : 8 + n + e])
        dt = st_to_torch[info["dtype"]]
        if dt == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.empty(0, dtype=dt)
        else:
            t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"])
    return out


def check_against_reference_vectors():
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    x = torch.arange(6, dtype=torch.float32)
    got = serialize({"attn.0": x.reshape(1, 2, 3)}, None)
    want = (b"@\x00\x00\x00\x00\x00\x00\x00"
            b'{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}' + f32)
    assert got == want, "test_serialization"
    got = serialize({"attn0": x.reshape(1, 1, 2, 3)}, None)
    want = (b"H\x00\x00\x00\x00\x00\x00\x00"
            b'{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}' + b" " * 7 + f32)
    assert got == want, "test_serialization_forced_alignement"
    assert serialize({}, None) == b"\x08\x00\x00\x00\x00\x00\x00\x00{}" + b" " * 6, "test_empty"
    want = b'(\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"framework":"pt"}}' + b" " * 5
    assert serialize({}, {"framework": "pt"}) == want, "test_empty with metadata"


def split_shards(sizes, max_shard_size):
    """huggingface_hub's split, for tensors that share no storage: names → shard lists."""
    shard_list, current, current_size = [], [], 0
    for name, size in sizes:
        if size > max_shard_size:
            shard_list.append([name])
            continue
        if current_size + size > max_shard_size:
            shard_list.append(current)
            current, current_size = [], 0
        current.append(name)
        current_size += size
    if current:
        shard_list.append(current)
    return shard_list


def described(tensors):
    return [
        {"name": k, "dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape), "hex": tensor_bytes(t).hex()}
        for k, t in tensors.items()
    ]


def main():
    check_against_reference_vectors()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "sharded"))
    g = torch.Generator().manual_seed(1234)
    randn = lambda *s: torch.randn(*s, generator=g)

    # Every dtype torch 1.13 has a safetensors name for; names chosen so that name order and
    # dtype order disagree, plus names whose UTF-16 order differs from their code-point order
    # (U+E000 sorts before U+1F600 in UTF-8, after it in UTF-16).
    mixed = {
        "z.bool": torch.tensor([True, False, True]),
        "a.f64": randn(2, 3).double(),
        "m.i64": torch.tensor([[-1, 2**40], [3, -(2**62)]], dtype=torch.int64),
        "b.c64": torch.complex(randn(3), randn(3)),
        "y.f32": randn(4, 5),
        "c.i32": torch.tensor([-7, 8, 2**31 - 1], dtype=torch.int32),
        "x.bf16": randn(3, 2).bfloat16(),
        "d.f16": randn(5).half(),
        "w.i16": torch.tensor([-300, 300], dtype=torch.int16),
        "e.i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "v.u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "scalar.f32": torch.tensor(3.5),
        "empty.f16": torch.zeros(0, 3, dtype=torch.float16),
        "emb.\u00e9t\u00e9": randn(2).half(),
        "q\"uote\\back": randn(1).half(),
        "\ue000.pua": randn(1).half(),
        "\U0001f600.emoji": randn(1).half(),
    }
    no_meta = {"weight": randn(2, 2), "bias": randn(2)}

    H, V, L, I, P = 8, 16, 2, 32, 4
    tiny = {"gpt_neox.embed_in.weight": randn(V, H).half()}
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        tiny[p + "input_layernorm.weight"] = randn(H).half()
        tiny[p + "input_layernorm.bias"] = randn(H).half()
        tiny[p + "post_attention_layernorm.weight"] = randn(H).half()
        tiny[p + "post_attention_layernorm.bias"] = randn(H).half()
        tiny[p + "attention.bias"] = torch.tril(torch.ones(P, P, dtype=torch.uint8)).view(1, 1, P, P)
        tiny[p + "attention.masked_bias"] = torch.tensor(-1e9).half()
        tiny[p + "attention.rotary_emb.inv_freq"] = (1.0 / 10000 ** (torch.arange(0, 2).float() / 2)).half()
        tiny[p + "attention.query_key_value.weight"] = randn(3 * H, H).half()
        tiny[p + "attention.query_key_value.bias"] = randn(3 * H).half()
        tiny[p + "attention.dense.weight"] = randn(H, H).half()
        tiny[p + "attention.dense.bias"] = randn(H).half()
        tiny[p + "mlp.dense_h_to_4h.weight"] = randn(I, H).half()
        tiny[p + "mlp.dense_h_to_4h.bias"] = randn(I).half()
        tiny[p + "mlp.dense_4h_to_h.weight"] = randn(H, I).half()
        tiny[p + "mlp.dense_4h_to_h.bias"] = randn(H).half()
    tiny["gpt_neox.final_layer_norm.weight"] = randn(H).half()
    tiny["gpt_neox.final_layer_norm.bias"] = randn(H).half()
    tiny["embed_out.weight"] = randn(V, H).half()

    files = {
        "mixed.safetensors": (mixed, {"format": "pt"}),
        "no_metadata.safetensors": (no_meta, None),
        "empty.safetensors": ({}, None),
        "pythia_tiny.safetensors": (tiny, {"format": "pt"}),
    }
    expected = {"files": {}}
    for fname, (tensors, meta) in files.items():
        buf = serialize(tensors, meta)
        back = parse(buf)
        assert list(sorted(back)) == list(sorted(tensors))
        for k, t in tensors.items():
            assert back[k].dtype == t.dtype and list(back[k].shape) == list(t.shape)
            assert torch.equal(back[k].view(torch.uint8) if t.dtype == torch.bool else back[k], t.view(torch.uint8) if t.dtype == torch.bool else t) or (t.numel() == 0)
        with open(os.path.join(OUT, fname), "wb") as f:
            f.write(buf)
        expected["files"][fname] = {
            "metadata": meta,
            "tensors": described(tensors),
            "sha256": hashlib.sha256(buf).hexdigest(),
            "size": len(buf),
        }

    # Sharding: sizes 400, 400, 1200, 300, 500, 100 bytes (float32) under a 1000-byte limit
    # give [big], [a, b], [c, d, e]: the oversize tensor is placed before the open shard.
    sharded = {
        "a.weight": randn(100),
        "b.weight": randn(100),
        "big.weight": randn(300),
        "c.w\u00e9ight": randn(75),
        "d.weight": randn(5, 25),
        "e.bias": randn(25).half().float(),
    }
    limit = 1000
    shards = split_shards([(k, t.numel() * t.element_size()) for k, t in sharded.items()], limit)
    n = len(shards)
    weight_map = {}
    shard_files = []
    for i, names in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        buf = serialize({k: sharded[k] for k in names}, {"format": "pt"})
        with open(os.path.join(OUT, "sharded", fname), "wb") as f:
            f.write(buf)
        shard_files.append({"file": fname, "names": names, "sha256": hashlib.sha256(buf).hexdigest()})
        for k in names:
            weight_map[k] = fname
    total = sum(t.numel() * t.element_size() for t in sharded.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(OUT, "sharded", "model.safetensors.index.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    expected["sharded"] = {
        "max_shard_size": limit,
        "tensors": described(sharded),
        "shards": shard_files,
        "index_transformers": json.dumps(index, indent=2, sort_keys=True) + "\n",
        "index_huggingface_hub": json.dumps(index, indent=2),
    }

    # Python's json.dumps of HF configs (float reprs such as 1e-05) and of assorted floats.
    pythia_70m = {
        "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0,
        "hidden_act": "gelu", "hidden_size": 512, "initializer_range": 0.02,
        "intermediate_size": 2048, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
        "model_type": "gpt_neox", "num_attention_heads": 8, "num_hidden_layers": 6,
        "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False,
        "torch_dtype": "float16", "transformers_version": "4.24.0", "use_cache": True,
        "use_parallel_residual": True, "vocab_size": 50304,
    }
    generation = {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 0, "transformers_version": "4.24.0"}
    rng = np.random.default_rng(7)
    floats = [0.0, -0.0, 1.0, -1.0, 0.25, 0.02, 1e-05, 1e-4, 9.999e-5, 1e-6, 1.5e-7, 123.456, 1e15,
              9999999999999998.0, 1e16, 1.2345e16, 1e22, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3,
              10000.0, 2.5e-05, 123456789.0, 0.30000000000000004]
    floats += [float(v) for v in rng.normal(0, 1, 40) * 10.0 ** rng.integers(-12, 20, 40)]
    expected["python_json"] = {
        "pythia_70m_config": {"value": pythia_70m, "text": json.dumps(pythia_70m, indent=2, sort_keys=True) + "\n"},
        "generation_config": {"value": generation, "text": json.dumps(generation, indent=2, sort_keys=True) + "\n"},
        "float_repr": [[struct.pack("<d", x).hex(), repr(x)] for x in floats if math.isfinite(x)],
        "strings": [[s, json.dumps(s)] for s in ["plain", "é", "\U0001f600", "\x7f", "\x00\x1f\n\t\"\\/", "\ue000"]],
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""Writes the golden files of test/model/ with real PyTorch (float32 reference forward from
neox_ref.py). Run from the repository root:

    /usr/bin/python3 tools/model/make_goldens.py

Outputs, under test/fixtures/model/:
- tiny-parallel/, tiny-sequential/, tiny-tied/: config.json + model.pt (float16 weights saved by
  torch.save as a plain dict of HF names; tiny-parallel also carries the legacy buffers
  attention.bias, attention.masked_bias and attention.rotary_emb.inv_freq) + golden.json (input
  ids and full float32 logits for whole sequences and for cached incremental decoding);
- rotary.json: torch's float32 inv_freq for Pythia's rotary sizes, cos/sin at sample positions;
- gelu.json: torch's float32 exact GELU at sample points, and the C library's double erf;
- pythia160m-shaped.json: seed, ids and last-position logits of a Pythia-160m-shaped model whose
  weights both sides generate (neox_ref.synthetic_tensor / src/model/synthetic.ts).
"""
import base64
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neox_ref import (  # noqa: E402
    PYTHIA_160M_SHAPED,
    Cache,
    forward,
    inv_freq,
    parameter_names,
    rotary_tables,
    synthetic_state_dict,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "model")


def f32_b64(t):
    return base64.b64encode(t.detach().contiguous().numpy().astype("<f4").tobytes()).decode()


def f32_bits(t):
    return [int(x) for x in t.detach().contiguous().numpy().astype("<f4").view("<u4").reshape(-1)]


TINY = {
    "tiny-parallel": {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": 96,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "hidden_act": "gelu",
        "rotary_pct": 0.25,
        "rotary_emb_base": 10000,
        "max_position_embeddings": 64,
        "layer_norm_eps": 1e-05,
        "use_parallel_residual": True,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.24.0",
    },
    # transformers v5 spelling: RoPE settings under rope_parameters.
    "tiny-sequential": {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": 96,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "hidden_act": "gelu",
        "rope_parameters": {"rope_type": "default", "rope_theta": 5000.0, "partial_rotary_factor": 0.5},
        "max_position_embeddings": 64,
        "layer_norm_eps": 1e-06,
        "use_parallel_residual": False,
        "tie_word_embeddings": False,
        "dtype": "float16",
        "transformers_version": "5.0.0",
    },
    # Odd sizes: head size 12 (not a multiple of 8), MLP 100, vocabulary 101; tied embeddings,
    # no attention biases, rotary on whole heads (late-4.x attribute spellings).
    "tiny-tied": {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": 101,
        "hidden_size": 48,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "intermediate_size": 100,
        "hidden_act": "gelu",
        "partial_rotary_factor": 1.0,
        "rope_theta": 10000,
        "max_position_embeddings": 64,
        "layer_norm_eps": 1e-05,
        "use_parallel_residual": True,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "torch_dtype": "float16",
        "transformers_version": "4.45.0",
    },
}


def plain_config(cfg):
    """The fields neox_ref.forward reads, in the old spelling."""
    c = dict(cfg)
    rp = c.pop("rope_parameters", None) or {}
    c["rotary_pct"] = c.get("rotary_pct", c.pop("partial_rotary_factor", rp.get("partial_rotary_factor", 0.25)))
    c["rotary_emb_base"] = c.get("rotary_emb_base", c.pop("rope_theta", rp.get("rope_theta", 10000)))
    return c


def random_state_dict(cfg, seed, legacy_buffers):
    g = torch.Generator().manual_seed(seed)
    H = cfg["hidden_size"]
    P = cfg["max_position_embeddings"]
    sd = {}
    for name, shape in parameter_names(cfg):
        if not cfg.get("attention_bias", True) and (
            name.endswith("attention.query_key_value.bias") or name.endswith("attention.dense.bias")
        ):
            continue
        r = torch.randn(shape, generator=g)
        if name.endswith("layernorm.weight") or name.endswith("layer_norm.weight"):
            t = 1 + 0.2 * r
        elif name.endswith("embed_in.weight"):
            t = r
        elif name == "embed_out.weight":
            t = r * (3 / math.sqrt(H))
        elif len(shape) == 2:
            t = r / math.sqrt(shape[1])
        else:
            t = 0.1 * r
        sd[name] = t.half()
        if legacy_buffers and name.endswith("post_attention_layernorm.bias"):
            p = name[: -len("post_attention_layernorm.bias")]
            sd[p + "attention.bias"] = torch.tril(torch.ones(P, P, dtype=torch.uint8)).view(1, 1, P, P)
            sd[p + "attention.masked_bias"] = torch.tensor(-1e9).half()  # -inf in float16
            R = int(H // cfg["num_attention_heads"] * cfg["rotary_pct"])
            sd[p + "attention.rotary_emb.inv_freq"] = inv_freq(R, cfg["rotary_emb_base"]).half()
    return sd


def write_tiny(name, cfg, seed, legacy_buffers):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    ref = plain_config(cfg)
    sd16 = random_state_dict(ref, seed, legacy_buffers)
    torch.save(sd16, os.path.join(d, "model.pt"))
    sd = {k: v.float() for k, v in sd16.items() if v.dtype == torch.float16}
    if ref.get("tie_word_embeddings"):
        sd.pop("embed_out.weight", None)
    g = torch.Generator().manual_seed(seed + 1)
    V = cfg["vocab_size"]
    cases = []
    for T in (1, 7, 20):
        ids = torch.randint(0, V, (T,), generator=g).tolist()
        cases.append({"name": f"len{T}", "ids": ids, "logits": f32_b64(forward(sd, ref, ids))})
    # Incremental decoding: a prompt, single tokens, then a chunk, all through one cache.
    cache = Cache(ref["num_hidden_layers"])
    steps = []
    for ids in ([5, 17, 3, 88 % V, 42, 9], [11], [60], [0], [V - 1], [7, 8, 9]):
        steps.append({"ids": ids, "logits": f32_b64(forward(sd, ref, ids, cache))})
    # The same 13 tokens at once, for the cache-free comparison.
    whole = [t for s in steps for t in s["ids"]]
    cases.append({"name": "incremental-whole", "ids": whole, "logits": f32_b64(forward(sd, ref, whole))})
    golden = {
        "model": name,
        "torch": torch.__version__,
        "cases": cases,
        "incremental": steps,
    }
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f)


def write_rotary():
    entries = []
    for R, base in ((2, 10000), (4, 5000.0), (12, 10000), (16, 10000), (20, 10000), (32, 10000),
                    (64, 10000), (128, 500000.0)):
        entries.append({"rotary": R, "base": base, "inv_freq_bits": f32_bits(inv_freq(R, base))})
    positions = list(range(32)) + [100, 1000, 2047, 4095, 65535, 1000000]
    cfg = {"hidden_size": 64, "num_attention_heads": 1, "rotary_pct": 0.25, "rotary_emb_base": 10000}
    cos, sin = rotary_tables(cfg, torch.tensor(positions))
    half = cos.shape[-1] // 2
    with open(os.path.join(OUT, "rotary.json"), "w") as f:
        json.dump({
            "torch": torch.__version__,
            "inv_freq": entries,
            "tables": {"rotary": 16, "base": 10000, "positions": positions,
                       "cos_bits": f32_bits(cos[:, :half]), "sin_bits": f32_bits(sin[:, :half])},
        }, f)


def write_gelu():
    g = torch.Generator().manual_seed(7)
    x = torch.cat((torch.linspace(-10, 10, 2001), torch.randn(2000, generator=g) * 3,
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 5.5, -5.5, 20.0, -20.0])))
    y = torch.nn.functional.gelu(x)
    # erf in double precision from the C library, for the accuracy of src/model/erf.ts.
    rng = np.random.default_rng(11)
    ex = [float(v) for v in np.concatenate((np.linspace(-6.5, 6.5, 1301), rng.normal(0, 2, 700),
                                            [1e-300, -1e-20, 0.5, -0.5, 4.0, -4.0, 26.0, 30.0]))]
    with open(os.path.join(OUT, "gelu.json"), "w") as f:
        json.dump({"torch": torch.__version__, "x_bits": f32_bits(x), "y_bits": f32_bits(y),
                   "erf_x": ex, "erf_y": [math.erf(v) for v in ex]}, f)


def write_160m():
    seed = 20240601
    ids = [510, 3158, 8516, 30013, 27287, 689, 253, 22658]
    sd = synthetic_state_dict(PYTHIA_160M_SHAPED, seed)
    logits = forward(sd, PYTHIA_160M_SHAPED, ids)
    with open(os.path.join(OUT, "pythia160m-shaped.json"), "w") as f:
        json.dump({
            "torch": torch.__version__,
            "config": PYTHIA_160M_SHAPED,
            "seed": seed,
            "ids": ids,
            "last_logits": f32_b64(logits[-1]),
        }, f)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    write_tiny("tiny-parallel", TINY["tiny-parallel"], 1, legacy_buffers=True)
    write_tiny("tiny-sequential", TINY["tiny-sequential"], 2, legacy_buffers=False)
    write_tiny("tiny-tied", TINY["tiny-tied"], 3, legacy_buffers=False)
    write_rotary()
    write_gelu()
    write_160m()


if __name__ == "__main__":
    main()

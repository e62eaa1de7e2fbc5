"""Reference GPT-NeoX forward pass in torch (float32), written from the spec
(shared/spec/torch-serialization.md §5.4) the way Hugging Face's eager GPTNeoXForCausalLM
computes it, plus the deterministic synthetic weights that src/model/synthetic.ts builds too.

Used by make_goldens.py (test fixtures) and bench/forward_torch.py (the torch baseline).
There is no transformers package here: every op is a plain torch op.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def head_dim(cfg):
    return cfg["hidden_size"] // cfg["num_attention_heads"]


def rotary_dims(cfg):
    # transformers: int(head_size * rotary_pct)
    return int(head_dim(cfg) * cfg["rotary_pct"])


def parameter_names(cfg):
    """(name, shape) of every parameter in state-dict order (src/hf/names.ts hfParameters)."""
    V, H, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    out = [("gpt_neox.embed_in.weight", (V, H))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (H,)),
            (p + "input_layernorm.bias", (H,)),
            (p + "post_attention_layernorm.weight", (H,)),
            (p + "post_attention_layernorm.bias", (H,)),
            (p + "attention.query_key_value.weight", (3 * H, H)),
            (p + "attention.query_key_value.bias", (3 * H,)),
            (p + "attention.dense.weight", (H, H)),
            (p + "attention.dense.bias", (H,)),
            (p + "mlp.dense_h_to_4h.weight", (I, H)),
            (p + "mlp.dense_h_to_4h.bias", (I,)),
            (p + "mlp.dense_4h_to_h.weight", (H, I)),
            (p + "mlp.dense_4h_to_h.bias", (H,)),
        ]
    out += [("gpt_neox.final_layer_norm.weight", (H,)), ("gpt_neox.final_layer_norm.bias", (H,))]
    if not cfg.get("tie_word_embeddings", False):
        out.append(("embed_out.weight", (V, H)))
    return out


M32 = 0xFFFFFFFF


def _mix(x):
    """lowbias32 on a uint32 numpy array (products wrap mod 2^32)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def synthetic_tensor(name, shape, index, seed):
    """The float32 values of parameter `index`, exactly as src/model/synthetic.ts makes them."""
    n = int(np.prod(shape))
    key = _mix(np.array([(seed + 0x9E3779B9 * (index + 1)) & M32], dtype=np.uint32))[0]
    u = _mix(np.arange(n, dtype=np.uint32) ^ key)
    if len(shape) == 2:
        scale = 2.0 ** (-10 - math.floor(math.log2(shape[1]) / 2 + 0.5))
        v = ((u >> np.uint32(21)).astype(np.int64) - 1024).astype(np.float64) * scale
    elif name.endswith("layernorm.weight") or name.endswith("layer_norm.weight"):
        v = 1.0 + ((u >> np.uint32(24)).astype(np.int64) - 128).astype(np.float64) * 2.0**-10
    else:
        v = ((u >> np.uint32(21)).astype(np.int64) - 1024).astype(np.float64) * 2.0**-16
    t = torch.from_numpy(v.astype(np.float32)).reshape(shape)
    # Every value is a float16 by construction: the round trip must be the identity.
    assert torch.equal(t.half().float(), t), name
    return t


def synthetic_state_dict(cfg, seed):
    return {
        name: synthetic_tensor(name, shape, i, seed)
        for i, (name, shape) in enumerate(parameter_names(cfg))
    }


def inv_freq(R, base):
    # GPTNeoXRotaryEmbedding: 1 / base ** (arange(0, R, 2).float() / R), float32 throughout
    return 1.0 / (base ** (torch.arange(0, R, 2, dtype=torch.int64).float() / R))


def rotary_tables(cfg, positions):
    R = rotary_dims(cfg)
    f = torch.outer(positions.float(), inv_freq(R, cfg["rotary_emb_base"]))
    emb = torch.cat((f, f), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Cache:
    """Per-layer keys (after rotary) and values, [nh, S, hd] each."""

    def __init__(self, n_layers):
        self.k = [None] * n_layers
        self.v = [None] * n_layers

    @property
    def length(self):
        return 0 if self.k[0] is None else self.k[0].shape[1]


@torch.inference_mode()
def forward(sd, cfg, ids, cache=None):
    """Logits [T, V] of `ids` (a list of ints), continuing `cache` when given."""
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd, R = head_dim(cfg), rotary_dims(cfg)
    eps = cfg["layer_norm_eps"]
    L = cfg["num_hidden_layers"]
    past = cache.length if cache is not None else 0
    T = len(ids)
    cos, sin = rotary_tables(cfg, torch.arange(past, past + T))
    scaling = hd**-0.5
    ids_t = torch.tensor(ids, dtype=torch.int64)
    h = sd["gpt_neox.embed_in.weight"][ids_t]
    S = past + T
    allowed = torch.arange(S)[None, :] <= (past + torch.arange(T))[:, None]  # [T, S]
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        ln = lambda x, n: F.layer_norm(x, (H,), sd[p + n + ".weight"], sd[p + n + ".bias"], eps)
        x1 = ln(h, "input_layernorm")
        qkv = F.linear(x1, sd[p + "attention.query_key_value.weight"],
                       sd.get(p + "attention.query_key_value.bias"))
        qkv = qkv.view(T, nh, 3 * hd).permute(1, 0, 2)  # [nh, T, 3hd]: per-head fused layout
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q = torch.cat((q[..., :R] * cos + rotate_half(q[..., :R]) * sin, q[..., R:]), dim=-1)
        k = torch.cat((k[..., :R] * cos + rotate_half(k[..., :R]) * sin, k[..., R:]), dim=-1)
        if cache is not None:
            if cache.k[i] is not None:
                k = torch.cat((cache.k[i], k), dim=1)
                v = torch.cat((cache.v[i], v), dim=1)
            cache.k[i], cache.v[i] = k, v
        scores = torch.matmul(q, k.transpose(-1, -2)) * scaling
        scores = scores.masked_fill(~allowed, torch.finfo(torch.float32).min)
        w = F.softmax(scores, dim=-1, dtype=torch.float32)
        o = torch.matmul(w, v).permute(1, 0, 2).reshape(T, H)
        attn = F.linear(o, sd[p + "attention.dense.weight"], sd.get(p + "attention.dense.bias"))

        def mlp(x):
            y = F.linear(x, sd[p + "mlp.dense_h_to_4h.weight"], sd[p + "mlp.dense_h_to_4h.bias"])
            y = F.gelu(y)
            return F.linear(y, sd[p + "mlp.dense_4h_to_h.weight"], sd[p + "mlp.dense_4h_to_h.bias"])

        if cfg["use_parallel_residual"]:
            h = mlp(ln(h, "post_attention_layernorm")) + attn + h
        else:
            h1 = attn + h
            h = mlp(ln(h1, "post_attention_layernorm")) + h1
    h = F.layer_norm(h, (H,), sd["gpt_neox.final_layer_norm.weight"],
                     sd["gpt_neox.final_layer_norm.bias"], eps)
    head = sd["gpt_neox.embed_in.weight"] if cfg.get("tie_word_embeddings") else sd["embed_out.weight"]
    return F.linear(h, head)


PYTHIA_160M_SHAPED = {
    "vocab_size": 50304,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "rotary_pct": 0.25,
    "rotary_emb_base": 10000,
    "layer_norm_eps": 1e-5,
    "use_parallel_residual": True,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
    "hidden_act": "gelu",
}

#!/usr/bin/python3
"""Train the tiny "pythia-micro" series: a genuine GPT-NeoX / Pythia-architecture model,
trained in fp32 on CPU for 143,000 optimizer steps with the Pythia optimizer recipe, keeping
fp32 master weights and Adam moments at the Pythia checkpoint steps.

Usage (from the repository root; Debian's torch 1.13, no other dependencies):

    /usr/bin/python3 tools/demo/make_tokenizer.py        # -> data/pythia-micro/tokenizer.json
    /usr/bin/python3 tools/demo/train_pythia_micro.py    # -> data/pythia-micro/series.pt, .yml

    /usr/bin/python3 tools/demo/train_pythia_micro.py --bench 300   # time 300 steps, write nothing

Architecture (GPT-NeoX as released for Pythia, HF GPTNeoX parameter names):
  parallel ("gpt-j") residual  h' = (mlp(ln2(h)) + attn(ln1(h))) + h
  partial rotary (rotary_pct 0.25, rotate-half / NeoX style, base 10000)
  LayerNorm eps 1e-5, exact (erf) GELU, untied embed_in / embed_out, biases everywhere
  fused QKV laid out per head: rows [nh, 3, hd]
Init: small_init (normal, std sqrt(2/(5H))) for all weights incl. both embeddings,
wang_init (std 2/(L*sqrt(H))) for attention.dense and mlp.dense_4h_to_h; biases 0,
LayerNorm weight 1 / bias 0.
Optimizer: Adam with decoupled weight decay exactly like DeepSpeed/apex FusedAdam in
adam_w_mode (bias correction on):  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
  p -= lr * ( (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + wd * p )
Two NeoX parameter groups (get_params_for_weight_decay_optimization), global-norm gradient
clipping at 1.0, AnnealingLR warmup + cosine schedule.
Data: random 65-token windows (64 inputs + shifted targets) from the first 90% of the
tokenized corpus, 8 per step (fixed seed); held-out loss on the last 10% in non-overlapping
windows, evaluated at every snapshot (no dropout).

Deviation from Pythia: hidden and attention dropout 0.1 (NeoX's defaults; Pythia used 0).
With 0 the model memorises the ~17k training tokens and its held-out loss rises back above the
initial value (measured: 3.54 at step 2000, 5.63 at 32000, 6.33 at 64000, vs 5.76 at step 0).

LR convention: the t-th optimizer step (t = 1 .. 143000) uses lr(t), with
  lr(t) = max_lr * t / warmup                                   for t <= warmup
  lr(t) = min_lr + (max_lr - min_lr)/2 * (cos(pi (t-warmup)/(decay-warmup)) + 1)  after.
The snapshot at step k records lr(k) (lr(0) = 0 for the initialisation snapshot). This is
also the lr that a NeoX checkpoint at iteration k stores in its optimizer param_groups.
(Real NeoX applies lr(t-1) at step t, i.e. its very first step has lr 0; we shift by one so
that step 1 actually moves the weights.)
"""

import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from make_tokenizer import ByteLevelBPE  # noqa: E402

CONFIG = {
    # shape
    "num_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "head_dim": 16,
    "rotary_pct": 0.25,
    "rotary_dims": 4,
    "rotary_emb_base": 10000,
    "intermediate_size": 128,
    "seq_length": 64,
    "max_position_embeddings": 64,
    "tokenizer_vocab_size": None,  # filled from tokenizer.json
    "make_vocab_size_divisible_by": 128,
    "model_parallel_size": 2,
    "padded_vocab_size": 256,
    "layernorm_epsilon": 1e-5,
    "activation": "gelu (exact erf)",
    "pos_emb": "rotary",
    "gpt_j_residual": True,
    "no_weight_tying": True,
    "output_layer_parallelism": "column",
    "init_method": "small_init",
    "output_layer_init_method": "wang_init",
    "small_init_std": math.sqrt(2.0 / (5 * 32)),
    "wang_init_std": 2.0 / (2 * math.sqrt(32)),
    # optimizer
    "optimizer": "Adam (decoupled weight decay, FusedAdam adam_w_mode, bias correction)",
    "lr": 1e-3,
    "min_lr": 1e-4,
    "betas": [0.9, 0.95],
    "eps": 1e-8,
    "weight_decay": 0.1,
    # Deviation from Pythia (0.0): NeoX's default dropout 0.1. Without it the 42k-parameter
    # model memorises the ~17k training tokens and the held-out loss climbs back above its
    # initial value long before step 143000.
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "gradient_clipping": 1.0,
    "train_iters": 143000,
    "lr_decay_iters": 143000,
    "lr_decay_style": "cosine",
    "warmup": 0.01,
    "warmup_iters": 1430,
    "lr_convention": "step t (1-based) uses lr(t); snapshot k records lr(k)",
    # data
    "micro_batch_size": 8,  # 8 x 64 tokens: about 15 min for the run on 2 idle cores
    "gradient_accumulation_steps": 1,
    "data_parallel_size": 1,
    "train_fraction": 0.9,
    "seed": 1234,
    "precision": "fp32 (CPU)",
    "train_loss_window": 100,
    "loss_curve_interval": 100,
}

SNAPSHOT_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
                  1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 143000]


# --------------------------------------------------------------------------------------------
# model


def param_specs(cfg):
    """(name, shape, init) in NeoX named_parameters() order (pipeline layer order:
    embedding, transformer layers with module registration order, final norm, final linear)."""
    V, H, I, L = cfg["padded_vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_layers"]
    specs = [("gpt_neox.embed_in.weight", (V, H), "small")]
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (H,), "one"),
            (p + "input_layernorm.bias", (H,), "zero"),
            (p + "attention.query_key_value.weight", (3 * H, H), "small"),
            (p + "attention.query_key_value.bias", (3 * H,), "zero"),
            (p + "attention.dense.weight", (H, H), "wang"),
            (p + "attention.dense.bias", (H,), "zero"),
            (p + "post_attention_layernorm.weight", (H,), "one"),
            (p + "post_attention_layernorm.bias", (H,), "zero"),
            (p + "mlp.dense_h_to_4h.weight", (I, H), "small"),
            (p + "mlp.dense_h_to_4h.bias", (I,), "zero"),
            (p + "mlp.dense_4h_to_h.weight", (H, I), "wang"),
            (p + "mlp.dense_4h_to_h.bias", (H,), "zero"),
        ]
    specs += [
        ("gpt_neox.final_layer_norm.weight", (H,), "one"),
        ("gpt_neox.final_layer_norm.bias", (H,), "zero"),
        ("embed_out.weight", (V, H), "small"),
    ]
    return specs


def is_norm_param(name):
    return "layernorm" in name or "layer_norm" in name


def weight_decay_groups(names):
    """NeoX get_params_for_weight_decay_optimization: group 0 = non-bias params of non-norm
    modules (weight decay), group 1 = all params of norm modules + every bias (no decay)."""
    g0 = [n for n in names if not is_norm_param(n) and not n.endswith(".bias")]
    g1 = [n for n in names if is_norm_param(n) or n.endswith(".bias")]
    return g0, g1


def lin(x, weight, bias):
    """y = x @ weight.T + bias over the last dim, computed as a 1x1 convolution (oneDNN)."""
    shape = x.shape
    y = F.conv1d(x.reshape(-1, shape[-1], 1), weight.unsqueeze(-1), bias)
    return y.view(*shape[:-1], weight.shape[0])


class FlatModel:
    """All parameters live as views in one flat fp32 buffer (like DeepSpeed's flat groups);
    gradients accumulate in-place into views of one flat gradient buffer."""

    def __init__(self, cfg, gen):
        self.cfg = cfg
        self.specs = param_specs(cfg)
        self.names = [s[0] for s in self.specs]
        self.numel = sum(math.prod(s[1]) for s in self.specs)
        self.flat = torch.zeros(self.numel, dtype=torch.float32)
        self.flat_grad = torch.zeros(self.numel, dtype=torch.float32)
        self.params = {}
        self.offsets = {}
        off = 0
        small, wang = cfg["small_init_std"], cfg["wang_init_std"]
        for name, shape, init in self.specs:
            n = math.prod(shape)
            view = self.flat[off:off + n].view(shape)
            if init == "small":
                view.normal_(0.0, small, generator=gen)
            elif init == "wang":
                view.normal_(0.0, wang, generator=gen)
            elif init == "one":
                view.fill_(1.0)
            else:
                view.zero_()
            p = torch.nn.Parameter(view)  # shares storage with self.flat
            p.grad = self.flat_grad[off:off + n].view(shape)
            self.params[name] = p
            self.offsets[name] = (off, n, shape)
            off += n
        assert off == self.numel

        H = cfg["hidden_size"]
        nh = cfg["num_attention_heads"]
        hd = H // nh
        R = int(hd * cfg["rotary_pct"])
        T = cfg["max_position_embeddings"]
        assert R == cfg["rotary_dims"] and hd == cfg["head_dim"]
        # rotary tables (HF GPTNeoXRotaryEmbedding: exponent and power in float32)
        inv_freq = 1.0 / (cfg["rotary_emb_base"] ** (torch.arange(0, R, 2, dtype=torch.float32) / R))
        t = torch.arange(T, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)  # [T, R/2]
        # HF builds cos/sin over R dims as two copies of the R/2 angles; we keep one copy and
        # apply rotate-half explicitly: x'[m] = x[m] cos - x[m+R/2] sin,
        # x'[m+R/2] = x[m+R/2] cos + x[m] sin (bit-identical to x*cos + rotate_half(x)*sin).
        # shapes broadcast against [B, T, nh, 2(q,k), R/2]
        self.rot_cos = freqs.cos().view(T, 1, 1, R // 2)
        self.rot_sin = freqs.sin().view(T, 1, 1, R // 2)
        self.causal_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        self.nh, self.hd, self.R = nh, hd, R
        self.eps = cfg["layernorm_epsilon"]
        self.hidden_dropout = cfg["hidden_dropout"]
        self.attn_dropout = cfg["attention_dropout"]
        self.dropout_gen = torch.Generator().manual_seed(cfg["seed"] + 2)

    def forward(self, tokens, train=False):
        """tokens [B, T] -> logits [B, T, V] (float32).

        Every matrix product is written as a 1x1 convolution (`lin`, `attention`): Debian's
        torch is linked against the reference (netlib) BLAS, which makes `mm`/`bmm` several
        times slower than oneDNN's convolution kernels at these sizes. The maths is the plain
        GPT-NeoX forward (checked against `reference_forward` at start-up)."""
        P = self.params
        cfg = self.cfg
        B, T = tokens.shape
        H, nh, hd = cfg["hidden_size"], self.nh, self.hd
        eps = self.eps
        cos, sin = self.rot_cos[:T], self.rot_sin[:T]
        R, half = self.R, self.R // 2
        mask = self.causal_mask[:T, :T].view(T, 1, T)
        scale = 1.0 / math.sqrt(hd)
        G = B * nh
        h = F.embedding(tokens, P["gpt_neox.embed_in.weight"])  # [B, T, H]
        for i in range(cfg["num_layers"]):
            p = f"gpt_neox.layers.{i}."
            x1 = F.layer_norm(h, (H,), P[p + "input_layernorm.weight"], P[p + "input_layernorm.bias"], eps)
            qkv = lin(x1, P[p + "attention.query_key_value.weight"], P[p + "attention.query_key_value.bias"])
            qkv = qkv.view(B, T, nh, 3, hd)  # fused QKV is laid out per head
            # partial rotary (rotate-half, NeoX style) on the first R dims of q and k
            qk = qkv[:, :, :, :2, :]
            a, b = qk[..., :half], qk[..., half:R]
            qk = torch.cat([a * cos - b * sin, b * cos + a * sin, qk[..., R:]], dim=-1)
            q = qk[:, :, :, 0, :] * scale                 # [B, T, nh, hd]
            k = qk[:, :, :, 1, :]
            v = qkv[:, :, :, 2, :]
            # scores s[t, g, u] = q[g, t] . k[g, u] for each (batch, head) g, as a grouped conv
            q_in = q.permute(1, 0, 2, 3).reshape(T, G * hd, 1)
            k_w = k.permute(0, 2, 1, 3).reshape(G * T, hd, 1)
            s = F.conv1d(q_in, k_w, groups=G).view(T, G, T)
            s = s.masked_fill(mask, torch.finfo(torch.float32).min)
            w = torch.softmax(s, dim=-1)
            if train and self.attn_dropout > 0:
                w = self.dropout(w, self.attn_dropout)
            # o[t, g] = sum_u w[t, g, u] v[g, u]
            v_w = v.permute(0, 2, 3, 1).reshape(G * hd, T, 1)
            o = F.conv1d(w.reshape(T, G * T, 1), v_w, groups=G).view(T, B, nh * hd)
            o = o.permute(1, 0, 2)  # [B, T, H], heads concatenated in head order
            attn = lin(o, P[p + "attention.dense.weight"], P[p + "attention.dense.bias"])
            if train and self.hidden_dropout > 0:
                attn = self.dropout(attn, self.hidden_dropout)
            x2 = F.layer_norm(h, (H,), P[p + "post_attention_layernorm.weight"],
                              P[p + "post_attention_layernorm.bias"], eps)
            m = lin(x2, P[p + "mlp.dense_h_to_4h.weight"], P[p + "mlp.dense_h_to_4h.bias"])
            m = F.gelu(m)  # exact erf GELU
            m = lin(m, P[p + "mlp.dense_4h_to_h.weight"], P[p + "mlp.dense_4h_to_h.bias"])
            if train and self.hidden_dropout > 0:
                m = self.dropout(m, self.hidden_dropout)
            h = (m + attn) + h  # parallel (gpt-j) residual
        h = F.layer_norm(h, (H,), P["gpt_neox.final_layer_norm.weight"], P["gpt_neox.final_layer_norm.bias"], eps)
        return lin(h, P["embed_out.weight"], None)

    def dropout(self, x, p):
        """Inverted dropout (as F.dropout) with masks from torch.rand on a dedicated generator:
        ~3x cheaper than F.dropout's bernoulli_ on this CPU build."""
        keep = torch.rand(x.shape, generator=self.dropout_gen).ge_(p).mul_(1.0 / (1.0 - p))
        return x * keep

    def loss(self, batch, train=False):
        """batch [B, T+1] token ids -> mean next-token cross entropy."""
        logits = self.forward(batch[:, :-1], train)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))

    def unflatten(self, flat):
        out = {}
        for name in self.names:
            off, n, shape = self.offsets[name]
            out[name] = flat[off:off + n].view(shape).clone()
        return out


def reference_forward(params, tokens, cfg):
    """Straightforward per-head reimplementation of spec §5.4 (HF GPTNeoX), used as a check."""
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = H // nh
    R = int(hd * cfg["rotary_pct"])
    T = tokens.shape[0]
    eps = cfg["layernorm_epsilon"]
    inv_freq = 1.0 / (cfg["rotary_emb_base"] ** (torch.arange(0, R, 2, dtype=torch.float32) / R))
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    cos = torch.cat([ang, ang], -1).cos()
    sin = torch.cat([ang, ang], -1).sin()

    def rot(x):  # x [T, hd]
        xr, xp = x[:, :R], x[:, R:]
        x1, x2 = xr[:, :R // 2], xr[:, R // 2:]
        rh = torch.cat([-x2, x1], -1)
        return torch.cat([xr * cos + rh * sin, xp], -1)

    def ln(x, w, b):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * w + b

    h = params["gpt_neox.embed_in.weight"][tokens]
    for i in range(cfg["num_layers"]):
        p = f"gpt_neox.layers.{i}."
        x1 = ln(h, params[p + "input_layernorm.weight"], params[p + "input_layernorm.bias"])
        qkv = x1 @ params[p + "attention.query_key_value.weight"].T + params[p + "attention.query_key_value.bias"]
        outs = []
        for j in range(nh):
            q = rot(qkv[:, j * 3 * hd: j * 3 * hd + hd])
            k = rot(qkv[:, j * 3 * hd + hd: j * 3 * hd + 2 * hd])
            v = qkv[:, j * 3 * hd + 2 * hd: (j + 1) * 3 * hd]
            s = q @ k.T / math.sqrt(hd)
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
            outs.append(torch.softmax(s, -1) @ v)
        attn = torch.cat(outs, -1) @ params[p + "attention.dense.weight"].T + params[p + "attention.dense.bias"]
        x2 = ln(h, params[p + "post_attention_layernorm.weight"], params[p + "post_attention_layernorm.bias"])
        z = x2 @ params[p + "mlp.dense_h_to_4h.weight"].T + params[p + "mlp.dense_h_to_4h.bias"]
        z = 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))
        m = z @ params[p + "mlp.dense_4h_to_h.weight"].T + params[p + "mlp.dense_4h_to_h.bias"]
        h = (m + attn) + h
    h = ln(h, params["gpt_neox.final_layer_norm.weight"], params["gpt_neox.final_layer_norm.bias"])
    return h @ params["embed_out.weight"].T


# --------------------------------------------------------------------------------------------
# optimizer and schedule


def adamw_step(param, grad, exp_avg, exp_avg_sq, wd, lr, step, b1, b2, eps):
    """One FusedAdam (adam_w_mode=True, bias_correction=True) update, in place, on flat fp32
    buffers; `wd` is the per-element weight decay (0.1 for group 0, 0 for group 1)."""
    exp_avg.mul_(b1).add_(grad, alpha=1 - b1)
    exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    bc1 = 1 - b1 ** step
    bc2 = 1 - b2 ** step
    denom = (exp_avg_sq / bc2).sqrt_().add_(eps)
    update = (exp_avg / bc1).div_(denom)
    update.addcmul_(wd, param)
    param.add_(update, alpha=-lr)


def lr_at(step, cfg):
    """NeoX AnnealingLR (cosine) evaluated at iteration count `step`."""
    max_lr, min_lr = cfg["lr"], cfg["min_lr"]
    warmup, decay = cfg["warmup_iters"], cfg["lr_decay_iters"]
    if warmup > 0 and step <= warmup:
        return max_lr * step / warmup
    if step > decay:
        return min_lr
    n = step - warmup
    end = decay - warmup
    lr = min_lr + (max_lr - min_lr) / 2.0 * (math.cos(math.pi * n / end) + 1)
    return max(lr, min_lr)


# --------------------------------------------------------------------------------------------
# YAML


def write_yaml(path, cfg):
    text = f"""# pythia-micro: a tiny GPT-NeoX model trained with the Pythia recipe (see tools/demo/README.md).
# Written in the style of EleutherAI/pythia models/70M/pythia-70m.yml. The series in series.pt
# was produced by tools/demo/train_pythia_micro.py (fp32 on CPU, one process); the parallelism
# and fp16 settings below describe the NeoX run this series stands in for: tensor parallel 2,
# padded vocabulary = multiple of 128 x 2 = 256.
{{
  # parallelism settings
  "pipe-parallel-size": 1,
  "model-parallel-size": {cfg["model_parallel_size"]},

  # model settings
  "num-layers": {cfg["num_layers"]},
  "hidden-size": {cfg["hidden_size"]},
  "num-attention-heads": {cfg["num_attention_heads"]},
  "seq-length": {cfg["seq_length"]},
  "max-position-embeddings": {cfg["max_position_embeddings"]},
  "pos-emb": "rotary",
  "rotary-pct": {cfg["rotary_pct"]},
  "rotary-emb-base": {cfg["rotary_emb_base"]},
  "no-weight-tying": true,
  "gpt-j-residual": true,
  "output-layer-parallelism": "column",
  "norm": "layernorm",
  "layernorm-epsilon": 1.0e-5,
  # intermediate size is 4 x hidden-size (128)

  "attention-config": [[["global"], {cfg["num_layers"]}]],

  "scaled-upper-triang-masked-softmax-fusion": false,
  "bias-gelu-fusion": false,

  # init methods
  "init_method": "small_init",
  "output_layer_init_method": "wang_init",

  # optimizer settings
  "optimizer": {{
    "type": "Adam",
    "params": {{
      "lr": 0.001,
      "betas": [0.9, 0.95],
      "eps": 1.0e-8
    }}
  }},
  "min_lr": 0.0001,

  "zero_optimization": {{
    "stage": 1,
    "allgather_partitions": true,
    "allgather_bucket_size": 500000000,
    "overlap_comm": true,
    "reduce_scatter": true,
    "reduce_bucket_size": 500000000,
    "contiguous_gradients": true,
    "cpu_offload": false
  }},

  # batch size (one data-parallel rank)
  "train_micro_batch_size_per_gpu": {cfg["micro_batch_size"]},
  "gradient_accumulation_steps": 1,
  "data-impl": "mmap",
  "num_workers": 1,

  # activation checkpointing
  "checkpoint-activations": false,
  "checkpoint-num-layers": 1,
  "partition-activations": false,
  "synchronize-each-layer": true,

  # regularization
  "gradient_clipping": 1.0,
  "weight-decay": 0.1,
  # Pythia used 0; this series uses NeoX's default 0.1 (tiny corpus, see README)
  "hidden-dropout": {cfg["hidden_dropout"]},
  "attention-dropout": {cfg["attention_dropout"]},

  # precision settings
  "precision": "fp16",
  "fp16": {{
    "fp16": true,
    "enabled": true,
    "loss_scale": 0,
    "loss_scale_window": 1000,
    "initial_scale_power": 12,
    "hysteresis": 2,
    "min_loss_scale": 1
  }},

  # training schedule
  "train-iters": {cfg["train_iters"]},
  "lr-decay-iters": {cfg["lr_decay_iters"]},
  "distributed-backend": "nccl",
  "lr-decay-style": "cosine",
  "warmup": {cfg["warmup"]},
  "checkpoint-factor": 1000,
  "extra-save-iters": [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  "eval-interval": 143000,
  "eval-iters": 10,

  "log-grad-norm": true,
  "log-interval": 100,
  "steps_per_print": 100,
  "wall_clock_breakdown": false,

  # tokenizer settings (trained on tools/demo/corpus.txt, {cfg["tokenizer_vocab_size"]} tokens)
  "tokenizer-type": "HFTokenizer",
  "vocab-file": "tokenizer.json",
  "make-vocab-size-divisible-by": 128,

  "seed": {cfg["seed"]},
  "launcher": "pdsh"
}}
"""
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------------------------
# main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", type=int, default=0, help="time this many steps and exit")
    ap.add_argument("--batch", type=int, default=CONFIG["micro_batch_size"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden-dropout", type=float, default=CONFIG["hidden_dropout"])
    ap.add_argument("--attention-dropout", type=float, default=CONFIG["attention_dropout"])
    ap.add_argument("--weight-decay", type=float, default=CONFIG["weight_decay"])
    ap.add_argument("--stop-after", type=int, default=0,
                    help="testing only: stop after this many steps (schedule unchanged) and save")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "pythia-micro"))
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus.txt"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = dict(CONFIG)
    cfg["micro_batch_size"] = args.batch
    cfg["hidden_dropout"] = args.hidden_dropout
    cfg["attention_dropout"] = args.attention_dropout
    cfg["weight_decay"] = args.weight_decay

    tok = ByteLevelBPE.load(os.path.join(args.out, "tokenizer.json"))
    cfg["tokenizer_vocab_size"] = tok.vocab_size
    assert tok.vocab_size <= cfg["padded_vocab_size"]
    with open(args.corpus, "r", encoding="ascii") as f:
        text = f.read()
    ids = torch.tensor(tok.encode(text), dtype=torch.long)
    n_train = int(len(ids) * cfg["train_fraction"])
    train_ids, eval_ids = ids[:n_train], ids[n_train:]
    T = cfg["seq_length"]
    cfg["corpus_tokens"] = len(ids)
    cfg["train_tokens"] = len(train_ids)
    cfg["eval_tokens"] = len(eval_ids)
    print(f"corpus: {len(text)} chars, {len(ids)} tokens ({len(train_ids)} train, {len(eval_ids)} held out)",
          flush=True)

    # held-out windows: non-overlapping, every held-out token after the first predicted once
    n_eval = (len(eval_ids) - 1) // T
    eval_batch = torch.stack([eval_ids[j * T: j * T + T + 1] for j in range(n_eval)])
    cfg["eval_windows"] = n_eval

    torch.manual_seed(cfg["seed"])
    gen_init = torch.Generator().manual_seed(cfg["seed"])
    gen_data = torch.Generator().manual_seed(cfg["seed"] + 1)
    model = FlatModel(cfg, gen_init)
    names = model.names
    g0, g1 = weight_decay_groups(names)
    print(f"parameters: {model.numel} ({len(names)} tensors; group0 {len(g0)}, group1 {len(g1)})", flush=True)

    # check the batched forward against the per-head reference (spec §5.4)
    with torch.no_grad():
        probe = eval_batch[0, :T]
        a = model.forward(probe.unsqueeze(0))[0]
        b = reference_forward(model.params, probe, cfg)
        diff = (a - b).abs().max().item()
    print(f"forward vs per-head reference: max |diff| = {diff:.3e}", flush=True)
    assert diff < 1e-4

    # Adam state on flat buffers, per-element weight decay from the two groups
    wd = torch.zeros(model.numel)
    for name in g0:
        off, n, _ = model.offsets[name]
        wd[off:off + n] = cfg["weight_decay"]
    exp_avg = torch.zeros(model.numel)
    exp_avg_sq = torch.zeros(model.numel)
    b1, b2 = cfg["betas"]
    eps = cfg["eps"]
    clip = cfg["gradient_clipping"]
    B = cfg["micro_batch_size"]
    offsets_T1 = torch.arange(T + 1)
    max_start = len(train_ids) - (T + 1)

    def next_batch():
        starts = torch.randint(0, max_start + 1, (B,), generator=gen_data)
        return train_ids[starts.unsqueeze(1) + offsets_T1]

    def eval_loss():
        with torch.no_grad():
            return model.loss(eval_batch).item()

    total = cfg["train_iters"] if not args.bench else args.bench
    if args.stop_after:
        total = args.stop_after
    losses = torch.zeros(total + 1)
    snapshots = {}
    curve = []
    flat, flat_grad = model.flat, model.flat_grad
    param_list = [model.params[n] for n in names]

    def snapshot(step, lr, train_loss):
        snapshots[str(step)] = {
            "lr": float(lr),
            "adam_step": int(step),
            "train_loss": float(train_loss),
            "eval_loss": float(eval_loss()),
            "fp32": model.unflatten(flat),
            "exp_avg": model.unflatten(exp_avg),
            "exp_avg_sq": model.unflatten(exp_avg_sq),
        }
        s = snapshots[str(step)]
        print(f"snapshot step {step:6d}: lr {s['lr']:.6e} train_loss {s['train_loss']:.4f} "
              f"eval_loss {s['eval_loss']:.4f}  [{time.time() - t_start:.1f}s]", flush=True)

    # step-0 snapshot: initial model, train loss measured on the first training batch
    # (the batch step 1 will use; the data generator is restored afterwards)
    t_start = time.time()
    if not args.bench:
        state = gen_data.get_state()
        with torch.no_grad():
            l0 = model.loss(next_batch()).item()
        gen_data.set_state(state)
        snapshot(0, lr_at(0, cfg), l0)

    snap_set = set(SNAPSHOT_STEPS)
    t0 = time.time()
    for step in range(1, total + 1):
        batch = next_batch()
        flat_grad.zero_()
        loss = model.loss(batch, train=True)
        loss.backward()
        losses[step] = loss.detach()
        # global-norm clipping (DeepSpeed/Megatron: coef = max_norm / (norm + 1e-6))
        gnorm = flat_grad.norm()
        coef = torch.clamp(clip / (gnorm + 1e-6), max=1.0)
        flat_grad.mul_(coef)
        lr = lr_at(step, cfg)
        with torch.no_grad():
            adamw_step(flat, flat_grad, exp_avg, exp_avg_sq, wd, lr, step, b1, b2, eps)
        if step % cfg["loss_curve_interval"] == 0:
            curve.append((step, losses[step - 99: step + 1].mean().item()))
        if args.bench:
            continue
        if step in snap_set:
            lo = max(1, step - cfg["train_loss_window"] + 1)
            snapshot(step, lr, losses[lo: step + 1].mean().item())
        if step % 5000 == 0:
            el = time.time() - t0
            print(f"step {step} loss(100) {curve[-1][1]:.4f} {el:.0f}s elapsed, "
                  f"{el / step * 1e3:.2f} ms/step, eta {el / step * (total - step):.0f}s", flush=True)
    elapsed = time.time() - t0
    print(f"{total} steps in {elapsed:.1f}s ({elapsed / total * 1e3:.3f} ms/step), batch {B}", flush=True)
    if args.bench:
        print("loss first/last:", losses[1].item(), losses[total].item())
        return

    # sanity: param grads still alias the flat gradient buffer
    assert all(p.grad.data_ptr() == flat_grad[model.offsets[n][0]:].data_ptr() for n, p in zip(names, param_list))

    cfg["train_seconds"] = round(elapsed, 1)
    cfg["ms_per_step"] = round(elapsed / total * 1e3, 3)
    cfg["torch_version"] = torch.__version__
    cfg["snapshot_steps"] = SNAPSHOT_STEPS
    out = {
        "format": "neox-ckpt/pythia-micro-series",
        "version": 1,
        "config": cfg,
        "param_names": names,
        "param_groups": [g0, g1],
        "steps": [k for k in SNAPSHOT_STEPS if str(k) in snapshots],
        "snapshots": snapshots,
        "loss_curve": torch.tensor(curve, dtype=torch.float32),
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "series.pt")
    torch.save(out, path)
    write_yaml(os.path.join(args.out, "pythia-micro.yml"), cfg)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)


if __name__ == "__main__":
    main()

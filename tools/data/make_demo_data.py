#!/usr/bin/env python3
"""The training data of the demo series (pythia-micro) as a Megatron indexed dataset, and
goldens computed by torch on it: the loss of demo checkpoints on a step's own batch and the
memorization scores of training items.

The demo trainer (tools/demo/train_pythia_micro.py) draws each step's batch as 8 random windows
of seq_length + 1 = 65 tokens of the tokenized training text, from torch.randint with a
generator seeded `seed + 1`; nothing else draws from that generator. Replaying it gives the
items iteration i trained on (the trainer's step i + 1), so items [8i, 8i + 8) of this dataset
are that batch, exactly as in Pythia's data (spec section 3) with a batch size of 8 and items of
65 tokens. The first 1025 iterations are written (1.1 MB), enough for the checkpoints 0 ... 1000
and their next batch; the replay is checked against the loss the trainer recorded for step 0.

Run from the repository root with Debian's torch: /usr/bin/python3 tools/data/make_demo_data.py
Writes data/pythia-micro/train/ (document.idx, document.bin: the demo's training data, shipped
with the package) and test/fixtures/data/demo-goldens.json.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "common"))
sys.path.insert(0, os.path.join(ROOT, "tools", "model"))
sys.path.insert(0, os.path.join(ROOT, "tools", "demo"))
from demo_series import hf_config, load_series, weights as series_weights  # noqa: E402
from make_fixtures import index_bytes  # noqa: E402
from make_tokenizer import ByteLevelBPE  # noqa: E402
from neox_ref import forward  # noqa: E402

ITERATIONS = 1025
OUT = os.path.join(ROOT, "test", "fixtures", "data")
TRAIN = os.path.join(ROOT, "data", "pythia-micro", "train")

series = load_series()
c = series["config"]
cfg = hf_config(c)


def training_batches():
    """The batches of iterations 0 ... ITERATIONS - 1, replayed as the trainer drew them."""
    tok = ByteLevelBPE.load(os.path.join(ROOT, "data", "pythia-micro", "tokenizer.json"))
    with open(os.path.join(ROOT, "tools", "demo", "corpus.txt"), "r", encoding="ascii") as f:
        ids = torch.tensor(tok.encode(f.read()), dtype=torch.long)
    assert len(ids) == c["corpus_tokens"], (len(ids), c["corpus_tokens"])
    train_ids = ids[: int(len(ids) * c["train_fraction"])]
    assert len(train_ids) == c["train_tokens"]
    T, B = c["seq_length"], c["micro_batch_size"]
    gen = torch.Generator().manual_seed(c["seed"] + 1)
    offsets = torch.arange(T + 1)
    max_start = len(train_ids) - (T + 1)
    out = []
    for _ in range(ITERATIONS):
        starts = torch.randint(0, max_start + 1, (B,), generator=gen)
        out.append(train_ids[starts.unsqueeze(1) + offsets])
    return torch.cat(out)  # [ITERATIONS * B, T + 1]


def weights(step, half=True):
    return series_weights(series, step, half)


def item_loss(sd, item):
    with torch.no_grad():
        logits = forward(sd, cfg, item[:-1].tolist()).float()
    return F.cross_entropy(logits, item[1:]).item()


def greedy(sd, context, n):
    """n greedy tokens after `context`, and the top-1 / top-2 logit gap at each (a reader whose
    float32 sums differ in order may pick the other of two logits closer than its error)."""
    ids = list(context)
    out, margins = [], []
    for _ in range(n):
        with torch.no_grad():
            last = forward(sd, cfg, ids).float()[-1]
        top = torch.topk(last, 2)
        margins.append((top.values[0] - top.values[1]).item())
        nxt = int(torch.argmax(last))
        out.append(nxt)
        ids.append(nxt)
    return out, margins


def main():
    items = training_batches()
    B, L = c["micro_batch_size"], c["seq_length"] + 1
    os.makedirs(TRAIN, exist_ok=True)
    n = items.shape[0]
    with open(os.path.join(TRAIN, "document.idx"), "wb") as f:
        f.write(index_bytes(np.uint16, [L] * n, list(range(n + 1))))
    with open(os.path.join(TRAIN, "document.bin"), "wb") as f:
        f.write(items.numpy().astype("<u2").tobytes())

    # the replay is the trainer's: its step-0 loss was measured on iteration 0's batch (fp32)
    sd0 = weights(0, half=False)
    with torch.no_grad():
        logits = torch.stack([forward(sd0, cfg, it[:-1].tolist()).float() for it in items[:B]])
    replay = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), items[:B, 1:].reshape(-1)).item()
    recorded = series["snapshots"]["0"]["train_loss"]
    print(f"step-0 loss on replayed batch 0: {replay:.8f}, recorded by the trainer: {recorded:.8f}")
    assert abs(replay - recorded) < 1e-5

    losses = []
    for step, batch_of in [(0, 0), (512, 0), (512, 511), (512, 512), (1000, 0), (1000, 999), (1000, 1000),
                          (143000, 7)]:
        sd = weights(step)
        per = [item_loss(sd, items[batch_of * B + k]) for k in range(B)]
        losses.append({"checkpoint": step, "batchOf": batch_of, "perItem": per, "loss": sum(per) / B})
        print(f"step {step} on the batch of iteration {batch_of}: loss {sum(per) / B:.5f}")

    memo = []
    for step, first, last in [(1000, 999, 999), (143000, 0, 1)]:
        sd = weights(step)
        for k in range(first * B, (last + 1) * B):
            gen, margins = greedy(sd, items[k, :32].tolist(), 32)
            truth = items[k, 32:64].tolist()
            score = sum(int(a == b) for a, b in zip(gen, truth)) / 32
            memo.append({"checkpoint": step, "item": k, "generated": gen, "score": score,
                         "margins": margins})
        scores = [m["score"] for m in memo if m["checkpoint"] == step]
        print(f"step {step} memorization on iterations {first}..{last}: mean score "
              f"{sum(scores) / len(scores):.4f}, memorized {sum(s == 1 for s in scores)} of {len(scores)}")
    with open(os.path.join(OUT, "demo-goldens.json"), "w") as f:
        json.dump({"batchSize": B, "itemLength": L, "iterations": ITERATIONS, "replayLoss": replay,
                   "recordedLoss": recorded, "losses": losses, "memorization": memo}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

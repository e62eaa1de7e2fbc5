#!/usr/bin/env python3
"""Checks `neox-ckpt export --to hf-trainer|torch-adamw` against real torch, on the demo series.

Run from the repository root with Debian's torch (`apt-get install -y python3-torch`), after
`npx tsc -p tsconfig.json`:

    /usr/bin/python3 tools/trainer/check_export.py            # writes test/fixtures/trainer/

It writes the demo series as NeoX checkpoints (`neox-ckpt demo`, era-A ZeRO files, TP 2, DP 2),
exports steps 0, 1, 1000 and 64000 with neox-ckpt's library (tools/trainer/export_steps.mjs), and
then, with torch only (transformers cannot be installed here: the Trainer's grouping, schedule and
file handling are re-created below from transformers' public source):

1. checks that every .pt file written loads as `torch.load(..., weights_only=True)` loads: torch
   1.13's own weights-only unpickler cannot read a float at all (no BINFLOAT; it refuses torch's
   own AdamW state dicts too, which is recorded), so each file is loaded through torch with an
   unpickler that resolves only the globals of torch's weights-only allow-list
   (`torch._weights_only_unpickler._get_allowed_globals`), and its pickle is audited: every opcode
   one that torch >= 2.0's weights-only unpickler reads, every global allow-listed. torch's own
   saved optimizer and scheduler files pass the same audit (recorded as the yardstick);
2. builds the GPT-NeoX parameter list in Hugging Face order with the demo's shapes (the module
   tree of `GPTNeoXForCausalLM`), groups it as the Trainer's `create_optimizer` does (both the old
   and the current `get_decay_parameter_names` rules), makes `torch.optim.AdamW` and the
   `cosine_with_min_lr` `LambdaLR` as `create_optimizer_and_scheduler` would, and loads
   optimizer.pt and scheduler.pt into them with `load_state_dict`;
3. checks the loaded weights and moments against the fp32 masters and moments the demo was
   trained to (`data/pythia-micro/series.pt`, written by torch), bit for bit;
4. takes one `optimizer.step()` with a fixed gradient and compares the parameters and moments
   with one step of NeoX's Adam (FusedAdam in adam_w_mode: decoupled weight decay, bias
   correction) from the same masters and moments, then one `scheduler.step()` against NeoX's
   AnnealingLR at the next step (the demo's trainer follows current gpt-neox's formula);
5. for the export with `lrFormula: "pythia"`, runs the Python rate function written into
   recipe.json and the README at every step of the run against the AnnealingLR of gpt-neox's
   `Pythia` branch, and loads scheduler.pt / optimizer.pt into a LambdaLR of it.

Outputs (small, committed; the test needs no Python):
- `expected.json`: what the files must hold, computed from series.pt and torch objects alone
  (groups, state keys, SHA-256 of each parameter's fp32 master and moments, scheduler state);
- `check-result.json`: the torch checks above with the SHA-256 of every file torch loaded, so the
  test can prove it still writes exactly the bytes torch accepted.
"""
import argparse
import functools
import hashlib
import json
import math
import pickle
import pickletools
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
STEPS = [0, 1, 1000, 64000]
SERIES = ROOT / "data" / "pythia-micro" / "series.pt"

# transformers' Trainer.get_decay_parameter_names: name patterns (current) / "bias" only (older).
NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
# Opcodes torch's weights-only unpickler (torch >= 2.0, torch/_weights_only_unpickler.py) reads.
# torch 1.13's lacks BINFLOAT, so it cannot load any float, its own AdamW state dicts included.
WEIGHTS_ONLY_OPCODES = {
    "APPEND", "APPENDS", "BINFLOAT", "BINGET", "BININT", "BININT1", "BININT2", "BINPERSID",
    "BINPUT", "BINUNICODE", "BUILD", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_SET", "EMPTY_TUPLE",
    "GLOBAL", "LONG1", "LONG_BINGET", "LONG_BINPUT", "MARK", "NEWFALSE", "NEWOBJ", "NEWTRUE",
    "NONE", "PROTO", "REDUCE", "SETITEM", "SETITEMS", "SHORT_BINSTRING", "STOP", "TUPLE",
    "TUPLE1", "TUPLE2", "TUPLE3",
}
# TrainerState fields of transformers 4.41 … 4.5x (TrainerState(**json) refuses anything else).
TRAINER_STATE_FIELDS = {
    "epoch", "global_step", "max_steps", "logging_steps", "eval_steps", "save_steps",
    "train_batch_size", "num_train_epochs", "num_input_tokens_seen", "total_flos", "log_history",
    "best_metric", "best_model_checkpoint", "is_local_process_zero", "is_world_process_zero",
    "is_hyper_param_search", "trial_name", "trial_params", "stateful_callbacks",
}


# --- GPT-NeoX in Hugging Face module order (modeling_gpt_neox: GPTNeoXForCausalLM) -----------

class Attention(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.query_key_value = nn.Linear(h, 3 * h)
        self.dense = nn.Linear(h, h)


class Mlp(nn.Module):
    def __init__(self, h, i):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(h, i)
        self.dense_4h_to_h = nn.Linear(i, h)


class Layer(nn.Module):
    def __init__(self, h, i, eps):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(h, eps=eps)
        self.post_attention_layernorm = nn.LayerNorm(h, eps=eps)
        self.attention = Attention(h)
        self.mlp = Mlp(h, i)


class NeoxModel(nn.Module):
    def __init__(self, v, h, i, n, eps):
        super().__init__()
        self.embed_in = nn.Embedding(v, h)
        self.layers = nn.ModuleList([Layer(h, i, eps) for _ in range(n)])
        self.final_layer_norm = nn.LayerNorm(h, eps=eps)


class CausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        v, h = cfg["padded_vocab_size"], cfg["hidden_size"]
        self.gpt_neox = NeoxModel(v, h, cfg["intermediate_size"], cfg["num_layers"], cfg["layernorm_epsilon"])
        self.embed_out = nn.Linear(h, v, bias=False)


# --- the Trainer's grouping and schedule (trainer.py, trainer_pt_utils.py, optimization.py) ---

def parameter_names(module, forbidden_types, patterns):
    """Names of parameters outside forbidden module types and not matching a pattern."""
    out = []
    for name, child in module.named_children():
        for n in parameter_names(child, forbidden_types, patterns):
            full = f"{name}.{n}"
            if not isinstance(child, tuple(forbidden_types)) and not any(re.search(p, full.lower()) for p in patterns):
                out.append(full)
    out += [k for k in module._parameters if not any(re.search(p, k.lower()) for p in patterns)]
    return out


def decay_names(model):
    old = [n for n in parameter_names(model, [nn.LayerNorm], []) if "bias" not in n]
    new = parameter_names(model, [nn.LayerNorm], NO_DECAY_PATTERNS)
    assert old == new, "the old and current get_decay_parameter_names rules disagree"
    return set(new)


def trainer_groups(model, weight_decay):
    decay = decay_names(model)
    named = list(model.named_parameters())
    return [
        {"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ], [[n for n, _ in named if n in decay], [n for n, _ in named if n not in decay]]


def cosine_min_lr_lambda(step, *, num_warmup_steps, num_training_steps, num_cycles, min_lr_rate):
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return max(0, factor * (1 - min_lr_rate) + min_lr_rate)


def make_optimizer_and_scheduler(model, cfg):
    groups, names = trainer_groups(model, cfg["weight_decay"])
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"])
    lam = functools.partial(
        cosine_min_lr_lambda, num_warmup_steps=cfg["warmup_iters"], num_training_steps=cfg["lr_decay_iters"],
        num_cycles=0.5, min_lr_rate=cfg["min_lr"] / cfg["lr"])
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lam), names, lam


def neox_lr(cfg, n):
    """NeoX AnnealingLR (cosine) at schedule position n."""
    lr, mn, w, d = cfg["lr"], cfg["min_lr"], cfg["warmup_iters"], cfg["lr_decay_iters"]
    if w > 0 and n <= w:
        return lr * n / w
    return max(mn, mn + (lr - mn) / 2.0 * (math.cos(math.pi * (n - w) / (d - w)) + 1))


def neox_lr_pythia(cfg, n):
    """NeoX AnnealingLR.get_lr (cosine) as gpt-neox's `Pythia` branch has it: the position capped at
    end - warmup, cosine over end_iter towards 0, clamped at min_lr."""
    lr, mn, w, end = cfg["lr"], cfg["min_lr"], cfg["warmup_iters"], cfg["lr_decay_iters"]
    at = min(n, end - w)
    if w > 0 and n <= w:
        return float(lr) * at / w
    return max(lr / 2.0 * (math.cos(math.pi * (at - w) / end) + 1), mn)


def neox_adam(p, g, m, v, lr, step, b1, b2, eps, wd):
    """One FusedAdam update in adam_w_mode with bias correction (apex multi_tensor_adam, MODE 1),
    and the magnitudes of the terms each result is summed from (for the rounding comparison)."""
    m_new = b1 * m + (1 - b1) * g
    v_new = b2 * v + (1 - b2) * g * g
    denom = torch.sqrt(v_new / (1 - b2 ** step)) + eps
    adam = (m_new / (1 - b1 ** step)) / denom
    p_new = p - lr * (adam + wd * p)
    scales = {
        "param": p.abs() + lr * (adam.abs() + wd * p.abs()),
        "exp_avg": b1 * m.abs() + (1 - b1) * g.abs(),
        "exp_avg_sq": b2 * v + (1 - b2) * g * g,
    }
    return p_new, m_new, v_new, scales


# --- helpers ---------------------------------------------------------------------------------

def sha(t):
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()


def file_sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        a, b = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(info["shape"])
    return out


class _AllowlistedUnpickler(pickle.Unpickler):
    """Resolves only the globals torch's weights-only unpickler allows (its own allow-list)."""

    def find_class(self, module, name):
        allowed = torch._weights_only_unpickler._get_allowed_globals()
        key = f"{module}.{name}"
        if key not in allowed:
            raise pickle.UnpicklingError(f"global {key} is not allow-listed for weights_only loading")
        return allowed[key]


class AllowlistedPickle:
    """A pickle module for `torch.load(pickle_module=...)`: standard opcodes, allow-listed globals."""
    Unpickler = _AllowlistedUnpickler
    load = pickle.load


def pickle_audit(path):
    """Opcodes and globals of a .pt file's data.pkl, against what weights_only loading accepts."""
    with zipfile.ZipFile(path) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    ops, globs = set(), set()
    for op, arg, _ in pickletools.genops(pkl):
        ops.add(op.name)
        if op.name == "GLOBAL":
            globs.add(arg.replace(" ", "."))
    allowed = torch._weights_only_unpickler._get_allowed_globals()
    return {
        "opcodes": sorted(ops),
        "globals": sorted(globs),
        "opcodes_weights_only_torch_2": ops <= WEIGHTS_ONLY_OPCODES,
        "globals_allow_listed": all(g in allowed for g in globs),
    }


def weights_only_checks(path):
    """torch.load(weights_only=True) as this torch has it, and the allow-listed load + audit."""
    res = pickle_audit(path)
    try:
        torch.load(path, weights_only=True)
        res["weights_only_load_this_torch"] = True
    except pickle.UnpicklingError as e:
        res["weights_only_load_this_torch"] = False
        res["weights_only_error_this_torch"] = str(e).rsplit("WeightsUnpickler error: ", 1)[-1]
    torch.load(path, pickle_module=AllowlistedPickle)
    res["allowlisted_load"] = True
    res["weights_only_ok"] = res["allowlisted_load"] and res["opcodes_weights_only_torch_2"] and res["globals_allow_listed"]
    return res


def rounding_units(a, b, scale):
    """Largest |a - b| in float32 rounding units (2^-23) of the operands' magnitude `scale`."""
    unit = scale.clamp_min(torch.finfo(torch.float32).tiny) * torch.finfo(torch.float32).eps
    return float(((a.double() - b.double()).abs() / unit.double()).max())


def fixed_gradient(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32) * 1e-2


# --- the checks ------------------------------------------------------------------------------

def expected_for(series, cfg, k, names, reference_keys):
    snap = series["snapshots"][str(k)]
    return {
        "step": k,
        "global_step": k,
        "adam_step": snap["adam_step"],
        "lr": cfg["lr"] * cosine_min_lr_lambda(
            k, num_warmup_steps=cfg["warmup_iters"], num_training_steps=cfg["lr_decay_iters"],
            num_cycles=0.5, min_lr_rate=cfg["min_lr"] / cfg["lr"]),
        "neox_lr": snap["lr"],
        "max_steps": cfg["train_iters"],
        "param_groups": [{"weight_decay": wd, "names": g} for wd, g in zip([cfg["weight_decay"], 0.0], names)],
        "torch_1_13_group_keys": reference_keys["group"],
        "state_keys": reference_keys["state"],
        "scheduler": reference_keys["scheduler"][str(k)],
        "sha256": {n: {kind: sha(snap[kind][n]) for kind in ("fp32", "exp_avg", "exp_avg_sq")}
                   for n in series["param_names"]},
    }


def reference_keys(series, cfg, steps):
    """Key sets and scheduler states of real torch objects (the Trainer's AdamW and LambdaLR)."""
    model = CausalLM(cfg)
    opt, sched, _, _ = make_optimizer_and_scheduler(model, cfg)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    states = {}
    done = 0
    for k in sorted(steps):
        while done < k:
            sched.step()
            done += 1
        sd = sched.state_dict()
        states[str(k)] = {key: sd[key] for key in ("base_lrs", "last_epoch", "_step_count", "_last_lr", "lr_lambdas")}
        states[str(k)]["keys"] = list(sd.keys())
    opt.step()
    osd = opt.state_dict()
    return {
        "group": list(osd["param_groups"][0].keys()),
        "state": list(osd["state"][0].keys()),
        "step_dtype": str(osd["state"][0]["step"].dtype),
        "scheduler": states,
    }


def check_trainer_folder(folder, series, cfg, k, ref):
    snap = series["snapshots"][str(k)]
    res = {"files": {}}
    loaded = {}
    for name in ("optimizer.pt", "scheduler.pt"):
        res["files"][name] = {"sha256": file_sha(folder / name), **weights_only_checks(folder / name)}
        loaded[name] = torch.load(folder / name, pickle_module=AllowlistedPickle)
    weights = read_safetensors(folder / "model.safetensors")
    res["files"]["model.safetensors"] = {
        "sha256": file_sha(folder / "model.safetensors"),
        "equals_series_fp32": all(torch.equal(weights[n], snap["fp32"][n]) for n in series["param_names"]),
    }
    state = json.loads((folder / "trainer_state.json").read_text())
    res["trainer_state"] = {
        "fields_known_to_transformers_4_41": set(state) <= TRAINER_STATE_FIELDS,
        "global_step": state["global_step"] == k,
        "max_steps": state["max_steps"] == cfg["train_iters"],
    }

    model = CausalLM(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(weights[n])
    opt, sched, names, lam = make_optimizer_and_scheduler(model, cfg)
    raw = loaded["optimizer.pt"]
    res["group_keys_cover_torch_1_13"] = all(set(ref["group"]) <= set(g) for g in raw["param_groups"])
    res["state_keys"] = sorted({tuple(s.keys()) for s in raw["state"].values()}) == [tuple(ref["state"])] if raw["state"] else True
    res["step_dtype"] = all(str(s["step"].dtype) == ref["step_dtype"] and s["step"].dim() == 0 for s in raw["state"].values())
    opt.load_state_dict(raw)
    sched.load_state_dict(loaded["scheduler.pt"])
    res["load_state_dict"] = True
    sd = sched.state_dict()
    want = ref["scheduler"][str(k)]
    res["scheduler_keys"] = list(sd.keys()) == want["keys"]
    res["scheduler_values"] = (
        sd["last_epoch"] == want["last_epoch"] and sd["_step_count"] == want["_step_count"]
        and sd["base_lrs"] == want["base_lrs"] and sd["lr_lambdas"] == want["lr_lambdas"]
        and all(abs(a - b) <= 1e-15 * max(abs(b), 1e-30) for a, b in zip(sd["_last_lr"], want["_last_lr"])))

    flat = [n for g in names for n in g]
    params = dict(model.named_parameters())
    moments_ok = True
    for n in flat:
        st = opt.state[params[n]]
        if not st:
            moments_ok = moments_ok and k == 0 and not snap["exp_avg"][n].any()
            continue
        moments_ok = moments_ok and torch.equal(st["exp_avg"], snap["exp_avg"][n]) \
            and torch.equal(st["exp_avg_sq"], snap["exp_avg_sq"][n]) and float(st["step"]) == snap["adam_step"]
    res["moments_equal_series"] = moments_ok

    # One update from the same masters and moments: torch's AdamW against NeoX's Adam.
    b1, b2 = cfg["betas"]
    group_lr = [g["lr"] for g in opt.param_groups]
    res["group_lr_vs_neox"] = max(abs(x - snap["lr"]) / max(snap["lr"], 1e-30) for x in group_lr) if snap["lr"] else max(group_lr)
    grads = {n: fixed_gradient(params[n].shape, i) for i, n in enumerate(flat)}
    for n in flat:
        params[n].grad = grads[n].clone()
    opt.step()
    sched.step()
    worst = {"param": 0.0, "exp_avg": 0.0, "exp_avg_sq": 0.0, "param_max_abs": 0.0, "param_moved_max": 0.0}
    for gi, g in enumerate(names):
        wd = cfg["weight_decay"] if gi == 0 else 0.0
        for n in g:
            p_ref, m_ref, v_ref, scale = neox_adam(
                snap["fp32"][n], grads[n], snap["exp_avg"][n], snap["exp_avg_sq"][n], snap["lr"],
                snap["adam_step"] + 1, b1, b2, cfg["eps"], wd)
            st = opt.state[params[n]]
            got = params[n].detach()
            worst["param"] = max(worst["param"], rounding_units(got, p_ref, scale["param"]))
            worst["param_max_abs"] = max(worst["param_max_abs"], float((got - p_ref).abs().max()))
            worst["param_moved_max"] = max(worst["param_moved_max"], float((got - snap["fp32"][n]).abs().max()))
            worst["exp_avg"] = max(worst["exp_avg"], rounding_units(st["exp_avg"], m_ref, scale["exp_avg"]))
            worst["exp_avg_sq"] = max(worst["exp_avg_sq"], rounding_units(st["exp_avg_sq"], v_ref, scale["exp_avg_sq"]))
    res["one_step"] = worst
    next_lr = opt.param_groups[0]["lr"]
    res["next_lr_vs_neox"] = abs(next_lr - neox_lr(cfg, k + 1)) / neox_lr(cfg, k + 1)
    res["ok"] = bool(
        res["files"]["optimizer.pt"]["weights_only_ok"] and res["files"]["scheduler.pt"]["weights_only_ok"]
        and res["files"]["model.safetensors"]["equals_series_fp32"] and all(res["trainer_state"].values())
        and res["group_keys_cover_torch_1_13"] and res["state_keys"] and res["step_dtype"]
        and res["scheduler_keys"] and res["scheduler_values"] and res["moments_equal_series"]
        and res["group_lr_vs_neox"] < 1e-12 and res["next_lr_vs_neox"] < 1e-12
        and worst["param"] <= 8 and worst["exp_avg"] <= 4 and worst["exp_avg_sq"] <= 4
        and (snap["lr"] == 0 or worst["param_moved_max"] > 0))
    return res


def check_pythia_folder(folder, cfg, k):
    """The export with Pythia's AnnealingLR: its Python rate function (recipe.json, README) is
    that code's schedule at every step of the run, and scheduler.pt / optimizer.pt stand at step k."""
    recipe = json.loads((folder / "recipe.json").read_text())
    code = recipe["lr_lambda"]["python"]
    namespace = {"math": math, "functools": functools}
    exec(code, namespace)  # the function neox-ckpt wrote, checked here against NeoX's own formula
    lam = eval(recipe["lr_lambda"]["call"], namespace)
    worst = max(abs(cfg["lr"] * lam(n) - neox_lr_pythia(cfg, n)) / neox_lr_pythia(cfg, n)
                for n in range(1, cfg["train_iters"] + 1))
    readme = (folder / "README.md").read_text()
    model = CausalLM(cfg)
    groups, _ = trainer_groups(model, cfg["weight_decay"])
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    opt.load_state_dict(torch.load(folder / "optimizer.pt", pickle_module=AllowlistedPickle))
    sched.load_state_dict(torch.load(folder / "scheduler.pt", pickle_module=AllowlistedPickle))
    loaded_lr = opt.param_groups[0]["lr"]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    sched.step()
    res = {
        "files": {n: {"sha256": file_sha(folder / n), **weights_only_checks(folder / n)}
                  for n in ("optimizer.pt", "scheduler.pt")},
        "lambda_vs_neox_pythia_max_rel": worst,
        "readme_has_lambda": code in readme,
        "lr_vs_neox_pythia": abs(loaded_lr - neox_lr_pythia(cfg, k)) / neox_lr_pythia(cfg, k),
        "next_lr_vs_neox_pythia": abs(opt.param_groups[0]["lr"] - neox_lr_pythia(cfg, k + 1)) / neox_lr_pythia(cfg, k + 1),
        "last_epoch": sched.last_epoch == k + 1,
    }
    res["ok"] = bool(worst < 1e-12 and res["readme_has_lambda"] and res["lr_vs_neox_pythia"] < 1e-12
                     and res["next_lr_vs_neox_pythia"] < 1e-12 and res["last_epoch"]
                     and all(f["weights_only_ok"] for f in res["files"].values()))
    return res


def torch_saved_reference(cfg, work):
    """The same audit on what torch itself saves: the Trainer's AdamW and LambdaLR after a step."""
    model = CausalLM(cfg)
    opt, sched, _, _ = make_optimizer_and_scheduler(model, cfg)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    sched.step()
    out = {}
    for name, value in (("optimizer.pt", opt.state_dict()), ("scheduler.pt", sched.state_dict())):
        path = work / f"torch-saved-{name}"
        torch.save(value, path)
        out[name] = weights_only_checks(path)
    return out


def check_adamw_folder(folder, series, cfg, k):
    snap = series["snapshots"][str(k)]
    raw = torch.load(folder / "optimizer.pt", pickle_module=AllowlistedPickle)
    order = json.loads((folder / "param_names.json").read_text())
    model = CausalLM(cfg)
    opt, _, names, _ = make_optimizer_and_scheduler(model, cfg)
    opt.load_state_dict(raw)
    params = dict(model.named_parameters())
    same_order = order["param_names"] == [n for g in names for n in g]
    moments = all(torch.equal(opt.state[params[n]]["exp_avg"], snap["exp_avg"][n]) for n in order["param_names"]) \
        if raw["state"] else k == 0
    return {
        "files": {"optimizer.pt": {"sha256": file_sha(folder / "optimizer.pt"), **weights_only_checks(folder / "optimizer.pt")}},
        "param_names_in_trainer_order": same_order,
        "load_state_dict": True,
        "moments_equal_series": moments,
        "ok": bool(same_order and moments and weights_only_checks(folder / "optimizer.pt")["weights_only_ok"]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "test" / "fixtures" / "trainer"))
    ap.add_argument("--work", help="folder for the demo and the exports (default: a temporary one)")
    args = ap.parse_args()
    torch.manual_seed(0)
    series = torch.load(SERIES)
    cfg = series["config"]
    skeleton = CausalLM(cfg)
    assert set(n for n, _ in skeleton.named_parameters()) == set(series["param_names"])
    _, names = trainer_groups(skeleton, cfg["weight_decay"])
    ref = reference_keys(series, cfg, STEPS)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        demo = work / "demo"
        exports = work / "exports"
        main_js = ROOT / "dist" / "src" / "cli" / "main.js"
        subprocess.run(["node", str(main_js), "demo", "--out", str(demo), "--progress", "none"],
                       check=True, stdout=subprocess.DEVNULL)
        repo = demo / "neox-ckpt" / "pythia-micro"
        subprocess.run(["node", str(ROOT / "tools" / "trainer" / "export_steps.mjs"), str(repo), str(exports),
                        *map(str, STEPS)], check=True, stdout=subprocess.DEVNULL)
        result = {"torch": torch.__version__, "steps": {}}
        for k in STEPS:
            result["steps"][str(k)] = check_trainer_folder(exports / f"step{k}", series, cfg, k, ref)
        result["adamw"] = {str(STEPS[0]): check_adamw_folder(exports / f"adamw-step{STEPS[0]}", series, cfg, STEPS[0])}
        result["pythia"] = {str(STEPS[-1]): check_pythia_folder(exports / f"pythia-step{STEPS[-1]}", cfg, STEPS[-1])}
        result["torch_saved_reference"] = torch_saved_reference(cfg, work)

    expected = {"steps": {str(k): expected_for(series, cfg, k, names, ref) for k in STEPS},
                "step_dtype": ref["step_dtype"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    (out / "check-result.json").write_text(json.dumps(result, indent=1) + "\n")
    bad = [k for k, r in {**result["steps"], **{f"adamw-{a}": r for a, r in result["adamw"].items()},
                          **{f"pythia-{a}": r for a, r in result["pythia"].items()}}.items() if not r["ok"]]
    print(json.dumps({k: r.get("one_step", r.get("ok")) for k, r in result["steps"].items()}))
    if bad:
        print(f"FAILED: {bad}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {out}/expected.json, {out}/check-result.json")


if __name__ == "__main__":
    main()

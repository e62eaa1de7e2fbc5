"""Loads the era-B checkpoint our writer made with torch and checks what DeepSpeed's loader reads.

Run: /usr/bin/python3 tools/neox-written/check_with_torch.py   (Debian python3-torch)
Writes test/fixtures/neox-written/torch-check.json: sha256 of every file and the checks passed.
Keys follow DeepSpeed's engine._load_checkpoint / _load_zero_checkpoint and
stage_1_and_2.load_state_dict (spec neox-deepspeed-checkpoints.md §4.1, §4.4, §5.3).
"""
import enum
import glob
import hashlib
import json
import os
import sys
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "..", "..", "test", "fixtures", "neox-written", "eraB-tp2-dp2")

for m in ["deepspeed", "deepspeed.runtime", "deepspeed.runtime.fp16", "deepspeed.runtime.fp16.loss_scaler",
          "deepspeed.runtime.zero", "deepspeed.runtime.zero.config", "deepspeed.utils", "deepspeed.utils.tensor_fragment"]:
    sys.modules.setdefault(m, types.ModuleType(m))


class DynamicLossScaler:
    pass


class ZeroStageEnum(int, enum.Enum):
    disabled = 0
    optimizer_states = 1
    gradients = 2
    weights = 3


class fragment_address:  # noqa: N801
    pass


sys.modules["deepspeed.runtime.fp16.loss_scaler"].DynamicLossScaler = DynamicLossScaler
sys.modules["deepspeed.runtime.zero.config"].ZeroStageEnum = ZeroStageEnum
sys.modules["deepspeed.utils.tensor_fragment"].fragment_address = fragment_address

failures, passed = [], 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)


files = sorted(glob.glob(os.path.join(DIR, "*.pt")))
loaded = {os.path.basename(f): torch.load(f) for f in files}
tp, dp = 2, 2
for r in range(tp):
    ms = loaded[f"mp_rank_{r:02d}_model_states.pt"]
    for k in ["module", "buffer_names", "optimizer", "lr_scheduler", "sparse_tensor_module_names", "skipped_steps",
              "global_steps", "global_samples", "dp_world_size", "mp_world_size", "param_shapes", "frozen_param_shapes",
              "shared_params", "ds_config", "ds_version", "iteration", "args"]:
        check(k in ms, f"mp_rank {r}: key {k}")
    check(ms["module"] is None, "pipeline checkpoints store module None")
    check(ms["dp_world_size"] == dp and ms["mp_world_size"] == tp, f"mp_rank {r}: world sizes")
    shapes = ms["param_shapes"]
    check(isinstance(shapes, list) and all(isinstance(g, dict) for g in shapes), f"mp_rank {r}: param_shapes is a list of dicts")
    check(all(isinstance(s, torch.Size) for g in shapes for s in g.values()), f"mp_rank {r}: param_shapes values are torch.Size")
    numels = [sum(s.numel() for s in g.values()) for g in shapes]
    singles = [0] * len(shapes)
    for d in range(dp):
        z = loaded[f"zero_pp_rank_{d}_mp_rank_{r:02d}_optim_states.pt"]
        check(set(z.keys()) >= {"optimizer_state_dict", "ds_config", "ds_version"}, f"zero {d},{r}: top-level keys")
        osd = z["optimizer_state_dict"]
        for k in ["loss_scaler", "dynamic_loss_scale", "overflow", "clip_grad", "base_optimizer_state",
                  "single_partition_of_fp32_groups", "zero_stage", "group_paddings", "partition_count", "param_slice_mappings"]:
            check(k in osd, f"zero {d},{r}: key {k}")
        check(osd["zero_stage"] == ZeroStageEnum.optimizer_states, f"zero {d},{r}: zero_stage is ZeroStageEnum.optimizer_states")
        check(isinstance(osd["loss_scaler"], DynamicLossScaler), f"zero {d},{r}: loss scaler class")
        check(osd["partition_count"] == [dp] * len(shapes), f"zero {d},{r}: partition_count")
        bos = osd["base_optimizer_state"]
        check(set(bos.keys()) == {"state", "param_groups"}, f"zero {d},{r}: torch optimizer state_dict form")
        for g in range(len(shapes)):
            part = osd["single_partition_of_fp32_groups"][g]
            pad = osd["group_paddings"][g]
            singles[g] += part.numel()
            st = bos["state"][g]
            check(st["exp_avg"].dtype == torch.float32 and st["exp_avg"].numel() == part.numel() + pad, f"zero {d},{r}: group {g} exp_avg is the padded partition")
            check(bos["param_groups"][g]["params"] == [g], f"zero {d},{r}: group {g} params")
            frags = osd["param_slice_mappings"][g]
            check(sum(f.__dict__["numel"] for f in frags.values()) == part.numel(), f"zero {d},{r}: group {g} fragments cover the partition")
    check(singles == numels, f"mp_rank {r}: partitions add up to the groups ({singles} vs {numels})")
result = {
    "torch": torch.__version__,
    "files": {os.path.basename(f): hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files},
    "checks_passed": passed,
    "failures": failures,
}
json.dump(result, open(os.path.join(DIR, "..", "torch-check.json"), "w"), indent=2)
print(f"{len(files)} files, {passed} checks passed, {len(failures)} failed")
sys.exit(1 if failures else 0)

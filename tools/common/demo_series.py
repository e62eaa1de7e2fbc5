"""The demo series (data/pythia-micro/series.pt) as the fixture scripts read it: the series, the
model's Hugging Face config (what tools/model/neox_ref.py's forward takes) and a step's weights.

Imported by tools/data/make_demo_data.py and tools/model/make_demo_goldens.py (Debian's
python3-torch); put this folder on sys.path first.
"""
import os

import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def load_series():
    """The series file: its "config" (the trainer's NeoX arguments) and "snapshots" by step."""
    return torch.load(os.path.join(ROOT, "data", "pythia-micro", "series.pt"))


def hf_config(c):
    """The forward pass's config of the series' model, from the series' "config"."""
    return {
        "vocab_size": c["padded_vocab_size"],
        "hidden_size": c["hidden_size"],
        "num_hidden_layers": c["num_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "intermediate_size": c["intermediate_size"],
        "rotary_pct": c["rotary_pct"],
        "rotary_emb_base": c["rotary_emb_base"],
        "layer_norm_eps": c["layernorm_epsilon"],
        "use_parallel_residual": c["gpt_j_residual"],
        "max_position_embeddings": c["max_position_embeddings"],
        "tie_word_embeddings": False,
    }


def weights(series, step, half=True):
    """Step `step`'s fp32 masters, rounded to fp16 (as the NeoX checkpoints hold them) unless
    `half` is False, as float32."""
    sd = series["snapshots"][str(step)]["fp32"]
    return {k: (v.half().float() if half else v.float()) for k, v in sd.items()}

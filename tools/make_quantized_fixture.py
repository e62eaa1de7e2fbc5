"""Generate the quantized-tensor fixtures and their expected values (sibling of
make_torch_fixtures.py, which rewrites the rest of test/fixtures/torch/ and is left alone).

    /usr/bin/python3 tools/make_quantized_fixture.py

Needs Debian's python3-torch (torch 1.13). Writes into test/fixtures/torch/:

    quantized.pt          torch.save (zip) of a dict of quantized tensors: per-tensor affine
                          qint8 / quint8 / qint32, per-channel affine qint8 (axis 1) and quint8
                          with float qparams (axis 0), a transposed view sharing a storage, and
                          one plain float tensor
    quantized_legacy.pt   the same dict with _use_new_zipfile_serialization=False
    quantized.json        what a reader must find, from torch.load of the written zip file:
                          per tensor its dtype, shape, stride, storage offset, qscheme, scale
                          and zero point (per-channel: axis, scales and zero points with their
                          dtypes), the stored integers (int_repr, C order) and the SHA-256 of
                          their contiguous little-endian bytes

The zip file is byte-reproducible (torch 1.13 writes a fixed timestamp and keys "0", "1", ...);
the legacy file is not (its storage keys are C pointer values).
"""

import hashlib
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "torch"


def build():
    x = torch.tensor([[-1.0, 0.0, 0.5], [1.0, 2.0, -0.25]])
    per_tensor = torch.quantize_per_tensor(x, 0.25, 3, torch.qint8)
    return {
        "per_tensor_qint8": per_tensor,
        "per_tensor_quint8": torch.quantize_per_tensor(
            torch.tensor([0.0, 0.1, 12.7, -12.8]), 0.1, 128, torch.quint8
        ),
        "per_tensor_qint32": torch.quantize_per_tensor(
            torch.tensor([1.0, -2.5, 1000.0]), 0.001, -5, torch.qint32
        ),
        "per_channel_qint8": torch.quantize_per_channel(
            x,
            torch.tensor([0.1, 0.5, 0.02], dtype=torch.float64),
            torch.tensor([0, -2, 7]),
            1,
            torch.qint8,
        ),
        "per_channel_float_qparams": torch.quantize_per_channel(
            x,
            torch.tensor([0.125, 0.0625]),
            torch.tensor([1.5, -3.0]),
            0,
            torch.quint8,
        ),
        "per_tensor_transposed": per_tensor.t(),
        "plain": torch.tensor([1.5, -2.0]),
    }


def le_bytes(t):
    return t.contiguous().numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def entry(name, t):
    e = {
        "name": name,
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": t.storage_offset(),
    }
    if not t.is_quantized:
        e["values"] = t.contiguous().view(-1).tolist()
        e["sha256"] = hashlib.sha256(le_bytes(t)).hexdigest()
        return e
    ints = t.int_repr()
    e["int_repr"] = ints.contiguous().view(-1).tolist()
    e["sha256"] = hashlib.sha256(le_bytes(ints)).hexdigest()
    e["qscheme"] = str(t.qscheme()).removeprefix("torch.")
    if t.qscheme() == torch.per_tensor_affine:
        e["scale"] = t.q_scale()
        e["zero_point"] = t.q_zero_point()
    else:
        s, z = t.q_per_channel_scales(), t.q_per_channel_zero_points()
        e["axis"] = t.q_per_channel_axis()
        e["scales"] = {"dtype": str(s.dtype).removeprefix("torch."), "values": s.tolist()}
        e["zero_points"] = {"dtype": str(z.dtype).removeprefix("torch."), "values": z.tolist()}
    return e


def main():
    sd = build()
    zip_path = OUT / "quantized.pt"
    legacy_path = OUT / "quantized_legacy.pt"
    torch.save(sd, zip_path)
    torch.save(sd, legacy_path, _use_new_zipfile_serialization=False)
    expected = {"note": "written by tools/make_quantized_fixture.py from torch.load", "files": {}}
    for path in (zip_path, legacy_path):
        loaded = torch.load(path)
        assert list(loaded) == list(sd)
        tensors = [entry(k, v) for k, v in loaded.items()]
        # the reload agrees with the saved objects
        for want, got in zip([entry(k, v) for k, v in sd.items()], tensors):
            if path == zip_path:
                assert want == got, (want, got)
            else:
                assert {**want, "storage_offset": 0} == {**got, "storage_offset": 0}
        expected["files"][path.name] = {"torch": torch.__version__, "tensors": tensors}
    (OUT / "quantized.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()

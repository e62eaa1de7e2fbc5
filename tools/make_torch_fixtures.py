"""Generate small PyTorch checkpoint fixtures and their expected values.

Run from anywhere (paths are relative to this file's repository):

    /usr/bin/python3 tools/make_torch_fixtures.py

Needs Debian's python3-torch (torch 1.13) and python3-numpy (1.24); nothing is pip-installed.
It deletes and rewrites test/fixtures/torch/:

    *.pt                 valid checkpoints (zip format, legacy format, protocol 2 and 4, and
                         two hand-built torch>=2.1-style files using _rebuild_tensor_v3)
    malicious/*.pt       valid torch.save zip/legacy files whose pickle would run
                         `touch NEOX_CKPT_PWNED` if unpickled by Python (never torch.load them)
    corrupt/*.pt         damaged files (truncated zips, bad pickles, impossible shapes, ...)
    expected.json        what a reader must find in every file (see the `rules` key)

All expected values of valid torch.save files are recomputed from `torch.load` of the written
file (through a pure-Python unpickler that only records which storage key each storage came
from) and cross-checked against the in-memory objects that were saved. Files that torch 1.13
cannot load (hand-built v3 files, malicious files) are decoded with a non-executing unpickler
(`SafeUnpickler`: every GLOBAL becomes an inert stub class) and checked against the raw records.

Zip files written by torch 1.13 carry a fixed 1980 timestamp and storage keys "0", "1", ..., so
they are byte-reproducible (the script re-executes itself with PYTHONHASHSEED=0 so that set
items pickle in a fixed order). Legacy files are not: their storage keys are C pointer values.
"""

import _compat_pickle
import argparse
import collections
import hashlib
import io
import json
import math
import os
import pickle
import pickletools
import random
import shutil
import struct
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "torch"
MARKER = "NEOX_CKPT_PWNED"

# --------------------------------------------------------------------------------------------
# Stand-ins for writing pickles that torch 1.13 itself cannot produce
# --------------------------------------------------------------------------------------------


class G:
    """A stand-in for a global `module.name`; FixturePickler writes it as GLOBAL/STACK_GLOBAL
    without importing anything, and memoizes it like pickle memoizes a real global."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module = module
        self.name = name

    def __call__(self, *args, **kwargs):  # pickle's save_reduce insists on a callable
        raise RuntimeError(f"stand-in {self.module}.{self.name} must never be called")

    def __repr__(self):
        return f"G({self.module}.{self.name})"


class StorageRef:
    """Pickled as BINPERSID of ("storage", <type global>, key, "cpu", numel), like torch does."""

    def __init__(self, type_global, key, numel):
        self.type_global = type_global
        self.key = key  # keep the same str object for every view: torch memoizes it (BINGET)
        self.numel = numel


class Reduce:
    """Pickled as REDUCE(func, args) and memoized, exactly like a torch.Tensor."""

    def __init__(self, func, args):
        self.func = func
        self.args = args

    def __reduce_ex__(self, proto):
        return (self.func, self.args)


class FixturePickler(pickle._Pickler):
    """Pure-Python pickler (same output as the C pickler) that can write stand-in globals."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_standin_global(self, obj):
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + (obj.module + "\n" + obj.name + "\n").encode("utf-8"))
        self.memoize(obj)

    dispatch[G] = save_standin_global

    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", obj.type_global, obj.key, "cpu", obj.numel)
        return None


def fixture_dumps(obj, protocol=2):
    buf = io.BytesIO()
    FixturePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


# A module object usable as torch.save(..., pickle_module=...) so that torch's own writer
# (zip or legacy) pickles with FixturePickler (needed to write e.g. GLOBAL 'os system').
FIXTURE_PICKLE = types.ModuleType("fixture_pickle")
FIXTURE_PICKLE.Pickler = FixturePickler
FIXTURE_PICKLE.dump = lambda obj, f, protocol=2: FixturePickler(f, protocol=protocol).dump(obj)
FIXTURE_PICKLE.Unpickler = pickle.Unpickler
FIXTURE_PICKLE.load = pickle.load

# --------------------------------------------------------------------------------------------
# Loading with storage keys (torch.load through a recording pure-Python unpickler)
# --------------------------------------------------------------------------------------------


def storage_id(t):
    """Identity of the C++ StorageImpl behind a tensor (stable while the tensor lives)."""
    return t.storage()._storage._cdata


def torch_load_with_keys(path):
    """torch.load(path) that also returns {StorageImpl id: storage key as written}."""
    key_of = {}

    class KeyUnpickler(pickle._Unpickler):
        @property
        def persistent_load(self):
            return self._recording_persistent_load

        @persistent_load.setter
        def persistent_load(self, torch_persistent_load):
            def recording(pid):
                typed_storage = torch_persistent_load(pid)
                key = pid[2]
                sid = typed_storage._storage._cdata
                assert key_of.get(sid, key) == key, (path, key)
                key_of[sid] = key
                return typed_storage

            self._recording_persistent_load = recording

    mod = types.ModuleType("key_pickle")
    mod.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
    mod.Unpickler = KeyUnpickler
    # Debian's torch 1.13 `torch.load` ignores its pickle_module argument (it always assigns
    # `pickle_module = pickle` when weights_only is False), so swap the module global instead.
    saved = torch.serialization.pickle
    torch.serialization.pickle = mod
    try:
        obj = torch.load(str(path))
    finally:
        torch.serialization.pickle = saved
    return obj, key_of


# --------------------------------------------------------------------------------------------
# A non-executing unpickler: every global is an inert stub class
# --------------------------------------------------------------------------------------------


class Stub:
    """Instances record how they were made; nothing is imported or called."""

    stub_module = "?"
    stub_name = "?"

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self.__dict__["_stub_args"] = args
        self.__dict__["_stub_items"] = []
        self.__dict__["_stub_state"] = None
        return self

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_stub_state"] = state

    def __setitem__(self, key, value):
        self._stub_items.append((key, value))

    def append(self, value):
        self._stub_items.append(value)

    def extend(self, values):
        self._stub_items.extend(values)

    def add(self, value):
        self._stub_items.append(value)

    @classmethod
    def full_name(cls):
        return f"{cls.stub_module}.{cls.stub_name}"


class PersId:
    def __init__(self, pid):
        self.pid = pid


class SafeUnpickler(pickle._Unpickler):
    def __init__(self, f):
        super().__init__(f, encoding="utf-8")
        self.globals_raw = []
        self.stub_classes = {}

    def find_class(self, module, name):
        self.globals_raw.append(f"{module}.{name}")
        key = (module, name)
        if key not in self.stub_classes:
            self.stub_classes[key] = type(name, (Stub,), {"stub_module": module, "stub_name": name})
        return self.stub_classes[key]

    def persistent_load(self, pid):
        return PersId(pid)


def py3_name(raw, protocol):
    """The name Python 3 resolves a GLOBAL to (pickle's Python-2 compatibility map)."""
    module, _, name = raw.rpartition(".")
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def unique(seq):
    return list(dict.fromkeys(seq))


def safe_decode(data):
    """Decode one pickle from bytes without executing anything."""
    u = SafeUnpickler(io.BytesIO(data))
    obj = u.load()
    return obj, u


def read_zip_records(path_or_bytes):
    data = Path(path_or_bytes).read_bytes() if not isinstance(path_or_bytes, bytes) else path_or_bytes
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = zf.namelist()
    prefix = names[0].split("/", 1)[0]
    records = []
    for info in zf.infolist():
        assert info.filename.startswith(prefix + "/"), info.filename
        records.append((info.filename[len(prefix) + 1:], zf.read(info)))
        # local header: payload must be 64-aligned in torch-written and our hand-built files
    return prefix, records


def payload_offsets(data):
    zf = zipfile.ZipFile(io.BytesIO(data))
    out = {}
    for info in zf.infolist():
        off = info.header_offset
        n, m = struct.unpack_from("<HH", data, off + 26)
        out[info.filename] = off + 30 + n + m
    return out


def legacy_pickles(data):
    """Split a legacy file: (list of pickle byte ranges, raw data offset)."""
    f = io.BytesIO(data)
    ranges = []
    for _ in range(5):
        start = f.tell()
        for _op in pickletools.genops(f):
            pass
        ranges.append((start, f.tell()))
    return ranges, f.tell()


# --------------------------------------------------------------------------------------------
# The naming / value rules (also written into expected.json)
# --------------------------------------------------------------------------------------------


def child_path(prefix, key):
    if isinstance(key, str):
        return key if prefix == "" else prefix + "." + key
    return prefix + "[" + repr(key) + "]"


def is_foreign_object(obj):
    if isinstance(obj, argparse.Namespace):
        return True
    if isinstance(obj, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)):
        return False
    mod = type(obj).__module__ or ""
    if mod == "builtins" or mod.split(".")[0] in ("numpy", "torch", "collections"):
        return False
    return hasattr(obj, "__dict__")


def walk(root, is_tensor=lambda o: isinstance(o, torch.Tensor)):
    """Depth-first, insertion order, iterative (the nesting-bomb fixture is 100000 deep)."""
    out = []
    stack = [("", root)]
    while stack:
        path, obj = stack.pop()
        if is_tensor(obj):
            out.append((path, obj))
            continue
        children = []
        if isinstance(obj, dict):
            children = [(child_path(path, k), v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        elif isinstance(obj, Stub):
            st = obj._stub_state
            if isinstance(st, dict):
                children = [(child_path(path, k), v) for k, v in st.items()]
        elif is_foreign_object(obj):
            children = [(child_path(path, k), v) for k, v in vars(obj).items()]
        stack.extend(reversed(children))
    return out


def enc_float(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0.0 and math.copysign(1.0, x) < 0:
        return "-0.0"
    return x


def enc_int(v):
    v = int(v)
    return v if abs(v) < 2**53 else str(v)


def enc_value(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return enc_int(v)
    if isinstance(v, float):
        return enc_float(v)
    if isinstance(v, complex):
        return [enc_float(v.real), enc_float(v.imag)]
    raise TypeError(type(v))


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def tensor_le_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        a = t.view(torch.int16).numpy()
    else:
        a = t.numpy()
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.byteswap().newbyteorder()
    return a.tobytes(order="C")


def tensor_values(t):
    flat = t.detach().contiguous().reshape(-1)[:8]
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()  # exact
    return [enc_value(v) for v in flat.tolist()]


def tensor_entry(name, t, key):
    e = {
        "name": name,
        "dtype": dtype_name(t.dtype),
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": t.storage_offset(),
    }
    if key is not None:
        e["storage_key"] = key
    e["is_parameter"] = isinstance(t, nn.Parameter)
    e["requires_grad"] = bool(t.requires_grad)
    e["sha256"] = hashlib.sha256(tensor_le_bytes(t)).hexdigest()
    e["values"] = tensor_values(t)
    return e


# --- scalars: steps ("k", dict key) / ("i", list index) / ("a", attribute) --------------------


def K(k):
    return ("k", k)


def I(i):
    return ("i", i)


def A(a):
    return ("a", a)


def render_path(steps):
    path = ""
    for kind, x in steps:
        if kind == "i":
            path += f"[{x}]"
        else:
            path = child_path(path, x)
    return path


def resolve(obj, steps):
    for kind, x in steps:
        obj = getattr(obj, x) if kind == "a" else obj[x]
    return obj


def scalar_entry(steps, v):
    """-> ("scalars" | "extra_scalars", entry)."""
    path = render_path(steps)
    if isinstance(v, np.ndarray):
        return "extra_scalars", {
            "path": path, "type": "ndarray", "dtype": v.dtype.str, "shape": list(v.shape),
            "fortran_order": bool(v.flags.f_contiguous and not v.flags.c_contiguous),
            "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest(),
            "values": [enc_value(x) for x in v.reshape(-1)[:8].tolist()],
        }
    if isinstance(v, np.generic):
        return "extra_scalars", {"path": path, "type": "numpy_scalar", "dtype": v.dtype.str,
                                 "value": enc_value(v.item())}
    if v is None:
        return "scalars", {"path": path, "type": "none", "value": None}
    if isinstance(v, bool):
        return "scalars", {"path": path, "type": "bool", "value": v}
    if isinstance(v, int):
        if abs(v) < 2**53:
            return "scalars", {"path": path, "type": "int", "value": v}
        return "scalars", {"path": path, "type": "bigint", "value": str(v)}
    if isinstance(v, float):
        return "scalars", {"path": path, "type": "float", "value": enc_float(v)}
    if isinstance(v, str):
        return "scalars", {"path": path, "type": "str", "value": v}
    if isinstance(v, bytes):
        return "scalars", {"path": path, "type": "bytes", "value": v.hex()}
    if isinstance(v, argparse.Namespace):
        return "scalars", {"path": path, "type": "namespace", "value": list(vars(v).keys())}
    if isinstance(v, bytearray):
        return "extra_scalars", {"path": path, "type": "bytearray", "value": bytes(v).hex()}
    if isinstance(v, complex):
        return "extra_scalars", {"path": path, "type": "complex", "value": enc_value(v)}
    if isinstance(v, (set, frozenset)):
        items = sorted(v, key=repr)
        return "extra_scalars", {"path": path, "type": type(v).__name__,
                                 "value": [enc_value(x) if not isinstance(x, str) else x for x in items]}
    if isinstance(v, slice):
        return "extra_scalars", {"path": path, "type": "slice",
                                 "value": [None if x is None else enc_value(x) for x in (v.start, v.stop, v.step)]}
    if isinstance(v, torch.dtype):
        return "extra_scalars", {"path": path, "type": "torch_dtype", "value": dtype_name(v)}
    raise TypeError(f"no scalar encoding for {path}: {type(v)}")


# --------------------------------------------------------------------------------------------
# Zip helpers
# --------------------------------------------------------------------------------------------


def write_zip(path, prefix, records, align=64):
    """Stored entries, 1980 timestamps, payloads aligned like torch (an 'FB' extra block of 'Z'
    padding; Python's zipfile repeats it in the central directory, torch does not)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in records:
            full = f"{prefix}/{name}"
            zi = zipfile.ZipInfo(full, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            base = buf.tell() + 30 + len(full.encode("utf-8")) + 4
            pad = (-base) % align
            zi.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zf.writestr(zi, data)
    data = buf.getvalue()
    for name, off in payload_offsets(data).items():
        assert off % align == 0, (path, name, off)
    Path(path).write_bytes(data)
    return data


# --------------------------------------------------------------------------------------------
# Fixture objects
# --------------------------------------------------------------------------------------------


def bits_tensor(bits, np_uint, np_int, torch_int, torch_dtype, shape):
    a = np.array(bits, dtype=np_uint).view(np_int)
    return torch.from_numpy(a.copy()).view(torch_int).view(torch_dtype).reshape(shape)


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def make_dtypes():
    inf, nan = float("inf"), float("nan")
    f32 = [f32_bits(x) for x in [0.0, -0.0, inf, -inf, nan, 2.0**-149, 3.4028234663852886e38,
                                 -1.1754943508222875e-38, 1.0, -2.5, 0.1, 65504.0]]
    f32 += [0xFFC00001, 0x7F800001, 0x807FFFFF, 0x3EAAAAAB]  # -NaN payload, sNaN, -max subnormal, 1/3
    f16 = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x7BFF, 0x8400,
           0x3C00, 0x2E66, 0xC100, 0x03FF, 0x3C01, 0x7E01, 0xFC01, 0x4248]
    bf16 = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x7F7F, 0x8080,
            0x3F80, 0x3DCD, 0xC020, 0x007F, 0x7FC1, 0xFFC0, 0x4049, 0x3F81]
    f64 = [f64_bits(x) for x in [0.0, -0.0, inf, -inf, nan, 5e-324, 1.7976931348623157e308,
                                 -2.2250738585072014e-308, 0.1, 1 / 3, -2.5, 1e300]]
    f64 += [0x7FF0000000000001, 0xFFF8000000000000]
    return {
        "float32": bits_tensor(f32, np.uint32, np.int32, torch.int32, torch.float32, (4, 4)),
        "float16": bits_tensor(f16, np.uint16, np.int16, torch.int16, torch.float16, (4, 4)),
        "bfloat16": bits_tensor(bf16, np.uint16, np.int16, torch.int16, torch.bfloat16, (2, 8)),
        "float64": bits_tensor(f64, np.uint64, np.int64, torch.int64, torch.float64, (2, 7)),
        "int64": torch.tensor([0, -1, 2**63 - 1, -2**63, 2**53, 2**53 + 1, -(2**53 + 1), 123456789012345,
                               1, -2, 42, 2**32], dtype=torch.int64).reshape(3, 4),
        "int32": torch.tensor([0, -1, 2**31 - 1, -2**31, 65536, -65537, 7, 100000, -7], dtype=torch.int32),
        "int16": torch.tensor([0, -1, 32767, -32768, 255, 256, -256, 1234], dtype=torch.int16).reshape(2, 4),
        "int8": torch.tensor([0, -1, 127, -128, 1, -2, 64, -65, 3], dtype=torch.int8),
        "uint8": torch.tensor([0, 1, 127, 128, 254, 255, 16, 32], dtype=torch.uint8).reshape(2, 2, 2),
        "bool": torch.tensor([True, False, True, True, False, False, True, False, True]).reshape(3, 3),
        "complex64": torch.tensor([1 - 2j, complex(inf, -inf), complex(nan, 0.0), complex(-0.0, 0.0),
                                   complex(2.0**-149, 3.4028234663852886e38), complex(0.5, -0.25)],
                                  dtype=torch.complex64).reshape(2, 3),
        "complex128": torch.tensor([1 - 2j, complex(inf, nan), complex(-0.0, -0.0),
                                    complex(5e-324, 1.7976931348623157e308), complex(0.1, 0.2), 3j],
                                   dtype=torch.complex128).reshape(3, 2),
    }


def make_scalars_and_empty():
    return {
        "f32_0d": torch.tensor(3.5),
        "i64_0d": torch.tensor(2**40 + 3),
        "i64_0d_min": torch.tensor(-2**63),
        "bool_0d": torch.tensor(True),
        "f16_0d_nan": torch.tensor(float("nan"), dtype=torch.float16),
        "bf16_0d_negzero": torch.tensor(-0.0, dtype=torch.bfloat16),
        "c64_0d": torch.tensor(1 + 2j, dtype=torch.complex64),
        "view_0d_at_offset7": torch.arange(10, dtype=torch.float32)[7],
        "empty_1d": torch.zeros(0),
        "empty_3x0": torch.zeros(3, 0, dtype=torch.int64),
        "empty_0x5_f16": torch.empty(0, 5, dtype=torch.float16),
        "empty_bool": torch.zeros(0, dtype=torch.bool),
        "empty_view_at_end": torch.arange(10, dtype=torch.int32)[10:],
    }


def make_views():
    g = torch.Generator().manual_seed(7)
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    w = torch.randn(3, 5, generator=g)
    flat = torch.arange(30, dtype=torch.float32) * 0.5
    bf = torch.arange(16, dtype=torch.float32).to(torch.bfloat16)
    return {
        "base": base,
        "transposed": base.t(),
        "rows_step2": base[::2],
        "cols_1_step3": base[:, 1::3],
        "expanded": torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(4, 1).expand(4, 5),
        "expanded_0d": torch.tensor(7, dtype=torch.int32).expand(2, 3),
        "offset_view": torch.arange(20, dtype=torch.int64)[5:],
        "permuted3d": torch.arange(24, dtype=torch.float64).reshape(2, 3, 4).permute(2, 0, 1),
        "narrow_2d": torch.arange(100, dtype=torch.int16).reshape(10, 10)[2:5, 3:8],
        "bf16_step4": bf[3::4],
        "shared": {"weight": w, "weight_t": w.t(), "row1": w[1]},
        "partitioned": {"p0": flat[0:12].view(3, 4), "p1": flat[12:30].view(6, 3)},
    }


def make_params():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Embedding(5, 2))
    params = dict(m.named_parameters())
    params["frozen"] = nn.Parameter(torch.ones(2), requires_grad=False)
    params["leaf_requires_grad"] = torch.ones(2, requires_grad=True)  # plain tensor, not a Parameter
    params["plain"] = torch.tensor([1.0, 2.0])
    return params


class TinyBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(4)
        self.query_key_value = nn.Linear(4, 12)
        self.register_buffer("masked_bias", torch.tensor(-1e9))
        self.register_buffer("not_saved", torch.zeros(2), persistent=False)


class TinyNeoX(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_in = nn.Embedding(8, 4)
        self.layers = nn.ModuleList([TinyBlock(), TinyBlock()])
        self.final_layer_norm = nn.LayerNorm(4)
        self.bn = nn.BatchNorm1d(4)
        self.embed_out = nn.Linear(4, 8, bias=False)


def make_state_dict():
    torch.manual_seed(1)
    m = TinyNeoX()
    with torch.no_grad():
        m.embed_out.weight.copy_(torch.randn(8, 4).half().float())
    sd = m.state_dict()
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    return sd


def make_containers():
    t = lambda *v, dtype=torch.float32: torch.tensor(list(v), dtype=dtype)  # noqa: E731
    twice = t(9.0, 9.5)
    return {
        "nested": {"layers": [({"w": t(1.0, 2.0), "b": t(0.5)}, {"w": t(3.0)}), ({"w": t(4.0, 5.0, 6.0)},)]},
        "int_keys": {0: t(10.0), 7: "seven", -3: None, 2**40: t(11, dtype=torch.int64)},
        "tuple_keys": {(1, "a"): t(12.0), (2, 3): 4.5},
        "ints": {"zero": 0, "small": 5, "neg_small": -1, "i255": 255, "i256": 256, "i65535": 65535,
                 "i65536": 65536, "i2_31m1": 2**31 - 1, "i2_31": 2**31, "neg2_31": -2**31,
                 "neg2_31m1": -2**31 - 1, "i2_53": 2**53, "i2_53p1": 2**53 + 1, "i2_63": 2**63,
                 "neg2_63m5": -2**63 - 5, "i2_70": 2**70, "neg2_70": -2**70},
        "floats": {"pi": math.pi, "neg_zero": -0.0, "inf": math.inf, "ninf": -math.inf, "nan": math.nan,
                   "tiny": 5e-324, "big": 1.7976931348623157e308, "third": 1 / 3, "one": 1.0},
        "bytes": {"ascii": b"hello", "high": bytes([0x7E, 0x7F, 0x80, 0x81, 0xC3, 0xA9, 0xFF, 0x00]),
                  "empty": b"", "all256": bytes(range(256))},
        "strings": {"ascii": "abc", "latin": "café", "cjk": "日本語", "emoji": "🙂 ok", "empty": "",
                    "newline": "a\nb", "long": "x" * 300},
        "lone_surrogate": "a\ud800b",
        "singletons": {"none": None, "true": True, "false": False},
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "empty_set": set(),
        "complex": 1.5 - 2j,
        "slice": slice(1, 10, 2),
        "slice_none": slice(None, 5, None),
        "bytearray": bytearray(b"\x00\x01\xfe"),
        "dtype_value": torch.float16,
        "empty_list": [],
        "empty_tuple": (),
        "empty_dict": {},
        "twice": [twice, twice],  # the same tensor reached twice (memo BINGET): listed twice
    }


def container_scalars():
    s = []
    for k in ["zero", "small", "neg_small", "i255", "i256", "i65535", "i65536", "i2_31m1", "i2_31", "neg2_31",
              "neg2_31m1", "i2_53", "i2_53p1", "i2_63", "neg2_63m5", "i2_70", "neg2_70"]:
        s.append([K("ints"), K(k)])
    for k in ["pi", "neg_zero", "inf", "ninf", "nan", "tiny", "big", "third", "one"]:
        s.append([K("floats"), K(k)])
    for k in ["ascii", "high", "empty", "all256"]:
        s.append([K("bytes"), K(k)])
    for k in ["ascii", "latin", "cjk", "emoji", "empty", "newline", "long"]:
        s.append([K("strings"), K(k)])
    s += [[K("lone_surrogate")], [K("singletons"), K("none")], [K("singletons"), K("true")],
          [K("singletons"), K("false")], [K("int_keys"), K(7)], [K("int_keys"), K(-3)],
          [K("tuple_keys"), K((2, 3))], [K("set")], [K("frozenset")], [K("empty_set")], [K("complex")],
          [K("slice")], [K("slice_none")], [K("bytearray")], [K("dtype_value")]]
    return s


def make_namespace_args():
    return argparse.Namespace(
        num_layers=6, hidden_size=512, num_attention_heads=8, seq_length=2048, lr=6e-4, min_lr=0.0,
        fp16=True, bf16=False, tokenizer_type="HFTokenizer", vocab_file="/data/20B_tokenizer.json",
        data_path=None, attention_config=[[["global"], 6]], betas=(0.9, 0.95), eps=1e-8,
        optimizer={"type": "Adam", "params": {"lr": 0.0006, "betas": [0.9, 0.95]}},
        rotary_pct=0.25, huge=2**64, train_iters=143000, neg=-5, name_unicode="Pythia–70m",
    )


def make_namespace():
    args = make_namespace_args()
    args.pos_weight = torch.tensor([0.25, 0.5])  # a tensor inside a Namespace is walked
    return {"args": args, "iteration": 100, "args_list": [argparse.Namespace(a=1), argparse.Namespace()]}


def namespace_scalars():
    s = [[K("args")], [K("iteration")], [K("args_list"), I(0)], [K("args_list"), I(1)],
         [K("args_list"), I(0), A("a")]]
    for a in ["num_layers", "hidden_size", "seq_length", "lr", "min_lr", "fp16", "bf16", "tokenizer_type",
              "data_path", "eps", "rotary_pct", "huge", "neg", "name_unicode"]:
        s.append([K("args"), A(a)])
    s += [[K("args"), A("attention_config"), I(0), I(0), I(0)], [K("args"), A("attention_config"), I(0), I(1)],
          [K("args"), A("betas"), I(1)], [K("args"), A("optimizer"), K("type")],
          [K("args"), A("optimizer"), K("params"), K("lr")], [K("args"), A("optimizer"), K("params"), K("betas"), I(0)]]
    return s


def make_rng_state():
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    torch.rand(3)
    np.random.rand(3)
    random.random()
    return {
        "torch_rng": torch.get_rng_state(),
        "np_rng": np.random.get_state(),
        "py_rng": random.getstate(),
        "np_f64_scalar": np.float64(0.125),
        "np_f32_2d": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
        "np_i64_1d": np.array([-1, 2**40, 3], dtype=np.int64),
        "iteration": 5,
    }


RNG_SCALARS = [[K("np_rng"), I(0)], [K("np_rng"), I(1)], [K("np_rng"), I(2)], [K("np_rng"), I(3)],
               [K("np_rng"), I(4)], [K("py_rng"), I(0)], [K("py_rng"), I(1), I(0)], [K("py_rng"), I(1), I(1)],
               [K("py_rng"), I(1), I(624)], [K("py_rng"), I(2)], [K("np_f64_scalar")], [K("np_f32_2d")],
               [K("np_i64_1d")], [K("iteration")]]


def install_fake_deepspeed():
    """A fake `deepspeed.runtime.fp16.loss_scaler` module so pickle writes
    GLOBAL 'deepspeed.runtime.fp16.loss_scaler DynamicLossScaler' + NEWOBJ/BUILD."""
    parts = "deepspeed.runtime.fp16.loss_scaler".split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = []
            sys.modules[name] = mod
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], mod)
    mod = sys.modules["deepspeed.runtime.fp16.loss_scaler"]

    class LossScalerBase:
        pass

    class DynamicLossScaler(LossScalerBase):
        def __init__(self):
            self.cur_scale = 4096.0
            self.cur_iter = 1000
            self.last_overflow_iter = -1
            self.scale_factor = 2.0
            self.scale_window = 1000
            self.min_scale = 1.0
            self.delayed_shift = 2
            self.cur_hysteresis = 2
            self.consecutive_hysteresis = False
            self.raise_error_at_min_scale = True
            self.dynamic = True
            self.dtype = torch.float16

    for cls in (LossScalerBase, DynamicLossScaler):
        cls.__module__ = mod.__name__
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    return DynamicLossScaler


def make_deepspeed_like():
    scaler_cls = install_fake_deepspeed()
    g = torch.Generator().manual_seed(3)
    w = torch.randn(4, 3, generator=g).half()
    flat32 = torch.randn(16, generator=g)
    return {
        "module": collections.OrderedDict([
            ("sequential.0.word_embeddings.weight", w),
            ("sequential.2.norm.weight", torch.ones(3, dtype=torch.float16)),
        ]),
        "optimizer": {
            "dynamic_loss_scale": True,
            "overflow": False,
            "clip_grad": 1.0,
            "loss_scaler": scaler_cls(),
            "base_optimizer_state": [[{"exp_avg": torch.zeros(16), "exp_avg_sq": torch.full((16,), 1e-4),
                                       "step": 10}]],
            "single_partition_of_fp32_groups": [flat32],
            "zero_stage": 1,
            "partition_count": 1,
        },
        "lr_scheduler": {"last_batch_iteration": 999},
        "args": make_namespace_args(),
        "global_steps": 1000,
        "global_samples": 1024000,
        "skipped_steps": 3,
        "iteration": 1000,
        "dp_world_size": 1,
        "mp_world_size": 1,
        "ds_config": {"train_batch_size": 1024, "fp16": {"enabled": True, "loss_scale": 0}},
        "ds_version": "0.3.15+unknown",
        "buffer_names": [],
    }


DS_SCALARS = [[K("optimizer"), K("loss_scaler"), A("cur_scale")], [K("optimizer"), K("loss_scaler"), A("cur_iter")],
              [K("optimizer"), K("loss_scaler"), A("scale_window")],
              [K("optimizer"), K("loss_scaler"), A("last_overflow_iter")],
              [K("optimizer"), K("loss_scaler"), A("consecutive_hysteresis")],
              [K("optimizer"), K("loss_scaler"), A("dtype")],
              [K("optimizer"), K("dynamic_loss_scale")], [K("optimizer"), K("clip_grad")],
              [K("optimizer"), K("base_optimizer_state"), I(0), I(0), K("step")],
              [K("args"), A("num_layers")], [K("args")], [K("global_steps")], [K("ds_version")],
              [K("ds_config"), K("fp16"), K("loss_scale")], [K("lr_scheduler"), K("last_batch_iteration")]]


def make_legacy():
    g = torch.Generator().manual_seed(11)
    w = torch.randn(3, 4, generator=g)
    big = torch.arange(40, dtype=torch.int64)
    return {
        "weight": w,
        "weight_t": w.t(),
        "row2": w[2],
        "half": torch.tensor([1.0, -2.0, 65504.0, float("inf")], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -0.5, 3.0], dtype=torch.bfloat16),
        "i64_tail": big[33:],
        "flags": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 2),
        "step": 12,
        "name": "legacy",
    }


def make_proto4():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(2, 3, generator=g)
    return {
        "w": w,
        "w_t": w.t(),
        "ids": torch.arange(6, dtype=torch.int32)[1::2],
        "bytes_small": b"\x00\x80\xff",
        "bytes_big": bytes(range(256)) * 2,  # BINBYTES
        "set": {10, 20},
        "frozenset": frozenset({1}),
        "short_str": "short",
        "long_str": "y" * 400,  # BINUNICODE instead of SHORT_BINUNICODE
        "big": 2**70,
        "args": argparse.Namespace(lr=0.1, name="p4"),
        "od": collections.OrderedDict([("z", 1), ("a", 2)]),
    }


PROTO4_SCALARS = [[K("bytes_small")], [K("bytes_big")], [K("set")], [K("frozenset")], [K("short_str")],
                  [K("long_str")], [K("big")], [K("args")], [K("args"), A("lr")], [K("args"), A("name")],
                  [K("od"), K("z")], [K("od"), K("a")]]


def make_small():
    return {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.tensor([1, 2, 3]), "step": 7}


# --------------------------------------------------------------------------------------------
# Writing + verifying torch.save fixtures
# --------------------------------------------------------------------------------------------

EXPECTED = {"files": {}, "malicious": {}, "corrupt": {}}


def rel(path):
    return path.relative_to(OUT).as_posix()


def save(obj, name, api, protocol=2, legacy=False):
    path = OUT / name
    kwargs = {"pickle_protocol": protocol}
    if legacy:
        kwargs["_use_new_zipfile_serialization"] = False
    if api == "path":
        torch.save(obj, str(path), **kwargs)
    else:
        with open(path, "wb") as f:
            torch.save(obj, f, **kwargs)
    return path


def compare_tensor(a, b, where):
    assert a.dtype == b.dtype and a.shape == b.shape, where
    assert a.stride() == b.stride() and a.storage_offset() == b.storage_offset(), where
    assert isinstance(a, nn.Parameter) == isinstance(b, nn.Parameter), where
    assert a.requires_grad == b.requires_grad, where
    assert tensor_le_bytes(a) == tensor_le_bytes(b), where


def container_info(path):
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04":
        prefix, records = read_zip_records(data)
        pkl = dict(records)["data.pkl"]
        return {"format": "zip", "prefix": prefix, "records": records, "pickle": pkl}
    ranges, _raw = legacy_pickles(data)
    s, e = ranges[3]
    keys, _ = safe_decode(data[ranges[4][0]:ranges[4][1]])
    return {"format": "legacy", "pickle": data[s:e], "legacy_keys": keys}


def pickle_protocol(pkl):
    return pkl[1] if pkl[0] == 0x80 else 0


def verify_and_record(path, original, api, scalars=(), extra=None):
    """Load `path` with torch, check it against `original`, record expected values."""
    loaded, key_of = torch_load_with_keys(path)
    info = container_info(path)
    orig_t = walk(original)
    load_t = walk(loaded)
    assert [n for n, _ in orig_t] == [n for n, _ in load_t], (path, [n for n, _ in orig_t], [n for n, _ in load_t])
    # storage sharing must survive: same original storage <=> same key
    orig_groups, load_keys = {}, {}
    tensors = []
    for (name, a), (_, b) in zip(orig_t, load_t):
        compare_tensor(a, b, f"{path}:{name}")
        key = key_of[storage_id(b)]
        orig_groups.setdefault(storage_id(a), set()).add(key)
        load_keys.setdefault(key, set()).add(storage_id(a))
        tensors.append(tensor_entry(name, b, key))
    assert all(len(v) == 1 for v in orig_groups.values()), (path, orig_groups)
    assert all(len(v) == 1 for v in load_keys.values()), (path, load_keys)
    if info["format"] == "zip":
        names = {n for n, _ in info["records"]}
        for e in tensors:
            assert f"data/{e['storage_key']}" in names, (path, e)
    else:
        for e in tensors:
            assert e["storage_key"] in info["legacy_keys"], (path, e)

    _, u = safe_decode(info["pickle"])
    proto = pickle_protocol(info["pickle"])
    entry = {"format": info["format"]}
    if info["format"] == "zip":
        entry["prefix"] = info["prefix"]
    entry["protocol"] = proto
    entry["hand_built"] = False
    entry["save_api"] = api
    entry["globals"] = unique(py3_name(g, proto) for g in u.globals_raw)
    entry["globals_raw"] = unique(u.globals_raw)
    if info["format"] == "zip":
        entry["records"] = [{"name": n, "size": len(d)} for n, d in info["records"]]
    else:
        entry["storage_keys"] = info["legacy_keys"]
    entry["tensors"] = tensors
    entry["scalars"] = []
    entry["extra_scalars"] = []
    for steps in scalars:
        v_loaded = resolve(loaded, steps)
        v_orig = resolve(original, steps)
        where, e = scalar_entry(steps, v_loaded)
        where2, e2 = scalar_entry(steps, v_orig)
        assert (where, e) == (where2, e2), (path, e, e2)
        entry[where].append(e)
    if extra:
        entry.update(extra(loaded))
    EXPECTED["files"][rel(path)] = entry
    return entry


# --------------------------------------------------------------------------------------------
# Hand-built torch >= 2.1 style files (_rebuild_tensor_v3 + UntypedStorage)
# --------------------------------------------------------------------------------------------

REBUILD_V2 = G("torch._utils", "_rebuild_tensor_v2")
REBUILD_V3 = G("torch._utils", "_rebuild_tensor_v3")


def fresh_tuple(values):
    return tuple(int(v) for v in values)  # a new tuple object each time, like tuple(t.size())


def rebuild_args(storage, offset, size, stride):
    return (storage, offset, fresh_tuple(size), fresh_tuple(stride), False, collections.OrderedDict())


def decode_f8e4m3fn(b):
    sign = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 3) & 0xF, b & 0x7
    if e == 15 and m == 7:
        return float("nan")
    if e == 0:
        return sign * m * 2.0**-9
    return sign * (1 + m / 8) * 2.0 ** (e - 7)


def check_pickler_matches_torch():
    """Our stand-in pickler must reproduce torch 1.13's data.pkl byte for byte (v2 form)."""
    i16 = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int16)
    u8 = torch.arange(12, dtype=torch.uint8)
    real = {"a": i16, "a_t": i16.t(), "b": u8, "b_tail": u8[4:]}
    buf = io.BytesIO()
    torch.save(real, buf)
    torch_pkl = dict(read_zip_records(buf.getvalue())[1])["data.pkl"]
    short_t, byte_t = G("torch", "ShortStorage"), G("torch", "ByteStorage")
    k0, k1 = str(0), str(1)
    s0, s1 = (lambda: StorageRef(short_t, k0, 6)), (lambda: StorageRef(byte_t, k1, 12))
    mimic = {
        "a": Reduce(REBUILD_V2, rebuild_args(s0(), 0, (2, 3), (3, 1))),
        "a_t": Reduce(REBUILD_V2, rebuild_args(s0(), 0, (3, 2), (1, 3))),
        "b": Reduce(REBUILD_V2, rebuild_args(s1(), 0, (12,), (1,))),
        "b_tail": Reduce(REBUILD_V2, rebuild_args(s1(), 4, (8,), (1,))),
    }
    ours = fixture_dumps(mimic)
    assert ours == torch_pkl, "stand-in pickler differs from torch 1.13's pickle"


def make_v3(path, storage_module, builder):
    """uint16 and float8_e4m3fn tensors as torch >= 2.1 writes them."""
    u16_vals = np.array([0, 1, 255, 256, 32768, 65535], dtype=np.uint16)
    f8_bytes = bytes([0x00, 0x80, 0x01, 0x08, 0x7E, 0xFE, 0x7F, 0xFF, 0x38, 0x40, 0xB8, 0x3C])
    untyped = G(storage_module, "UntypedStorage")
    dt_u16, dt_f8 = G("torch", "uint16"), G("torch", "float8_e4m3fn")
    k0, k1 = str(0), str(1)
    u16_raw = u16_vals.astype("<u2").tobytes()

    def s0():
        return StorageRef(untyped, k0, len(u16_raw))

    def s1():
        return StorageRef(untyped, k1, len(f8_bytes))

    obj = {
        "u16": Reduce(REBUILD_V3, rebuild_args(s0(), 0, (2, 3), (3, 1)) + (dt_u16,)),
        "u16_t": Reduce(REBUILD_V3, rebuild_args(s0(), 0, (3, 2), (1, 3)) + (dt_u16,)),
        "f8": Reduce(REBUILD_V3, rebuild_args(s1(), 0, (12,), (1,)) + (dt_f8,)),
        "f8_tail_2d": Reduce(REBUILD_V3, rebuild_args(s1(), 4, (2, 4), (4, 1)) + (dt_f8,)),
    }
    pkl = fixture_dumps(obj)
    records = [("data.pkl", pkl), ("byteorder", b"little"), ("data/0", u16_raw), ("data/1", f8_bytes)]
    if builder == "torch_writer":
        # torch's own C++ zip writer (same container layout as torch.save); it adds `version`
        w = torch._C.PyTorchFileWriter(str(path))
        for name, data in records:
            w.write_record(name, data, len(data))
        w.write_end_of_file()
        del w
    else:
        ser_id = "".join(str((i * 7 + 3) % 10) for i in range(40)).encode()
        write_zip(path, "archive", records + [("version", b"3\n"), (".data/serialization_id", ser_id)])

    # ---- verify by decoding our own file without executing anything
    prefix, recs = read_zip_records(path)
    recs = dict(recs)
    decoded, u = safe_decode(recs["data.pkl"])
    assert recs["version"] == b"3\n" and recs["byteorder"] == b"little"
    expected_globals = ["torch._utils._rebuild_tensor_v3", f"{storage_module}.UntypedStorage",
                        "collections.OrderedDict", "torch.uint16", "torch.float8_e4m3fn"]
    assert unique(u.globals_raw) == expected_globals, u.globals_raw
    ops = [op.name for op, _arg, _pos in pickletools.genops(recs["data.pkl"])]
    assert ops[0] == "PROTO" and ops[-1] == "STOP" and ops.count("BINPERSID") == 4

    tensors = []
    specs = {"u16": (np.dtype("<u2"), "uint16"), "u16_t": (np.dtype("<u2"), "uint16"),
             "f8": (np.dtype("u1"), "float8_e4m3fn"), "f8_tail_2d": (np.dtype("u1"), "float8_e4m3fn")}
    for name, stub in walk(decoded, is_tensor=lambda o: isinstance(o, Stub)):
        storage, offset, size, stride, rg, hooks, dtype = stub._stub_args
        assert type(stub).full_name() == "torch._utils._rebuild_tensor_v3"
        assert storage.pid[0] == "storage" and storage.pid[3] == "cpu"
        key, nbytes = storage.pid[2], storage.pid[4]
        raw = recs[f"data/{key}"]
        assert len(raw) == nbytes
        npdt, dname = specs[name]
        assert dtype.full_name() == f"torch.{dname}"
        base = np.frombuffer(raw, dtype=npdt)
        arr = np.lib.stride_tricks.as_strided(base[offset:], shape=size,
                                              strides=[s * npdt.itemsize for s in stride])
        c = np.ascontiguousarray(arr)
        if dname == "uint16":
            values = [int(v) for v in c.reshape(-1)[:8]]
        else:
            values = [enc_float(decode_f8e4m3fn(int(v))) for v in c.reshape(-1)[:8]]
        tensors.append({
            "name": name, "dtype": dname, "shape": list(size), "stride": list(stride),
            "storage_offset": offset, "storage_key": key, "is_parameter": False, "requires_grad": rg,
            "sha256": hashlib.sha256(c.tobytes()).hexdigest(), "values": values,
        })
    # cross-check the uint16 values against numpy directly
    assert tensors[0]["values"] == [int(v) for v in u16_vals]
    assert tensors[1]["values"] == [int(v) for v in u16_vals.reshape(2, 3).T.reshape(-1)]
    EXPECTED["files"][rel(path)] = {
        "format": "zip", "prefix": prefix, "protocol": 2, "hand_built": True,
        "save_api": "hand:" + builder,
        "globals": expected_globals, "globals_raw": expected_globals,
        "records": [{"name": n, "size": len(d)} for n, d in read_zip_records(path)[1]],
        "tensors": tensors, "scalars": [], "extra_scalars": [],
        "note": ("torch>=2.1 form for dtypes without a legacy storage class; torch 1.13 cannot load it. "
                 f"Storage type GLOBAL is '{storage_module} UntypedStorage'."),
    }


# --------------------------------------------------------------------------------------------
# Malicious fixtures
# --------------------------------------------------------------------------------------------


class Payload:
    __slots__ = ("func", "args")

    def __init__(self, func, args):
        self.func = func
        self.args = args

    def __reduce__(self):
        return (self.func, self.args)


def make_malicious():
    mdir = OUT / "malicious"
    mdir.mkdir()
    cmd = f"touch {MARKER}"
    py = f"__import__('os').system('touch {MARKER}')"
    variants = [
        ("os_system.pt", G("os", "system"), (cmd,), 2, False, ["os.system"]),
        ("posix_system.pt", G("posix", "system"), (cmd,), 2, False, ["posix.system"]),
        ("subprocess_popen.pt", G("subprocess", "Popen"), (["touch", MARKER],), 2, False, ["subprocess.Popen"]),
        ("subprocess_call.pt", G("subprocess", "call"), (["touch", MARKER],), 2, False, ["subprocess.call"]),
        ("builtins_eval.pt", G("builtins", "eval"), (py,), 2, False, ["builtins.eval"]),
        ("py2_builtin_exec.pt", G("__builtin__", "exec"), (f"import os; os.system('touch {MARKER}')",), 2, False,
         ["builtins.exec"]),
        ("builtins_exec_proto4.pt", G("builtins", "exec"), (f"import os; os.system('touch {MARKER}')",), 4, False,
         ["builtins.exec"]),
        ("legacy_os_system.pt", G("os", "system"), (cmd,), 2, True, ["os.system"]),
    ]
    for fname, func, args, proto, legacy, bad in variants:
        weight = torch.arange(6, dtype=torch.float32).reshape(2, 3)
        obj = {"weight": weight, "payload": Payload(func, args), "bias": torch.tensor([0.5, -0.5])}
        path = mdir / fname
        kwargs = {"pickle_protocol": proto, "pickle_module": FIXTURE_PICKLE}
        if legacy:
            kwargs["_use_new_zipfile_serialization"] = False
        with open(path, "wb") as f:
            torch.save(obj, f, **kwargs)
        # Check without executing: disassemble + inert decode
        info = container_info(path)
        pkl = info["pickle"]
        pickletools.dis(pkl, out=io.StringIO())
        decoded, u = safe_decode(pkl)
        globals_py3 = unique(py3_name(g, proto) for g in u.globals_raw)
        offending = [g for g in globals_py3 if not g.startswith(("torch.", "collections."))]
        assert offending == bad, (fname, globals_py3)
        stub_tensors = walk(decoded, is_tensor=lambda o: isinstance(o, Stub) and
                            type(o).full_name() == "torch._utils._rebuild_tensor_v2")
        orig_tensors = walk(obj)
        assert [n for n, _ in stub_tensors] == [n for n, _ in orig_tensors]
        tensors = []
        for (name, stub), (_, t) in zip(stub_tensors, orig_tensors):
            storage, offset, size, stride, rg, _hooks = stub._stub_args
            assert (offset, tuple(size), tuple(stride), rg) == (t.storage_offset(), tuple(t.shape), t.stride(), False)
            key = storage.pid[2]
            if info["format"] == "zip":
                raw = dict(info["records"])[f"data/{key}"]
                assert raw == tensor_le_bytes(t), fname
            else:
                assert key in info["legacy_keys"]
            tensors.append(tensor_entry(name, t, key))
        entry = {"format": info["format"]}
        if info["format"] == "zip":
            entry["prefix"] = info["prefix"]
        entry.update({
            "protocol": proto, "globals": bad,
            "globals_raw": [g for g in unique(u.globals_raw) if py3_name(g, proto) in bad],
            "all_globals": globals_py3, "payload_path": "payload", "tensors": tensors,
        })
        EXPECTED["malicious"][rel(path)] = entry


# --------------------------------------------------------------------------------------------
# Corrupt fixtures
# --------------------------------------------------------------------------------------------


def try_torch_load(path):
    try:
        torch.load(str(path))
        return "ok"
    except BaseException as e:  # noqa: BLE001 - recorded for information only
        return f"error: {type(e).__name__}"


def make_corrupt(small_path, legacy_small_path):
    cdir = OUT / "corrupt"
    cdir.mkdir()
    small = small_path.read_bytes()
    prefix, records = read_zip_records(small)
    rec = dict(records)
    pkl = rec["data.pkl"]
    ops = list(pickletools.genops(pkl))
    corrupt = {}

    def put(name, data, defect, expect="error", **more):
        p = cdir / name
        p.write_bytes(data)
        corrupt[name] = (p, {"defect": defect, "expect": expect, **more})
        return p

    put("zip_cut_half.pt", small[: len(small) // 2],
        f"{rel(small_path)} cut to its first half ({len(small) // 2} of {len(small)} bytes): "
        "no central directory, no end-of-central-directory records", base=rel(small_path))
    eocd64 = small.rfind(b"PK\x06\x06")
    assert eocd64 > 0
    put("zip_cut_before_eocd.pt", small[:eocd64],
        f"{rel(small_path)} cut at byte {eocd64}, just before the ZIP64 end-of-central-directory record: "
        "central directory intact, ZIP64 EOCD, locator and classic EOCD missing", base=rel(small_path))

    def rebuilt(name, recs, defect, expect="error", **more):
        p = cdir / name
        write_zip(p, prefix, recs)
        corrupt[name] = (p, {"defect": defect, "expect": expect, "base": rel(small_path), **more})

    short = [(n, d[:20] if n == "data/0" else d) for n, d in records]
    rebuilt("storage_record_short.pt", short,
            f"record data/0 holds 20 bytes but the pickle needs 12 float32 = {len(rec['data/0'])} bytes "
            "(zip rebuilt, central directory valid)")

    mid_op = min(ops, key=lambda o: abs(o[2] - len(pkl) // 2))
    pos = mid_op[2]
    bad_pkl = pkl[:pos] + b"\xff" + pkl[pos:]
    rebuilt("pickle_unknown_opcode.pt", [(n, bad_pkl if n == "data.pkl" else d) for n, d in records],
            f"data.pkl has an unknown opcode byte 0xFF inserted at offset {pos} (before a {mid_op[0].name})",
            opcode_offset=pos)

    cut = len(pkl) // 2
    rebuilt("pickle_truncated.pt", [(n, pkl[:cut] if n == "data.pkl" else d) for n, d in records],
            f"data.pkl truncated to {cut} of {len(pkl)} bytes: ends without STOP")

    rebuilt("missing_storage_record.pt", [(n, d) for n, d in records if n != "data/1"],
            "the pickle names storage key '1' but the archive has no record data/1", missing_key="1")

    first_key = pkl.index(b"X\x01\x00\x00\x00w")  # BINUNICODE 'w', the first dict key
    assert first_key < 16
    huge_len = pkl[:first_key] + b"X\xff\xff\xff\xffw" + pkl[first_key + 6:]
    rebuilt("binunicode_len_4g.pt", [(n, huge_len if n == "data.pkl" else d) for n, d in records],
            "data.pkl's first key is a BINUNICODE whose declared length is 2**32-1 (far beyond the pickle)")

    float_t = G("torch", "FloatStorage")
    huge_pkl = fixture_dumps({"w": Reduce(REBUILD_V2, rebuild_args(StorageRef(float_t, "0", 12), 0,
                                                                  (10**8, 10**8), (10**8, 1)))})
    rebuilt("huge_shape.pt", [("data.pkl", huge_pkl), ("data/0", rec["data/0"]), ("version", b"3\n")],
            "valid pickle claiming a float32 tensor of shape (10**8, 10**8) (1e16 elements, more than 2**53) "
            "on a storage of 12 float32 (48 bytes); must be rejected without allocating")

    # nesting bomb: 100000 nested lists under key "bomb", after a real tensor
    sentinel = ["@@BOMB@@"]
    bomb_src = {"w": torch.arange(4, dtype=torch.float32), "bomb": sentinel}
    buf = io.BytesIO()
    torch.save(bomb_src, buf)
    _bp, brecs = read_zip_records(buf.getvalue())
    bpkl = dict(brecs)["data.pkl"]
    needle_start = bpkl.index(b"X\x04\x00\x00\x00bomb")
    needle = bpkl[needle_start:]
    # bomb key: X 'bomb' BINPUT n | ] BINPUT m | X '@@BOMB@@' BINPUT k | a | SETITEMS STOP
    list_op = needle.index(b"]", 9)
    tail = needle.index(b"a", list_op + 3 + 5 + 8)
    assert needle[tail + 1:] == b"u.", needle[tail:]
    depth = 100000
    bomb = b"]" * depth + b"a" * (depth - 1)
    bomb_pkl = bpkl[: needle_start + list_op] + bomb + needle[tail + 1:]
    bomb_path = cdir / "nesting_bomb.pt"
    write_zip(bomb_path, "archive", [(n, bomb_pkl if n == "data.pkl" else d) for n, d in brecs])
    loaded = torch.load(str(bomb_path))
    node, d = loaded["bomb"], 1
    while node:
        assert len(node) == 1
        node, d = node[0], d + 1
    assert d == depth, d
    bomb_tensor = tensor_entry("w", loaded["w"], "0")
    corrupt["nesting_bomb.pt"] = (bomb_path, {
        "defect": f"valid pickle whose value under key 'bomb' is {depth} nested lists (EMPTY_LIST x{depth}, "
                  f"APPEND x{depth - 1}); key 'w' is a normal float32 tensor",
        "expect": "ok", "depth": depth, "tensors": [bomb_tensor],
        "note": "must decode without a stack overflow (decode and walk iteratively); torch.load accepts it",
    })

    legacy = legacy_small_path.read_bytes()
    _ranges, raw_start = legacy_pickles(legacy)
    cut_at = raw_start + (len(legacy) - raw_start) // 2 + 3
    put("legacy_cut_in_data.pt", legacy[:cut_at],
        f"{rel(legacy_small_path)} (legacy format) cut at byte {cut_at}, inside the raw storage data "
        f"that starts at byte {raw_start}", base=rel(legacy_small_path))
    put("empty.pt", b"", "empty file (0 bytes)")
    rnd = np.random.default_rng(42).integers(0, 256, size=1024, dtype=np.uint8).tobytes()
    assert not rnd.startswith(b"PK") and rnd[0] != 0x80
    put("random_bytes.pt", rnd, "1024 random bytes (numpy default_rng(42)): neither zip nor pickle")

    corrupt["storage_record_short.pt"][1]["note"] = (
        "torch 1.13's torch.load does not notice (it grows the storage); a careful reader must refuse")
    for name, (p, e) in sorted(corrupt.items()):
        e["torch_1_13_load"] = try_torch_load(p)
        if e["expect"] == "error" and name not in ("storage_record_short.pt",):
            assert e["torch_1_13_load"].startswith("error"), (name, e)
        EXPECTED["corrupt"][rel(p)] = e


# --------------------------------------------------------------------------------------------


def main():
    assert sys.byteorder == "little"
    if os.environ.get("PYTHONHASHSEED") != "0":
        # str hashing decides the pickled order of set/frozenset items: fix it for reproducibility
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve())] + sys.argv[1:])
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    cwd_marker = Path.cwd() / MARKER
    marker_before = cwd_marker.exists()

    check_pickler_matches_torch()

    def state_dict_extra(loaded):
        return {"root_attributes": {"_metadata": {k: dict(v) for k, v in loaded._metadata.items()}}}

    # 1. dtypes (path API -> prefix "dtypes")
    o = make_dtypes()
    verify_and_record(save(o, "dtypes.pt", "path"), o, "path")
    # 2. 0-d and empty (file object -> prefix "archive")
    o = make_scalars_and_empty()
    verify_and_record(save(o, "scalars_and_empty.pt", "file"), o, "file")
    # 3. views and shared storage
    o = make_views()
    verify_and_record(save(o, "views.pt", "path"), o, "path")
    # 4. Parameters and a state_dict
    o = make_params()
    verify_and_record(save(o, "named_parameters.pt", "file"), o, "file")
    o = make_state_dict()
    verify_and_record(save(o, "state_dict.pt", "path"), o, "path", extra=state_dict_extra)
    # 5. containers and Python values
    o = make_containers()
    verify_and_record(save(o, "containers.pt", "file"), o, "file", scalars=container_scalars())
    # 6. argparse.Namespace
    o = make_namespace()
    verify_and_record(save(o, "namespace.pt", "file"), o, "file", scalars=namespace_scalars())
    # 7. RNG states and numpy
    o = make_rng_state()
    verify_and_record(save(o, "rng_state.pt", "path"), o, "path", scalars=RNG_SCALARS)
    # 8. foreign class (fake deepspeed loss scaler)
    o = make_deepspeed_like()
    verify_and_record(save(o, "deepspeed_like.pt", "file"), o, "file", scalars=DS_SCALARS)
    # 9./10. legacy format, protocol 4
    o = make_legacy()
    verify_and_record(save(o, "legacy.pt", "file", legacy=True), o, "file",
                      scalars=[[K("step")], [K("name")]])
    verify_and_record(save(o, "legacy_proto4.pt", "file", protocol=4, legacy=True), o, "file",
                      scalars=[[K("step")], [K("name")]])
    o = make_proto4()
    verify_and_record(save(o, "proto4.pt", "file", protocol=4), o, "file", scalars=PROTO4_SCALARS)
    # 12. same object saved through a path (prefix = base name minus last extension) and a file object
    o = make_small()
    small_path = save(o, "small.pt", "file")
    verify_and_record(small_path, o, "file", scalars=[[K("step")]])
    verify_and_record(save(o, "prefix_from_path.v1.pt", "path"), o, "path", scalars=[[K("step")]])
    legacy_small = save(o, "small_legacy.pt", "path", legacy=True)
    verify_and_record(legacy_small, o, "path", scalars=[[K("step")]])
    # 11. hand-built torch>=2.1 files
    make_v3(OUT / "v3_uint16_float8.pt", "torch.storage", "torch_writer")
    make_v3(OUT / "v3_zipfile_torch_module.pt", "torch", "zipfile")

    make_malicious()
    make_corrupt(small_path, legacy_small)

    # sanity on prefixes
    files = EXPECTED["files"]
    assert files["dtypes.pt"]["prefix"] == "dtypes"
    assert files["small.pt"]["prefix"] == "archive"

    EXPECTED["generator"] = {
        "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
        "script": "tools/make_torch_fixtures.py",
    }
    EXPECTED["rules"] = {
        "tensor_names": "depth-first in insertion order; dict str key k -> prefix + '.' + k (k at the root); "
                        "dict non-str key -> prefix + '[' + Python repr(k) + ']'; list/tuple index i -> "
                        "prefix + '[' + i + ']'; argparse.Namespace and foreign objects (NEWOBJ/BUILD with a "
                        "dict state) -> attributes as str keys; numpy arrays are not tensors; sets are not "
                        "walked; a tensor reachable twice is listed twice; attributes set on a dict by BUILD "
                        "(OrderedDict _metadata) are not walked",
        "sha256": "sha256 of the tensor's elements in C order, little-endian (bfloat16 as its 16 bits, bool as "
                  "one byte 0/1, complex as interleaved real/imag); empty tensor -> sha256 of no bytes",
        "values": "first up to 8 elements in C order; floats as JSON numbers except 'nan', 'inf', '-inf', "
                  "'-0.0' strings; ints as numbers when |v| < 2**53 else decimal strings; bool as true/false; "
                  "complex as [re, im]; float16/bfloat16/float8 as their exact value",
        "storage_key": "zip: the <key> of record data/<key>; legacy: the key string in the pickle's "
                       "persistent id (a C pointer value, differs on each generation)",
        "scalars": "type int | bigint (decimal string) | float (numbers or the strings above) | str | "
                   "bytes (hex) | bool | none | namespace (value = attribute names in order)",
        "extra_scalars": "types outside that list: complex [re, im], set/frozenset (items sorted by Python "
                         "repr), slice [start, stop, step], bytearray (hex), torch_dtype (name), numpy_scalar "
                         "{dtype, value}, ndarray {dtype (numpy typestr), shape, sha256 of C-order bytes, values}",
        "globals": "module.name of every GLOBAL/STACK_GLOBAL in order of first appearance; 'globals' after "
                   "Python's py2->py3 name map (protocol < 3 only), 'globals_raw' as written",
        "prefix": "zip folder name: torch 1.13 uses the file's base name minus its last extension when saving "
                  "to a path, 'archive' when saving to a file object",
    }
    with open(OUT / "expected.json", "w") as f:
        json.dump(EXPECTED, f, indent=1)
        f.write("\n")

    assert cwd_marker.exists() == marker_before, "a payload ran!"
    assert not (OUT / MARKER).exists() and not (ROOT / MARKER).exists()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    assert total < 1_500_000, total
    n = len(EXPECTED["files"]) + len(EXPECTED["malicious"]) + len(EXPECTED["corrupt"])
    print(f"wrote {n} fixtures + expected.json into {OUT.relative_to(ROOT)} ({total} bytes)")


if __name__ == "__main__":
    main()

"""What a torch.save pickle may name, and what calling it builds: the allowlist of globals.

A state_dict's pickle names a handful of globals: OrderedDict, torch's tensor/parameter rebuild functions,
storage classes, dtypes, torch.Size. `_resolve_global` maps exactly those to inert `_Global` stand-ins and
refuses every other name as it is referenced; `_reduce` (the pickle's REDUCE) builds plain values from them:
an OrderedDict, a tuple of ints, or a `Tensor` placeholder (storage, offset, shape, stride) validated against
its storage before any data is touched. Nothing named in the file is ever imported, looked up or called.
Storages come from persistent ids, checked by `_storage_ref`.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict

import numpy as np

from fastrnn._errors import LoadError, _shown


# torch storage class -> (numpy dtype of the raw bytes, result dtype). bfloat16 is stored as uint16 and widened
# exactly to float32 (its bits are the top half of a float32), because numpy has no bfloat16.
_STORAGE_CLASSES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
}
_TORCH_DTYPES = {
    "float64": "float64", "double": "float64", "float32": "float32", "float": "float32", "float16": "float16",
    "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64", "int32": "int32",
    "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16",
    "uint32": "uint32", "uint64": "uint64", "bool": "bool", "complex64": "complex64", "complex128": "complex128",
}
_UNTYPED = "untyped"  # torch.storage.UntypedStorage: numel counts bytes; the tensor (v3) carries the dtype

_KEY = re.compile(r"[A-Za-z0-9_]{1,64}\Z")  # storage keys are decimal strings; never a path


def raw_dtype(name):
    return np.dtype(np.uint16 if name == "bfloat16" else name)


def result_dtype(name):
    return np.dtype(np.float32 if name == "bfloat16" else name)


class _Global:
    """An allowed global, by name; REDUCE dispatches on `name`. Never anything the file could run."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype=None):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"<{self.name}>"


# What a quantized model's state_dict names: torch's packed parameters and quantized tensors and dtypes.
_QUANTIZED_NAMES = frozenset({"_rebuild_qtensor", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
                              "per_tensor_affine", "per_channel_affine", "QInt8Storage", "QUInt8Storage",
                              "QInt32Storage"})


def _resolve_global(module, name, where):
    full = f"{module}.{name}"
    if full == "collections.OrderedDict" or full == "torch.Size":
        return _Global(full)
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                                             "_rebuild_parameter_with_state"):
        return _Global(full)
    if module == "torch" and name in _STORAGE_CLASSES:
        return _Global("storage class", _STORAGE_CLASSES[name])
    if full in ("torch.storage.UntypedStorage", "torch.UntypedStorage"):
        return _Global("storage class", _UNTYPED)
    if module == "torch" and name in _TORCH_DTYPES:
        return _Global("dtype", _TORCH_DTYPES[name])
    if full == "torch.ScriptObject" or name in _QUANTIZED_NAMES:
        hint = (" (a quantized torch model, e.g. from torch.ao.quantization.quantize_dynamic: its weights are packed "
                "objects only torch can rebuild; save the float model's state_dict() instead and load it with "
                "precision='int8', which quantizes it per output row)")
    elif module in ("torch", "torch.storage"):
        hint = " (an unsupported dtype or storage type, e.g. quantised or float8)"
    else:
        hint = (" (the file holds a pickled Python object, not just tensors, e.g. torch.save(model); save "
                "model.state_dict() instead)")
    raise LoadError(f"{where}: refusing forbidden global '{full}'{hint}; fastrnn only rebuilds tensors, "
                    f"OrderedDicts and plain values and never runs code from a file")


class Storage:
    """One storage record: its key, element dtype name, element count, and where its bytes are."""

    __slots__ = ("key", "dtype", "numel", "record")

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel, self.record = key, dtype, numel, None

    @property
    def itemsize(self):
        return 1 if self.dtype == _UNTYPED else raw_dtype(self.dtype).itemsize

    @property
    def nbytes(self):
        return self.numel * self.itemsize


class _StorageView:
    """What BINPERSID yields: a range [start, start + length) of a storage, in its elements."""

    __slots__ = ("storage", "start", "length")

    def __init__(self, storage, start, length):
        self.storage, self.start, self.length = storage, start, length


class Tensor:
    """A tensor found in the pickle, validated against its storage but not read yet."""

    __slots__ = ("storage", "offset", "shape", "stride", "dtype_name")

    def __init__(self, storage, offset, shape, stride, dtype_name):
        self.storage, self.offset, self.shape, self.stride, self.dtype_name = storage, offset, shape, stride, dtype_name

    @property
    def dtype(self):
        """The dtype of the array `TorchFile.read` returns (bfloat16 becomes float32)."""
        return result_dtype(self.dtype_name)

    def __repr__(self):
        return f"Tensor(shape={self.shape}, dtype={self.dtype_name}, storage={self.storage.storage.key!r})"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value, what, where):
    if not isinstance(value, tuple) or not all(_is_int(v) and v >= 0 for v in value):
        raise LoadError(f"{where}: tensor {what} must be a tuple of non-negative ints, got {_shown(value)}")
    return value


def _key(key, where):
    """A dict key from the file: a scalar. Hashing a tuple walks all of it, and a memo-doubled tuple is 2**n."""
    if key is not None and not isinstance(key, (str, int, float)):
        raise LoadError(f"{where}: dict key of type {type(key).__name__}; state_dicts and checkpoints use str or "
                        f"int keys")
    return key


def _rebuild_tensor(args, where, v3):
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) or
    _rebuild_tensor_v3(..., hooks, dtype[, metadata]), as a validated placeholder."""
    count = (7, 8) if v3 else (6, 7)
    if not isinstance(args, tuple) or len(args) not in count:
        raise LoadError(f"{where}: malformed tensor record (expected {count[0]} or {count[1]} arguments)")
    view, offset, shape, stride, _requires_grad, hooks = args[:6]
    metadata = args[7 if v3 else 6] if len(args) == count[1] else None
    if not isinstance(view, _StorageView):
        raise LoadError(f"{where}: tensor record without a storage reference")
    if not _is_int(offset) or offset < 0:
        raise LoadError(f"{where}: tensor storage offset must be a non-negative int, got {_shown(offset)}")
    shape, stride = _int_tuple(shape, "size", where), _int_tuple(stride, "stride", where)
    if len(shape) != len(stride):
        raise LoadError(f"{where}: tensor size {shape} and stride {stride} differ in length")
    if hooks is not None and (not isinstance(hooks, dict) or hooks):
        raise LoadError(f"{where}: tensor with backward hooks is not a plain state_dict entry")
    if metadata:  # {'conj': True} / {'neg': True}: lazily conjugated or negated views
        raise LoadError(f"{where}: unsupported tensor metadata {_shown(metadata)}")
    storage = view.storage
    if v3:
        dtype = args[6]
        if not isinstance(dtype, _Global) or dtype.name != "dtype":
            raise LoadError(f"{where}: _rebuild_tensor_v3 without a dtype")
        if storage.dtype != _UNTYPED:
            raise LoadError(f"{where}: _rebuild_tensor_v3 on a typed storage (data/{storage.key})")
        dtype_name = dtype.dtype
        itemsize = raw_dtype(dtype_name).itemsize
        length = view.length // itemsize  # the untyped storage counts bytes
    else:
        if storage.dtype == _UNTYPED:
            raise LoadError(f"{where}: untyped storage data/{storage.key} used without a dtype")
        dtype_name, length = storage.dtype, view.length
    if math.prod(shape) and offset + sum((n - 1) * s for n, s in zip(shape, stride)) >= length:
        raise LoadError(f"{where}: tensor view (offset {offset}, size {shape}, stride {stride}) reaches past the "
                        f"end of storage data/{storage.key} ({length} elements)")
    return Tensor(view, offset, shape, stride, dtype_name)


def _reduce(func, args, where):
    if not isinstance(func, _Global):
        raise LoadError(f"{where}: REDUCE on {type(func).__name__}, which is not an allowed callable")
    if not isinstance(args, tuple):
        raise LoadError(f"{where}: REDUCE arguments must be a tuple")
    name = func.name
    if name == "collections.OrderedDict":
        if args == ():
            return OrderedDict()
        if len(args) == 1 and isinstance(args[0], list) and all(isinstance(p, tuple) and len(p) == 2 for p in args[0]):
            return OrderedDict((_key(k, where), v) for k, v in args[0])
    elif name == "torch.Size":
        if len(args) == 1 and isinstance(args[0], tuple):
            return _int_tuple(args[0], "torch.Size", where)
    elif name in ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3"):
        return _rebuild_tensor(args, where, v3=name.endswith("v3"))
    elif name in ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"):
        if len(args) in (3, 4) and isinstance(args[0], Tensor):
            return args[0]  # a Parameter is its tensor; requires_grad, hooks and Python state do not matter here
    else:
        raise LoadError(f"{where}: {name} is not callable")
    raise LoadError(f"{where}: unexpected arguments for {name}")


def _storage_ref(pid, where, fields):
    """Check a persistent id ('storage', StorageClass, key, location, numel[, view_metadata])."""
    if not isinstance(pid, tuple) or len(pid) != fields or pid[0] != "storage":
        raise LoadError(f"{where}: only storage persistent ids are allowed, got {_shown(pid)}")
    cls, key, location, numel = pid[1:5]
    if not isinstance(cls, _Global) or cls.name != "storage class":
        raise LoadError(f"{where}: storage reference without a storage class")
    if not isinstance(key, str) or not _KEY.match(key):
        raise LoadError(f"{where}: invalid storage key {_shown(key)}")
    if not isinstance(location, str) or not _is_int(numel) or numel < 0:
        raise LoadError(f"{where}: malformed storage reference {_shown(pid)}")
    return cls.dtype, key, numel

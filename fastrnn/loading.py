"""Files -> dict of numpy arrays, and "the RNN in this file" -> a ready fastrnn module. torch is never imported.

    load_state_dict(path)  torch.save zip or legacy file, .safetensors or .npz -> {name: ndarray}
    load(path_or_mapping)  finds the RNN/LSTM/GRU (or cell) parameters, infers the configuration from names and
                           shapes, returns the fastrnn module with those weights

The container is recognised by its first bytes, never by its extension and never by unpickling. Only the
tensors that are asked for are read: `load` reads the chosen RNN's weights and nothing else from a checkpoint.
"""
from __future__ import annotations

import logging
import math
import os
import re
import struct
import tokenize
import zipfile
from dataclasses import dataclass

import numpy as np

from fastrnn import _layout
from fastrnn._convert import to_numpy
from fastrnn._torchfile import LEGACY_MAGIC, PARSE_ERRORS, LoadError, Tensor, TorchFile, output_limit
from fastrnn.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = ["LoadError", "RNNConfig", "RNNGroup", "StateDict", "find_rnns", "load", "load_state_dict"]

logger = logging.getLogger("fastrnn")

# Checkpoint keys whose value is taken as the model's state_dict, in this order.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
_MAX_DEPTH = 32


class StateDict(dict):
    """dict[str, np.ndarray]; `source` says which entry of a checkpoint it came from ('' for the top level),
    e.g. "['model']" for torch.save({'model': model.state_dict(), 'epoch': 3}); `format` names the container
    ('torch.save zip', 'torch.save legacy', 'safetensors', 'npz' or 'mapping')."""

    source = ""
    format = ""


def load_state_dict(path):
    """Read every tensor of a torch.save file (zip or legacy), a .safetensors or an .npz file, without torch.

    Returns a StateDict (a dict of name -> numpy array). A checkpoint dict is unwrapped: its 'state_dict',
    'model_state_dict' or 'model' entry, else the single nested dict holding tensors, else every tensor under a
    dotted name ('ema.rnn.weight_ih_l0'); `.source` says which entry was used. float16/float32/float64 arrays
    keep their dtype, bfloat16 becomes float32 (exactly), integer buffers are returned as they are.
    Raises LoadError (a ValueError) for anything unusable, naming what was wrong and where.
    """
    with _open(path) as opened:
        arrays = opened.read(list(opened.shapes))
    result = StateDict(arrays)
    result.source = opened.source
    result.format = opened.format
    return result


def load(source, prefix=None, nonlinearity=None, batch_first=False, dtype=np.float32):
    """The RNN, LSTM or GRU (or cell) stored in `source`, as a fastrnn module with its weights loaded.

    source: a path (anything load_state_dict reads) or a mapping of names to arrays or torch tensors.
    prefix: which module to take when there are several, e.g. "encoder.rnn." (the part before weight_ih_l0).
    nonlinearity: RNN/RNNCell only; 'tanh' (the default) or 'relu'. Weights cannot tell them apart, so a ReLU
        RNN must be loaded with nonlinearity='relu'.
    batch_first: the calling convention of the returned RNN (not stored in weights); not for cells.
    dtype: np.float32 (default) or np.float64, the precision the module computes in.

    The kind, input_size, hidden_size, num_layers, bidirectional, proj_size and bias are inferred from the
    parameter names and shapes; any inconsistency is a LoadError naming the key.
    """
    with _open(source) as opened:
        groups = _find_groups(opened.shapes)
        where = opened.where
        if not groups:
            keys = list(opened.shapes)
            shown = ", ".join(repr(k) for k in keys[:8]) + (f", ... ({len(keys)} keys)" if len(keys) > 8 else "")
            raise LoadError(f"{where}: no RNN/LSTM/GRU weights found (looked for torch names such as "
                            f"'weight_ih_l0' or a cell's 'weight_ih'); keys: {shown or 'none'}")
        if prefix is None:
            if len(groups) > 1:
                listing = "; ".join(f"{p!r}: {_describe(p, names, opened.shapes)}" for p, names in groups.items())
                raise LoadError(f"{where}: found several RNNs, pass prefix= to choose one: {listing}")
            prefix = next(iter(groups))
        else:
            if not isinstance(prefix, str):
                raise TypeError(f"prefix: expected a str such as 'encoder.rnn.', got {type(prefix).__name__}")
            if prefix not in groups and prefix + "." in groups:
                prefix += "."
            if prefix not in groups:
                listing = ", ".join(repr(p) for p in groups)
                raise LoadError(f"{where}: no RNN weights under prefix {prefix!r}; candidates: {listing}")
        config = _infer(prefix, groups[prefix], opened.shapes, where)
        arrays = opened.read([prefix + name for name in groups[prefix]])
        from_file = opened.format != "mapping"  # a mapping's arrays are the caller's: never adopt those
    weights = {name[len(prefix):]: value for name, value in arrays.items()}
    for name, value in weights.items():
        if value.dtype.kind not in "fiu":
            raise LoadError(f"{where}: {prefix}{name} has dtype {value.dtype}, expected real numbers")
    module = config.build(nonlinearity, batch_first, dtype)
    module.load_state_dict(weights, _adopt=from_file)  # arrays read from a file belong to this module alone
    return module


# -- sources -------------------------------------------------------------------------------------------------
class _Opened:
    """An open source: `shapes` (name -> shape, in file order), `read(names)` -> {name: ndarray}, `source`
    (the checkpoint entry used), `where` (for messages)."""

    def __init__(self, where, shapes, reader, source="", close=None):
        self.where, self.shapes, self._reader, self.source, self._close = where, shapes, reader, source, close

    def read(self, names):
        return self._reader(names)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._close is not None:
            self._close()


def _open(source):
    if isinstance(source, (str, os.PathLike)):
        return _open_path(os.fspath(source))
    if hasattr(source, "keys") and hasattr(source, "__getitem__"):
        opened = _open_mapping(source)
        opened.format = "mapping"
        return opened
    raise TypeError(f"expected a file path or a mapping of names to arrays, got {type(source).__name__}")


def _open_path(path):
    try:
        with open(path, "rb") as file:
            head = file.read(max(len(LEGACY_MAGIC), 264))
            size = os.fstat(file.fileno()).st_size
    except OSError as exc:
        raise LoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if _is_npz(path):
            return _with_format(_open_npz(path), "npz")
        return _with_format(_open_torch(path), "torch.save zip")
    if head.startswith(LEGACY_MAGIC):
        return _with_format(_open_torch(path), "torch.save legacy")
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= size - 8:
        return _with_format(_open_safetensors(path), "safetensors")
    if not head:
        raise LoadError(f"{path}: empty file")
    if head[257:262] == b"ustar":
        raise LoadError(f"{path}: a tar archive (torch's pre-1.0 format), which fastrnn does not read; re-save it "
                        f"with a current torch")
    if head.startswith(b"\x93NUMPY"):
        raise LoadError(f"{path}: a single .npy array, not a state_dict; use np.savez for a dict of arrays")
    if head[:1] == b"\x80":
        raise LoadError(f"{path}: a plain pickle, not a torch.save file; fastrnn does not unpickle arbitrary "
                        f"objects")
    raise LoadError(f"{path}: not a torch.save, safetensors or npz file (starts with {head[:8]!r})")


def _with_format(opened, name):
    opened.format = name
    return opened


def _is_npz(path):
    """A zip of .npy members (np.savez) rather than a torch.save archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except PARSE_ERRORS as exc:
        raise LoadError(f"{path}: corrupt zip file ({type(exc).__name__}: {exc})") from None
    return bool(names) and all(name.endswith(".npy") for name in names)


def _open_torch(path):
    torch_file = TorchFile(path)
    try:
        tensors, source = _select(torch_file.root, lambda v: isinstance(v, Tensor), path)
    except BaseException:
        torch_file.close()
        raise

    def read(names):
        return dict(zip(names, torch_file.read([tensors[name] for name in names])))

    return _Opened(path, {name: t.shape for name, t in tensors.items()}, read, source, torch_file.close)


def _open_npz(path):
    try:
        _check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except LoadError:
        raise
    # numpy parses the .npy header text with tokenize and ast.literal_eval, whose errors are not ValueErrors
    except PARSE_ERRORS + (tokenize.TokenError, SyntaxError) as exc:
        raise LoadError(f"{path}: unusable npz file ({type(exc).__name__}: {exc})") from None
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):  # numpy hands back a member without the .npy magic as raw bytes
            raise LoadError(f"{path}: npz member {name}.npy is not an .npy array (it does not start with "
                            f"b'\\x93NUMPY')")
    return _Opened(path, {name: a.shape for name, a in arrays.items()}, lambda names: {n: arrays[n] for n in names})


def _check_npz_sizes(path):
    """Refuse sizes an npz declares beyond what it holds, before numpy allocates them: zipfile allocates a
    member's declared compressed size up front, and numpy an array's declared shape."""
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        for info in infos:
            if info.header_offset + info.compress_size > size:
                raise LoadError(f"{path}: npz member {info.filename} declares {info.compress_size} bytes at offset "
                                f"{info.header_offset}, past the end of the {size}-byte file")
        declared = sum(info.file_size for info in infos)
        if declared > output_limit(size):
            raise LoadError(f"{path}: npz members declare {declared} bytes in all, implausible for a {size}-byte "
                            f"file (limit {output_limit(size)})")
        for info in infos:
            with archive.open(info) as member:
                magic = member.read(8)
                if not magic.startswith(b"\x93NUMPY"):
                    continue  # not an array: refused by name after np.load
                read_header = np.lib.format.read_array_header_1_0 if magic[6] == 1 else \
                    np.lib.format.read_array_header_2_0
                shape, _fortran, dtype = read_header(member)
                needed = math.prod(shape) * dtype.itemsize
                if needed > info.file_size - member.tell():
                    raise LoadError(f"{path}: npz member {info.filename} declares shape {shape} of {dtype} "
                                    f"({needed} bytes) but holds {info.file_size - member.tell()} bytes of data")


def _open_safetensors(path):
    from safetensors import SafetensorError, deserialize, safe_open

    errors = PARSE_ERRORS + (SafetensorError,)
    try:
        handle = safe_open(path, framework="numpy")
        handle.__enter__()
        names = list(handle.keys())
        slices = {name: handle.get_slice(name) for name in names}
        shapes = {name: tuple(s.get_shape()) for name, s in slices.items()}
        dtypes = {name: s.get_dtype() for name, s in slices.items()}
    except errors as exc:
        raise LoadError(f"{path}: unusable safetensors file ({type(exc).__name__}: {exc})") from None

    def read(wanted):
        try:
            out = {name: handle.get_tensor(name) for name in wanted if dtypes[name] != "BF16"}
            if len(out) < len(wanted):  # numpy has no bfloat16: take the raw bytes and widen them exactly
                with open(path, "rb") as file:
                    raw = {name: info for name, info in deserialize(file.read()) if name in wanted}
                for name, info in raw.items():
                    if info["dtype"] == "BF16":
                        bits = np.frombuffer(info["data"], dtype="<u2").astype(np.uint32) << 16
                        out[name] = bits.view(np.float32).reshape(shapes[name])
            return {name: out[name] for name in wanted}
        except errors as exc:
            raise LoadError(f"{path}: unusable safetensors file ({type(exc).__name__}: {exc})") from None

    return _Opened(path, shapes, read, close=lambda: handle.__exit__(None, None, None))


def _open_mapping(mapping):
    def is_tensor(value):
        return isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "shape"))

    values, source = _select(mapping, is_tensor, "state_dict")
    shapes = {name: tuple(int(n) for n in value.shape) for name, value in values.items()}

    def read(names):
        try:
            return {n: to_numpy(values[n], f"state_dict[{n!r}]") for n in names}
        except TypeError as exc:  # an array of bool, complex, void...: unusable weights, as from a file
            raise LoadError(str(exc)) from None

    return _Opened("state_dict", shapes, read, source)


# -- checkpoints -------------------------------------------------------------------------------------------------
def _select(root, is_tensor, where):
    """(flat {name: tensor}, source) from a state_dict or a checkpoint holding one."""
    if not hasattr(root, "items"):
        raise LoadError(f"{where}: expected a dict of tensors (a state_dict), found a {type(root).__name__}")
    holds = {}  # id(dict) -> whether tensors sit somewhere below it; also guards against cycles and shared dicts

    def has_tensors(node, depth):
        key = id(node)
        if key not in holds:
            holds[key] = False
            if depth < _MAX_DEPTH:
                holds[key] = any(is_tensor(v) or (isinstance(v, dict) and has_tensors(v, depth + 1))
                                 for v in node.values())
        return holds[key]

    source, node = "", root
    for _ in range(_MAX_DEPTH):
        if any(is_tensor(v) for v in node.values()):
            break
        preferred = [k for k in CHECKPOINT_KEYS if isinstance(node.get(k), dict) and has_tensors(node[k], 1)]
        inner = preferred[:1] or [k for k, v in node.items() if isinstance(v, dict) and has_tensors(v, 1)]
        if len(inner) != 1:
            break
        source += f"[{inner[0]!r}]"
        node = node[inner[0]]
    flat = {}
    _flatten(node, "", is_tensor, flat, set(), 0)
    if not flat:
        raise LoadError(f"{where}: no tensors found in the file")
    if source:
        logger.info("%s: using checkpoint entry %s as the state_dict", where, source)
    return flat, source


def _flatten(node, prefix, is_tensor, out, seen, depth):
    if id(node) in seen or depth > _MAX_DEPTH:
        return
    seen.add(id(node))
    for key, value in node.items():
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            continue
        name = f"{prefix}{key}"
        if is_tensor(value):
            out[name] = value
        elif isinstance(value, dict):
            _flatten(value, name + ".", is_tensor, out, seen, depth + 1)


# -- discovery and inference -------------------------------------------------------------------------------------
_PARAM = re.compile(r"(?P<prefix>(?:.*\.)?)(?P<base>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                    r"(?P<suffix>_l(?P<layer>\d+)(?:_reverse)?)?\Z", re.S)
_KIND_BY_GATES = {1: "RNN", 3: "GRU", 4: "LSTM"}


def _find_groups(shapes):
    """{prefix: [local parameter names]} for every module-like group of torch RNN parameter names."""
    groups = {}
    for name in shapes:
        match = _PARAM.match(name)
        if match:
            groups.setdefault(match["prefix"], []).append(name[len(match["prefix"]):])
    return groups


def find_rnns(state_dict):
    """Every group of torch RNN parameter names in a mapping (name -> array or shape), as RNNGroup records,
    with the configuration inferred from names and shapes, or the reason it cannot be (`problem`).
    This is the discovery `load` uses, for tools that list what a file holds."""
    shapes = {name: tuple(getattr(value, "shape", value)) for name, value in state_dict.items()}
    found = []
    for prefix, names in _find_groups(shapes).items():
        keys = tuple(prefix + name for name in names)
        try:
            found.append(RNNGroup(prefix, keys, _infer(prefix, names, shapes, ""), None))
        except LoadError as exc:
            found.append(RNNGroup(prefix, keys, None, str(exc)))
    return found


@dataclass(frozen=True)
class RNNConfig:
    kind: str  # 'RNN', 'LSTM', 'GRU'
    cell: bool
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    proj_size: int
    bias: bool

    def __str__(self):
        if self.cell:
            return f"{self.kind}Cell(input_size={self.input_size}, hidden_size={self.hidden_size}, bias={self.bias})"
        proj = f", proj_size={self.proj_size}" if self.proj_size else ""
        return (f"{self.kind}(input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers="
                f"{self.num_layers}, bidirectional={self.bidirectional}{proj}, bias={self.bias})")

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def build(self, nonlinearity, batch_first, dtype):
        if nonlinearity is not None and self.kind != "RNN":
            raise ValueError(f"nonlinearity: only an RNN or RNNCell has one; the weights are those of a {self}")
        nonlinearity = "tanh" if nonlinearity is None else nonlinearity
        if self.cell:
            if batch_first:
                raise ValueError(f"batch_first: does not apply to a cell ({self})")
            if self.kind == "RNN":
                return RNNCell(self.input_size, self.hidden_size, bias=self.bias, nonlinearity=nonlinearity,
                               dtype=dtype)
            cls = LSTMCell if self.kind == "LSTM" else GRUCell
            return cls(self.input_size, self.hidden_size, bias=self.bias, dtype=dtype)
        common = dict(num_layers=self.num_layers, bias=self.bias, batch_first=batch_first,
                      bidirectional=self.bidirectional, dtype=dtype)
        if self.kind == "RNN":
            return RNN(self.input_size, self.hidden_size, nonlinearity=nonlinearity, **common)
        if self.kind == "LSTM":
            return LSTM(self.input_size, self.hidden_size, proj_size=self.proj_size, **common)
        return GRU(self.input_size, self.hidden_size, **common)


@dataclass(frozen=True)
class RNNGroup:
    """One RNN found in a state_dict: its key prefix ('' or ending in '.'), its full key names, and its inferred
    RNNConfig, or None with `problem` saying why its weights are unusable."""

    prefix: str
    keys: tuple
    config: RNNConfig | None
    problem: str | None


def _describe(prefix, names, shapes):
    try:
        return str(_infer(prefix, names, shapes, ""))
    except LoadError as exc:
        return f"unusable ({exc})"


def _layer_index(name):
    digits = _PARAM.match(name)["layer"]
    return int(digits) if len(digits) < 10 else 10**10  # past any real model; never int() an absurd string


def _infer(prefix, names, shapes, where):
    """The configuration that explains exactly these parameter names and shapes, or a LoadError naming a key."""
    local = {name: shapes[prefix + name] for name in names}

    def fail(name, problem):
        raise LoadError(f"{where + ': ' if where else ''}{prefix}{name}: {problem}")

    layered = [n for n in local if _PARAM.match(n)["suffix"]]
    cell = not layered
    if layered and len(layered) != len(local):
        plain = next(n for n in local if not _PARAM.match(n)["suffix"])
        fail(plain, f"a cell parameter name next to layer parameters such as {prefix}{layered[0]}")
    sfx = "" if cell else "_l0"
    for base in ("weight_ih", "weight_hh"):
        if base + sfx not in local:
            fail(base + sfx, "missing (needed to infer the configuration)")
        if len(local[base + sfx]) != 2:
            fail(base + sfx, f"expected a 2-D weight, got shape {local[base + sfx]}")
    (rows, input_size), (rows_hh, out_size) = local["weight_ih" + sfx], local["weight_hh" + sfx]
    proj_size, hidden_size = 0, out_size
    if "weight_hr" + sfx in local:
        shape = local["weight_hr" + sfx]
        if cell or len(shape) != 2:
            fail("weight_hr" + sfx, f"unexpected projection weight of shape {shape}")
        proj_size, hidden_size = shape
        if not 0 < proj_size < hidden_size:
            fail("weight_hr" + sfx, f"proj_size {proj_size} must be in [1, hidden_size={hidden_size})")
    if hidden_size == 0 or input_size == 0 or rows % hidden_size or rows // hidden_size not in _KIND_BY_GATES:
        fail("weight_ih" + sfx, f"shape {(rows, input_size)} is not (gates * hidden_size, input_size) with "
                                f"hidden_size={hidden_size} and 1 (RNN), 3 (GRU) or 4 (LSTM) gates")
    kind = _KIND_BY_GATES[rows // hidden_size]
    if proj_size and kind != "LSTM":
        fail("weight_hr" + sfx, f"a projection weight, but the gates say {kind}")
    layers = {_layer_index(n): n for n in layered}
    if layers and max(layers) >= len(local):  # a stray high index: name it rather than expect every layer below
        fail(layers[max(layers)], f"layer {max(layers)}, but only {len(local)} parameters were found")
    config = RNNConfig(kind, cell, input_size, hidden_size, max(layers) + 1 if layers else 1,
                     any(n.endswith("_reverse") for n in local), proj_size, ("bias_ih" + sfx) in local)
    mode = "RNN_TANH" if kind == "RNN" else kind
    expected = _layout.param_shapes(mode, config.input_size, hidden_size, config.num_layers, config.bias,
                                    config.bidirectional, proj_size, cell=cell)
    for name in local:
        if name not in expected:
            fail(name, f"unexpected for {config}")
    for name, shape in expected.items():
        if name not in local:
            fail(name, f"missing for {config}")
        if tuple(local[name]) != shape:
            fail(name, f"shape {tuple(local[name])}, expected {shape} for {config}")
    return config

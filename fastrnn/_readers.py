"""The containers fastrnn reads, each turned into an Opened source: names and shapes first, arrays on request.

Recognised by their first bytes, never by the extension and never by unpickling: torch.save zip and legacy files
(fastrnn._torchfile), .safetensors (the safetensors package's numpy API), .npz (allow_pickle=False), and mappings
of names to arrays or torch tensors. A checkpoint (a dict holding a state_dict) is unwrapped by _select.
"""
from __future__ import annotations

import logging
import math
import os
import struct
import tokenize
import zipfile

import numpy as np

from fastrnn._convert import to_numpy
from fastrnn._torchfile import LEGACY_MAGIC, PARSE_ERRORS, LoadError, Tensor, TorchFile, output_limit

logger = logging.getLogger("fastrnn")

# Checkpoint keys whose value is taken as the model's state_dict, in this order.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
_MAX_DEPTH = 32


class Opened:
    """An open source: `shapes` (name -> shape, in file order), `read(names)` -> {name: ndarray}, `source`
    (the checkpoint entry used), `where` (for messages). `rnns`: None, or for a file that describes its RNNs (ONNX,
    Keras) the list of fastrnn._modelfile.FoundRNN, whose configurations load() uses instead of inferring them."""

    rnns = None

    def __init__(self, where, shapes, reader, source="", close=None):
        self.where, self.shapes, self._reader, self.source, self._close = where, shapes, reader, source, close

    def read(self, names):
        return self._reader(names)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._close is not None:
            self._close()


def open_source(source):
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
        if _is_keras(path):
            from fastrnn._keras import open_keras_zip
            return open_keras_zip(path)
        return _with_format(_open_torch(path), "torch.save zip")
    if head.startswith(LEGACY_MAGIC):
        return _with_format(_open_torch(path), "torch.save legacy")
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= size - 8:
        return _with_format(_open_safetensors(path), "safetensors")
    if head.startswith(HDF5_MAGIC):
        from fastrnn._keras import open_keras_h5
        return open_keras_h5(path)
    if _is_onnx(head):
        from fastrnn._onnx import open_onnx
        return open_onnx(path)
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
    raise LoadError(f"{path}: not a torch.save, safetensors, npz, ONNX or Keras file (starts with {head[:8]!r})")


def _with_format(opened, name):
    opened.format = name
    return opened


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# ModelProto's fields after ir_version (field 1, the varint written first): their protobuf tags.
_ONNX_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}


def _is_onnx(head):
    """An ONNX ModelProto: ir_version (tag 0x08, a small varint) first, then another of the model's fields."""
    return len(head) >= 3 and head[0] == 0x08 and 0 < head[1] < 0x80 and head[2] in _ONNX_TAGS


def _is_keras(path):
    """A Keras 3 .keras archive (config.json, metadata.json and the weights) rather than a torch.save archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except PARSE_ERRORS as exc:
        raise LoadError(f"{path}: corrupt zip file ({type(exc).__name__}: {exc})") from None
    return {"config.json", "metadata.json"} <= names


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

    return Opened(path, {name: t.shape for name, t in tensors.items()}, read, source, torch_file.close)


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
    return Opened(path, {name: a.shape for name, a in arrays.items()}, lambda names: {n: arrays[n] for n in names})


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

    return Opened(path, shapes, read, close=lambda: handle.__exit__(None, None, None))


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

    return Opened("state_dict", shapes, read, source)


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

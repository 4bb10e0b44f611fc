"""Files -> dict of numpy arrays, and "the RNN in this file" -> a ready fastrnn module. torch is never imported.

    load_state_dict(path)  torch.save zip or legacy file, .safetensors, .npz, ONNX or Keras -> {name: ndarray}
    load(path_or_mapping)  finds the RNN/LSTM/GRU (or cell) parameters, infers the configuration from names and
                           shapes, returns the fastrnn module with those weights
ONNX and Keras files describe their RNNs (fastrnn._onnx, fastrnn._keras): their configurations are read, not
inferred, and their weights come converted to torch's names and layout (fastrnn._modelfile).

The container is recognised by its first bytes, never by its extension and never by unpickling. Only the
tensors that are asked for are read: `load` reads the chosen RNN's weights and nothing else from a checkpoint.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import numpy as np

from fastrnn import _modelfile
from fastrnn._kinds import KIND_BY_GATES
from fastrnn._readers import open_source
from fastrnn._torch_names import PARAM, layer_index, param_shapes
from fastrnn._torchfile import LoadError
from fastrnn.config import RNNConfig

__all__ = ["LoadError", "RNNConfig", "RNNGroup", "StateDict", "find_rnns", "load", "load_state_dict"]


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
    with open_source(path) as opened:
        arrays = opened.read(list(opened.shapes))
    result = StateDict(arrays)
    result.source = opened.source
    result.format = opened.format
    return result


def load(source, prefix=None, nonlinearity=None, batch_first=None, dtype=np.float32, precision=None):
    """The RNN, LSTM or GRU (or cell) stored in `source`, as a fastrnn module with its weights loaded.

    source: a path (anything load_state_dict reads) or a mapping of names to arrays or torch tensors.
    prefix: which module to take when there are several, e.g. "encoder.rnn." (the part before weight_ih_l0).
    nonlinearity: RNN/RNNCell only; 'tanh' (the default) or 'relu'. Weights cannot tell them apart, so a ReLU
        RNN must be loaded with nonlinearity='relu'.
    batch_first: the calling convention of the returned RNN; None: the file's (an ONNX node's layout, True for
        Keras, False for torch files, where weights cannot tell); not for cells.
    dtype: np.float32 (default) or np.float64, what the module takes, returns and computes in.
    precision: None (the dtype's), 'float32', 'bfloat16' or 'int8': the weights' format in the engine (README
        "Precision"); bfloat16 and int8 are for float32 modules.

    The kind, input_size, hidden_size, num_layers, bidirectional, proj_size and bias are inferred from the
    parameter names and shapes; any inconsistency is a LoadError naming the key. An ONNX node (or torch's chain of
    them) or a Keras layer gives its own configuration; prefix is then its node or layer name.
    """
    from fastrnn._base import check_dtype  # here: reading files (load_state_dict, find_rnns) never needs the engine

    dtype = check_dtype(dtype)  # before the sizes are counted in it
    with open_source(source) as opened:
        if opened.rnns is not None:
            return _modelfile.load(opened, prefix, nonlinearity, batch_first, dtype, precision)
        batch_first = bool(batch_first)
        groups = _find_groups(opened.shapes)
        where = opened.where
        if not groups:
            keys = list(opened.shapes)
            shown = ", ".join(repr(k) for k in keys[:8]) + (f", ... ({len(keys)} keys)" if len(keys) > 8 else "")
            raise LoadError(f"{where}: no RNN/LSTM/GRU weights found (looked for torch names such as "
                            f"'weight_ih_l0' or a cell's 'weight_ih'); keys: {shown or 'none'}")
        prefix = resolve_prefix(groups, prefix, where, opened.shapes)
        config = _infer(prefix, groups[prefix], opened.shapes, where, dtype, precision)
        module = config.build(nonlinearity, batch_first, dtype, precision=precision)
        from_file = opened.format != "mapping"  # a mapping's arrays are the caller's: never adopt those

        def read(names):
            """One layer's arrays: packed by the module at once, so a file's weights are never resident twice."""
            arrays = opened.read([prefix + name for name in names])
            for name, value in arrays.items():
                if value.dtype.kind not in "fiu":
                    raise LoadError(f"{where}: {name} has dtype {value.dtype}, expected real numbers")
            return {name[len(prefix):]: value for name, value in arrays.items()}

        module._load_layers(read, adopt=from_file)
    return module


# -- discovery and inference -------------------------------------------------------------------------------------
def _find_groups(shapes):
    """{prefix: [local parameter names]} for every module-like group of torch RNN parameter names."""
    groups = {}
    for name in shapes:
        match = PARAM.match(name)
        if match:
            groups.setdefault(match["prefix"], []).append(name[len(match["prefix"]):])
    return groups


def resolve_prefix(groups, prefix, where, shapes):
    """The key of `groups` ({prefix: names}, from _find_groups) that `prefix` chooses: None when there is exactly
    one group; 'encoder.rnn' and 'encoder.rnn.' name the same group. LoadError listing the candidates otherwise."""
    if prefix is None:
        if len(groups) > 1:
            listing = "; ".join(f"{p!r}: {_describe(p, names, shapes)}" for p, names in groups.items())
            raise LoadError(f"{where}: found several RNNs, pass prefix= to choose one: {listing}")
        return next(iter(groups))
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a str such as 'encoder.rnn.', got {type(prefix).__name__}")
    if prefix not in groups and prefix + "." in groups:
        prefix += "."
    if prefix not in groups:
        listing = ", ".join(repr(p) for p in groups)
        raise LoadError(f"{where}: no RNN weights under prefix {prefix!r}; candidates: {listing}")
    return prefix


def find_rnns(source):
    """Every RNN in a file (a path, as load() takes) or in a mapping (name -> array or shape), as RNNGroup records:
    torch names grouped with the configuration inferred from names and shapes, ONNX nodes and Keras layers with
    their own; `problem` says why one is unusable. This is the discovery `load` uses, for tools that list what a
    file holds."""
    if isinstance(source, (str, os.PathLike)):
        with open_source(source) as opened:
            if opened.rnns is not None:
                return [RNNGroup(rnn.prefix, tuple(rnn.prefix + name for name in rnn.params), rnn.config,
                                 rnn.problem, rnn.batch_first, rnn.merge_mode) for rnn in opened.rnns]
            source = opened.shapes
    shapes = {name: tuple(getattr(value, "shape", value)) for name, value in source.items()}
    found = []
    for prefix, names in _find_groups(shapes).items():
        keys = tuple(prefix + name for name in names)
        try:
            found.append(RNNGroup(prefix, keys, _infer(prefix, names, shapes, ""), None))
        except LoadError as exc:
            found.append(RNNGroup(prefix, keys, None, str(exc)))
    return found


@dataclass(frozen=True)
class RNNGroup:
    """One RNN found in a state_dict: its key prefix ('' or ending in '.'), its full key names, and its inferred
    RNNConfig, or None with `problem` saying why its weights are unusable. From an ONNX or Keras file: the node or
    layer name + '.', the calling convention it has there (batch_first; None: torch names cannot tell) and Keras'
    Bidirectional merge_mode ('sum', 'mul', 'ave'; None: fastrnn's concatenation)."""

    prefix: str
    keys: tuple
    config: RNNConfig | None
    problem: str | None
    batch_first: bool | None = None
    merge_mode: str | None = None


def _describe(prefix, names, shapes):
    try:
        return str(_infer(prefix, names, shapes, ""))
    except LoadError as exc:
        return f"unusable ({exc})"


def _infer(prefix, names, shapes, where, dtype=None, precision=None):
    """The configuration that explains exactly these parameter names and shapes, or a LoadError naming a key; also
    if a module of it could not fit in this machine's memory with `dtype` and `precision` (dtype None: in none of
    the precisions, as find_rnns cannot know which one will be asked for)."""
    local = {name: shapes[prefix + name] for name in names}

    def fail(name, problem):
        raise LoadError(f"{where + ': ' if where else ''}{prefix}{name}: {problem}")

    layered = [n for n in local if PARAM.match(n)["suffix"]]
    cell = not layered
    if layered and len(layered) != len(local):
        plain = next(n for n in local if not PARAM.match(n)["suffix"])
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
    if hidden_size == 0 or input_size == 0 or rows % hidden_size or rows // hidden_size not in KIND_BY_GATES:
        fail("weight_ih" + sfx, f"shape {(rows, input_size)} is not (gates * hidden_size, input_size) with "
                                f"hidden_size={hidden_size} and 1 (RNN), 3 (GRU) or 4 (LSTM) gates")
    kind = KIND_BY_GATES[rows // hidden_size]
    if proj_size and kind != "LSTM":
        fail("weight_hr" + sfx, f"a projection weight, but the gates say {kind}")
    layers = {layer_index(n): n for n in layered}
    if layers and max(layers) >= len(local):  # a stray high index: name it rather than expect every layer below
        fail(layers[max(layers)], f"layer {max(layers)}, but only {len(local)} parameters were found")
    peepholes = ("weight_p" + sfx) in local
    if peepholes and kind != "LSTM":
        fail("weight_p" + sfx, f"peephole weights, but the gates say {kind}")
    try:  # sizes a module refuses (a stack deeper than MAX_LAYERS, weights larger than this machine's memory)
        config = RNNConfig(kind, cell, input_size, hidden_size, max(layers) + 1 if layers else 1,
                           any(n.endswith("_reverse") for n in local), proj_size, ("bias_ih" + sfx) in local,
                           peepholes=peepholes)
        if dtype is None:  # the precision that needs least (a tiny hidden_size pads float32 panels the most)
            dtype, precision = np.float32, min((None, "bfloat16", "int8"), key=partial(config.weight_bytes, np.float32))
        config.check_memory(dtype, precision)
    except ValueError as exc:
        fail("weight_ih" + sfx, str(exc))
    expected = param_shapes(kind, config.input_size, hidden_size, config.num_layers, config.bias,
                            config.bidirectional, proj_size, cell=cell, peepholes=peepholes)
    for name in local:
        if name not in expected:
            fail(name, f"unexpected for {config}")
    for name, shape in expected.items():
        if name not in local:
            fail(name, f"missing for {config}")
        if tuple(local[name]) != shape:
            fail(name, f"shape {tuple(local[name])}, expected {shape} for {config}")
    return config

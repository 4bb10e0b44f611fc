"""Model files that describe their RNNs (ONNX graphs, Keras models): what the readers (fastrnn._onnx, fastrnn._keras)
find, as an Opened source for fastrnn.loading, and how load() builds a module from it.

A torch state_dict only names its weights, so loading infers the configuration from names and shapes. An ONNX node
or a Keras layer says what it is (activations, clip, direction, layout, GRU variant...), so its reader gives the
RNNConfig itself, with the weights already converted to torch's names and layout (gates reordered, kernels
transposed); each array is converted only when it is read.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastrnn._readers import Opened
from fastrnn._torchfile import LoadError
from fastrnn.config import RNNConfig

# Keras' Bidirectional merge modes beyond fastrnn's concatenation: out = merge(forward half, reverse half).
MERGES = {"sum": np.add, "mul": np.multiply, "ave": lambda a, b: (a + b) * 0.5}


@dataclass
class FoundRNN:
    """One RNN a reader found: `name` (an ONNX node, the first of a chain; a Keras layer), its RNNConfig or the
    `problem` that makes it unusable, the calling convention (batch_first), Keras' merge_mode ('sum', 'mul' or
    'ave'; None: fastrnn's concatenation), and params: torch name -> (shape, read() -> array in torch's layout)."""

    name: str
    config: RNNConfig | None = None
    problem: str | None = None
    batch_first: bool = False
    merge_mode: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def prefix(self):
        return self.name + "."


def rnn_config(kind, activations, **fields):
    """An RNNConfig from a file's description; an RNN whose activation is a plain tanh or relu in every direction
    says so as torch's nonlinearity, so it prints and compares like a torch RNN."""
    if kind == "RNN" and activations is not None:
        names = {entry[0] for entry in activations}  # (name, alpha, beta); tanh and relu take neither
        if len(names) == 1 and names <= {"tanh", "relu"}:
            return RNNConfig(kind, False, nonlinearity=names.pop(), **fields)
    return RNNConfig(kind, False, activations=activations, **fields)


def opened(where, fmt, found, others=None, close=None):
    """An Opened whose names are every found RNN's torch-named parameters under its prefix, plus the file's other
    tensors (others: name -> (shape, read)); `rnns` lists the RNNs with their own configurations."""
    entries = {}
    for rnn in found:
        entries.update({rnn.prefix + name: spec for name, spec in rnn.params.items()})
    for name, spec in (others or {}).items():
        entries.setdefault(name, spec)

    def read(names):
        return {name: entries[name][1]() for name in names}

    result = Opened(where, {name: tuple(spec[0]) for name, spec in entries.items()}, read, close=close)
    result.format = fmt
    result.rnns = list(found)
    return result


def choose(source, prefix):
    """The FoundRNN that `prefix` names (a node or layer name, with or without the trailing '.'); None: the only
    one. LoadError listing the candidates otherwise."""
    found, where = source.rnns, source.where
    if not found:
        raise LoadError(f"{where}: no RNN, LSTM or GRU found in this {source.format} file")
    listing = "; ".join(f"{rnn.name!r}: {rnn.config if rnn.problem is None else 'unusable (' + rnn.problem + ')'}"
                        for rnn in found)
    if prefix is None:
        if len(found) > 1:
            raise LoadError(f"{where}: found several RNNs, pass prefix= to choose one: {listing}")
        return found[0]
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a str such as 'encoder', got {type(prefix).__name__}")
    for rnn in found:
        if prefix in (rnn.name, rnn.prefix):
            return rnn
    raise LoadError(f"{where}: no RNN named {prefix!r}; candidates: {listing}")


def load(source, prefix, nonlinearity, batch_first, dtype, precision=None):
    """fastrnn.load for a described source: the chosen RNN built from its own configuration, its weights packed one
    matrix at a time; a Keras Bidirectional that sums, multiplies or averages comes wrapped in Merged."""
    rnn = choose(source, prefix)
    if rnn.problem is not None:
        raise LoadError(f"{source.where}: {rnn.name}: {rnn.problem}")
    module = rnn.config.build(nonlinearity, rnn.batch_first if batch_first is None else batch_first, dtype,
                              precision=precision)

    def read(names):
        arrays = {name: rnn.params[name][1]() for name in names}
        for name, value in arrays.items():
            if value.dtype.kind not in "fiu":
                raise LoadError(f"{source.where}: {rnn.name}: {name} has dtype {value.dtype}, expected real numbers")
        return arrays

    module._load_layers(read, adopt=True)  # the arrays are fresh conversions: the module keeps them
    return module if rnn.merge_mode is None else Merged(module, rnn.merge_mode)


class Merged:
    """A bidirectional module whose output merges its two directions as Keras' Bidirectional(merge_mode=...) does:
    out = merge(forward half, reverse half) per step ('sum', 'mul' or 'ave'); the states are the module's.
    Everything else (config, state_dict, load_state_dict, parameters) is the wrapped module's."""

    def __init__(self, module, merge_mode):
        if merge_mode not in MERGES:
            raise ValueError(f"merge_mode: expected one of {', '.join(MERGES)}, got {merge_mode!r}")
        if not module.bidirectional:
            raise ValueError(f"merge_mode: merges the two directions of a bidirectional module, not {module!r}")
        self.module, self.merge_mode = module, merge_mode

    def __call__(self, input, hx=None, lengths=None):
        out, states = self.module(input, hx, lengths=lengths)
        forward, reverse = np.split(out, 2, axis=-1)
        return MERGES[self.merge_mode](forward, reverse), states

    forward = __call__

    def __getattr__(self, name):
        if name == "module":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.module, name)

    def __repr__(self):
        return f"Merged({self.module!r}, merge_mode={self.merge_mode!r})"

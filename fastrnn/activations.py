"""Gate activations: the names the kernels compute, their ONNX parameters, and what a module's `activations=`
argument may say.

A cell has activation slots with ONNX's meaning: an RNN one (f), a GRU two (f for z and r, g for the candidate),
an LSTM three (f for i, f and o; g for the cell candidate; h for the cell output). Each entry is a name, a
(name, alpha, beta) tuple, or a Python callable taking and returning a numpy array (computed on a slower path,
fastrnn._slow). A bidirectional module takes one set for both directions, or twice as many entries (the forward
direction's, then the reverse's). Names are case- and underscore-blind, so ONNX's spellings work too
('HardSigmoid', 'hard_sigmoid').
"""
from __future__ import annotations

import numbers

# name: (alpha, beta) defaults, ONNX's where ONNX has them. Formulas in src_c/fastrnn_kernels.h and README.
ACTIVATIONS = {
    "sigmoid": (0.0, 0.0), "tanh": (0.0, 0.0), "relu": (0.0, 0.0), "identity": (0.0, 0.0),
    "affine": (1.0, 0.0), "leaky_relu": (0.01, 0.0), "thresholded_relu": (1.0, 0.0), "scaled_tanh": (1.0, 1.0),
    "hard_sigmoid": (0.2, 0.5), "elu": (1.0, 0.0), "softsign": (0.0, 0.0), "softplus": (0.0, 0.0), "step": (0.0, 0.0),
}
_BY_KEY = {name.replace("_", ""): name for name in ACTIVATIONS}
SLOTS = {"RNN": ("f",), "GRU": ("f", "g"), "LSTM": ("f", "g", "h")}
DEFAULTS = {"RNN": ("tanh",), "GRU": ("sigmoid", "tanh"), "LSTM": ("sigmoid", "tanh", "tanh")}


def entry(value, where="activations"):
    """One activation as (name, alpha, beta), or the callable itself; ValueError/TypeError naming `where`."""
    if callable(value):
        return value
    name, alpha, beta = (value, None, None) if isinstance(value, str) else _unpack(value, where)
    canonical = _BY_KEY.get(str(name).replace("_", "").lower()) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(f"{where}: unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}, a "
                         f"(name, alpha, beta) tuple or a callable")
    default_alpha, default_beta = ACTIVATIONS[canonical]
    return (canonical, float(default_alpha if alpha is None else alpha), float(default_beta if beta is None else beta))


def _one_entry(value):
    """('leaky_relu', 0.1, 0) is one entry, not three: no entry is a bare number."""
    return (isinstance(value, (tuple, list)) and 2 <= len(value) <= 3 and isinstance(value[0], str)
            and all(isinstance(p, numbers.Real) and not isinstance(p, bool) for p in value[1:]))


def _unpack(value, where):
    if isinstance(value, (tuple, list)) and 1 <= len(value) <= 3:
        parts = list(value) + [None] * (3 - len(value))
        if all(p is None or (isinstance(p, numbers.Real) and not isinstance(p, bool)) for p in parts[1:]):
            return parts
    raise TypeError(f"{where}: expected a name, a (name, alpha, beta) tuple or a callable, got {value!r}")


def normalize(kind, activations, bidirectional):
    """The activation entries of every direction, (forward's slots, reverse's slots) or (forward's,): defaults
    where `activations` is None."""
    slots = len(SLOTS[kind])
    directions = 2 if bidirectional else 1
    if activations is None:
        return (tuple(entry(name) for name in DEFAULTS[kind]),) * directions
    if isinstance(activations, str) or callable(activations) or not hasattr(activations, "__len__") \
            or _one_entry(activations):
        activations = (activations,)
    activations = tuple(activations)
    if len(activations) == slots:
        per_direction = (activations,) * directions
    elif bidirectional and len(activations) == 2 * slots:
        per_direction = (activations[:slots], activations[slots:])
    else:
        allowed = f"{slots}" + (f" (one set for both directions) or {2 * slots} (forward's, then reverse's)"
                                if bidirectional else "")
        raise ValueError(f"activations: a {kind} has {slots} activation slot{'s' * (slots > 1)} "
                         f"({', '.join(SLOTS[kind])}); expected {allowed} entries, got {len(activations)}")
    return tuple(tuple(entry(a, f"activations[{d * slots + i}]") for i, a in enumerate(entries))
                 for d, entries in enumerate(per_direction))


def is_default(kind, normalized):
    return all(tuple(e[0] for e in entries) == DEFAULTS[kind] for entries in normalized)


def has_callables(normalized):
    return any(callable(e) for entries in normalized for e in entries)


class _Named:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


def describe(normalized):
    """The entries as a constructor would take them (one set when both directions share it), for repr()."""
    def one(e):
        if callable(e):
            return _Named(getattr(e, "__name__", "callable"))
        name, alpha, beta = e
        return name if (alpha, beta) == ACTIVATIONS[name] else (name, alpha, beta)
    shown = normalized[:1] if all(entries == normalized[0] for entries in normalized) else normalized
    return repr(tuple(one(e) for entries in shown for e in entries))

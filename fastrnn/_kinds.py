"""The one vocabulary of cell kinds, used by the modules, the layout, loading, the CLI and the benchmarks.

A kind is the class name: 'RNN', 'LSTM' or 'GRU' (an RNN also has a nonlinearity, 'tanh' or 'relu'). torch spells
the same thing as a `mode` ('RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'); the command line in lower case.
"""
from __future__ import annotations

KINDS = ("RNN", "LSTM", "GRU")
NONLINEARITIES = ("tanh", "relu")
# Gate rows per hidden unit, in torch's order: LSTM [i, f, g, o], GRU [r, z, n].
NUM_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
KIND_BY_GATES = {gates: kind for kind, gates in NUM_GATES.items()}


def normalize(kind):
    """'lstm', 'LSTM', ... -> 'LSTM'; ValueError naming the choices otherwise."""
    name = kind.upper() if isinstance(kind, str) else kind
    if name not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return name


def torch_mode(kind, nonlinearity="tanh"):
    """torch's `mode` string for a kind: 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU'."""
    return f"RNN_{nonlinearity.upper()}" if kind == "RNN" else kind


def from_torch_mode(mode):
    """(kind, nonlinearity) for torch's `mode` string."""
    if mode in ("RNN_TANH", "RNN_RELU"):
        return "RNN", mode[4:].lower()
    return normalize(mode), "tanh"


def check_nonlinearity(nonlinearity):
    """An RNN's nonlinearity, 'tanh' or 'relu'; ValueError otherwise."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity

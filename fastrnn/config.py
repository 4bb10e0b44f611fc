"""What an RNN module is, as data (RNNConfig), and the one factory that turns it into a fastrnn module.

Every path that makes a module from a description goes through RNNConfig.build: fastrnn.load (a configuration
inferred from a file's names and shapes), fastrnn.from_torch (a live torch module), the command line and the
benchmarks. A module gives its own description back as `module.config`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fastrnn import _memory
from fastrnn import activations as _activations
from fastrnn._convert import check_int
from fastrnn._kinds import NUM_GATES, check_nonlinearity, normalize

# The engine's FRNN_WIDE_COPY_BYTES (src_c/fastrnn_kernels.h; fastrnn._engine.WIDE_COPY_BYTES, which a test holds
# equal): this module does not import the engine, as reading files must not.
WIDE_COPY_BYTES = 1 << 20

# The cell's options beyond torch's (defaults = torch's cell), with the kinds that have them.
SEMANTICS = {"activations": None, "clip": None, "peepholes": False, "input_forget": False,
             "linear_before_reset": True, "reverse": False}
_ONLY = {"peepholes": "LSTM", "input_forget": "LSTM", "linear_before_reset": "GRU"}
# The deepest stack accepted. Far beyond any trained model; a deeper one is a mistake, and building it would take
# minutes of Python per million layers (parameter names, then one engine layer each) before failing for memory.
MAX_LAYERS = 1 << 16
# Bytes the module and the engine keep per layer and direction beyond the weights' values (the engine's Layer, its
# arrays, the parameter names): about 3.7 KB measured (LSTM(1, 1, num_layers=20000)); the lower bound counted.
_LAYER_BYTES = 2048


@dataclass(frozen=True)
class RNNConfig:
    """kind: 'RNN', 'LSTM' or 'GRU'; cell: one step (RNNCell, ...) rather than a sequence module; nonlinearity:
    an RNN's 'tanh' or 'relu' (weights cannot tell them apart, so a loaded RNN says 'tanh' unless told).

    Beyond torch's cells (fastrnn.activations, README "Custom gates"): activations (per direction, normalized;
    None: the defaults), clip (pre-activations bounded to [-clip, clip]; None: no clip), peepholes and input_forget
    (LSTM), linear_before_reset (GRU; True is torch's, False ONNX's default), reverse (one direction, run from the
    last step)."""

    kind: str
    cell: bool
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: int = 0
    bias: bool = True
    nonlinearity: str = "tanh"
    activations: tuple | None = None
    clip: float | None = None
    peepholes: bool = False
    input_forget: bool = False
    linear_before_reset: bool = True
    reverse: bool = False

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        set_("kind", normalize(self.kind))
        for name, minimum in (("input_size", 1), ("hidden_size", 1), ("num_layers", 1), ("proj_size", 0)):
            set_(name, check_int(name, getattr(self, name), minimum))
        if self.num_layers > MAX_LAYERS:
            raise ValueError(f"num_layers: expected at most {MAX_LAYERS}, got {self.num_layers}")
        if self.proj_size and (self.kind != "LSTM" or self.cell):
            raise ValueError(f"proj_size: only an LSTM (not a cell) has a projection, got {self.proj_size} for "
                             f"{self.kind}{'Cell' if self.cell else ''}")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size: must be smaller than hidden_size ({self.hidden_size}), got {self.proj_size}")
        check_nonlinearity(self.nonlinearity)
        for name, kind in _ONLY.items():
            if getattr(self, name) != SEMANTICS[name] and self.kind != kind:
                raise ValueError(f"{name}: only {'an' if kind == 'LSTM' else 'a'} {kind} has it, not this {self.kind}")
        if self.reverse and (self.bidirectional or self.cell):
            raise ValueError("reverse: a one-direction layer that runs from its last step; a bidirectional module "
                             "already has its reverse direction, and a cell takes one step")
        if self.clip is not None:
            if isinstance(self.clip, bool) or not isinstance(self.clip, (int, float)) or not self.clip > 0:
                raise ValueError(f"clip: expected a number > 0 (or None: no clip), got {self.clip!r}")
            set_("clip", float(self.clip))
        if self.activations is not None:
            normalized = _activations.normalize(self.kind, self.activations, self.bidirectional)
            if self.kind == "RNN" and self.nonlinearity != "tanh" and normalized != self._defaults():
                raise ValueError(f"activations: give an RNN's activation either as nonlinearity="
                                 f"{self.nonlinearity!r} or in activations, not both")
            set_("activations", None if normalized == self._defaults() else normalized)

    def _defaults(self):
        """The activations of torch's cell (an RNN's from its nonlinearity), per direction."""
        if self.kind == "RNN":
            return _activations.normalize("RNN", (self.nonlinearity,), self.bidirectional)
        return _activations.normalize(self.kind, None, self.bidirectional)

    @property
    def gate_activations(self):
        """The activation entries of every direction, defaults filled in."""
        return self.activations if self.activations is not None else self._defaults()

    @property
    def standard(self):
        """torch's cell: default activations, no clip, no peepholes, no coupling, linear before reset."""
        return all(getattr(self, name) == default for name, default in SEMANTICS.items() if name != "reverse")

    @property
    def slow(self):
        """Whether an activation is a Python callable: the cell then runs on fastrnn._slow, not in the kernels."""
        return self.activations is not None and _activations.has_callables(self.activations)

    def __str__(self):
        extra = "".join(f", {name}={getattr(self, name)!r}" for name, default in SEMANTICS.items()
                        if name != "activations" and getattr(self, name) != default)
        if self.activations is not None:
            extra += f", activations={_activations.describe(self.activations)}"
        if self.kind == "RNN" and self.nonlinearity != "tanh":
            extra += f", nonlinearity={self.nonlinearity!r}"
        if self.cell:
            return (f"{self.kind}Cell(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                    f"bias={self.bias}{extra})")
        proj = f", proj_size={self.proj_size}" if self.proj_size else ""
        return (f"{self.kind}(input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers="
                f"{self.num_layers}, bidirectional={self.bidirectional}{proj}, bias={self.bias}{extra})")

    @property
    def out_size(self):
        """Features per direction of the output and of h: proj_size, or hidden_size without a projection."""
        return self.proj_size or self.hidden_size

    def weight_bytes(self, dtype=np.float32, precision=None):
        """Bytes a module of this configuration holds at least: its weights as the engine keeps them (matrices in
        panels of the precision's format, as src_c/dispatch.c's frnn_packed_bytes counts them, with int8's scale and
        sum per row, a small bfloat16 matrix's widened copy; torch's biases, peepholes), for bfloat16 and int8 also
        the float32 weights the module keeps for state_dict, and its bookkeeping per layer. Closed form: it never
        loops over layers."""
        itemsize = np.dtype(dtype).itemsize
        reduced = precision in ("bfloat16", "int8")
        lanes, k_group = (16, 2 if precision == "bfloat16" else 4) if reduced else (64 // itemsize, 1)

        def panels(gates, units, K):  # frnn_packed_bytes: 64-byte groups of `lanes` units by k_group columns
            groups = -(-K // k_group)
            if reduced:  # padded to whole AMX tiles of 16 groups
                groups = -(-groups // 16) * 16
            nbytes = -(-units // lanes) * groups * gates * 64
            if precision == "bfloat16" and 2 * nbytes <= WIDE_COPY_BYTES:  # and its float32-widened copy
                nbytes *= 3
            return nbytes + (8 * gates * units if precision == "int8" else 0)

        G, H, P = NUM_GATES[self.kind], self.hidden_size, self.out_size
        D, L = 2 if self.bidirectional else 1, 1 if self.cell else self.num_layers
        vectors = (2 * G * H * self.bias + 3 * H * self.peepholes) * itemsize

        def direction(K):  # one direction of a layer whose input has K features
            split = self.kind == "GRU" and not self.linear_before_reset  # W_hh's r, z rows and n rows packed apart
            recurrent = panels(2, H, P) + panels(1, H, P) if split else panels(G, H, P)
            nbytes = panels(G, H, K) + recurrent + (panels(1, P, H) if self.proj_size else 0) + vectors
            if reduced:  # the float32 matrices, in torch's layout
                nbytes += (G * H * (K + P) + (P * H if self.proj_size else 0)) * itemsize
            return nbytes

        return D * (direction(self.input_size) + (L - 1) * direction(D * P)) + D * L * _LAYER_BYTES

    def check_memory(self, dtype=np.float32, precision=None):
        """ValueError, before anything is built, if a module of this configuration could not fit in this machine's
        memory (fastrnn._memory)."""
        name = np.dtype(dtype).name
        reduced = precision in ("bfloat16", "int8")
        held = f"{precision} weights (and their {name} copy)" if reduced else f"{name} weights"
        _memory.check(self.weight_bytes(dtype, precision), lambda: (self, f"for its {held}"))

    def as_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def semantics(self):
        """The options beyond torch's that differ from the defaults, as constructor keywords."""
        options = {name: getattr(self, name) for name, default in SEMANTICS.items() if getattr(self, name) != default}
        if self.activations is not None:  # per direction -> the flat list a constructor takes
            first, *rest = self.activations
            options["activations"] = first if all(r == first for r in rest) else first + rest[0]
        return options

    def build(self, nonlinearity=None, batch_first=False, dtype=np.float32, dropout=0.0, precision=None,
              **semantics):
        """The fastrnn module this describes (random weights until load_state_dict). nonlinearity overrides the
        config's (RNN and RNNCell only); batch_first and dropout are calling conventions, not weights; semantics
        (activations, clip, input_forget, linear_before_reset, reverse) override the config's, for options the
        weights cannot tell."""
        from fastrnn import cells, modules

        config = self.replace(**semantics) if semantics else self
        if nonlinearity is not None:
            if self.kind != "RNN":
                raise ValueError(f"nonlinearity: only an RNN or RNNCell has one; the weights are those of a {self}")
            config = config.replace(nonlinearity=nonlinearity)
        options = config.semantics()
        if config.kind == "RNN":
            options["nonlinearity"] = config.nonlinearity
        if config.cell:
            if batch_first:
                raise ValueError(f"batch_first: does not apply to a cell ({config})")
            cls = getattr(cells, f"{config.kind}Cell")
            return cls(config.input_size, config.hidden_size, bias=config.bias, dtype=dtype, precision=precision,
                       **options)
        if config.proj_size:
            options["proj_size"] = config.proj_size
        cls = getattr(modules, config.kind)
        return cls(config.input_size, config.hidden_size, num_layers=config.num_layers, bias=config.bias,
                   batch_first=batch_first, dropout=dropout, bidirectional=config.bidirectional, dtype=dtype,
                   precision=precision, **options)

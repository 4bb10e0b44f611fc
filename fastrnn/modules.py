"""The torch.nn-compatible classes: RNN, LSTM, GRU and their cells.

This layer checks arguments and shapes, handles batch_first, unbatched input, initial states and
variable lengths, and hands contiguous buffers to the engine (fastrnn._engine) through the weight
layout of fastrnn._layout. Names, defaults, call conventions and output shapes are torch's.
"""
from __future__ import annotations

import math
from collections import OrderedDict, namedtuple

import numpy as np

from fastrnn import _layout
from fastrnn._convert import to_numpy
from fastrnn.streaming import Stream

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

_DTYPES = {np.dtype(np.float32), np.dtype(np.float64)}


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _check_dtype(dtype):
    if dtype is None:  # torch's factory default
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in _DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


class _Module:
    """What RNNs and cells share: parameters under torch names, state_dict round-trips, packing."""

    _mode: str

    def _init_params(self, shapes, hidden_size, dtype):
        # torch's default initialisation, so an unloaded module behaves like a fresh torch one.
        bound = 1.0 / math.sqrt(hidden_size)
        rng = np.random.default_rng()
        self._params = OrderedDict()
        for name, shape in shapes.items():
            value = rng.random(shape, dtype=dtype)  # drawn in the module's dtype: no float64 detour
            value *= 2 * bound
            value -= bound
            value.flags.writeable = False
            self._params[name] = value
        self._packed = None

    # The engine's packed weights are built on first use and rebuilt after load_state_dict, so a module
    # made only to receive a state_dict (as fastrnn.load does) is packed once, with its real weights.
    @property
    def _layers(self):
        packed = self.__dict__.get("_packed")
        if packed is None:
            packed = self._packed = self._pack()
        return packed

    def __getstate__(self):
        # The packed layers hold raw pointers: pickle the torch-named parameters, repack on first use.
        return {k: v for k, v in self.__dict__.items() if k != "_packed"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._packed = None

    def __getattr__(self, name):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        # Assigning a parameter attribute would shadow the weights the engine packed and be silently ignored.
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            raise AttributeError(f"{name}: parameters are set through load_state_dict({{{name!r}: array}}, "
                                 f"strict=False), which checks the shape and repacks the engine's weights")
        object.__setattr__(self, name, value)

    def named_parameters(self):
        """(torch name, array) pairs in torch's order; the arrays are read-only."""
        return iter(self._params.items())

    def eval(self):
        """For torch-style code: fastrnn modules are always in inference mode (dropout never applies)."""
        return self

    def state_dict(self):
        """The parameters as an OrderedDict of numpy arrays (copies) under torch's names."""
        return OrderedDict((name, value.copy()) for name, value in self._params.items())

    def load_state_dict(self, state_dict, strict=True, *, _adopt=False):
        """Copy parameters from a mapping of torch names to arrays (numpy, torch tensors, array-likes).

        With strict=True (the default) a missing or unexpected key is an error; a wrong shape always is.
        Nothing is changed unless every value is usable. Returns (missing_keys, unexpected_keys).
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"state_dict: expected a mapping of names to arrays, got {type(state_dict).__name__}")
        missing = [name for name in self._params if name not in state_dict]
        unexpected = [key for key in state_dict.keys() if key not in self._params]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                parts.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
            raise KeyError(f"Error loading state_dict into {self!r}: " + "; ".join(parts))
        new = OrderedDict(self._params)
        for name, current in self._params.items():
            if name not in state_dict:
                continue
            value = to_numpy(state_dict[name], f"state_dict[{name!r}]")
            if value.shape != current.shape:
                raise ValueError(
                    f"state_dict[{name!r}]: expected shape {current.shape}, got {value.shape} for {self!r}"
                )
            # _adopt (fastrnn.load's private fast path): arrays nobody else holds are kept, not copied.
            owned = _adopt and value.dtype == self.dtype and value.flags.c_contiguous and value.flags.owndata
            value = value if owned else np.array(value, dtype=self.dtype, order="C", copy=True)
            value.flags.writeable = False
            new[name] = value
        self._params = new
        self._packed = None
        return IncompatibleKeys(missing, unexpected)

    def stream(self, batch_size=1, initial=None):
        """A Stream that carries this module's state across calls (see fastrnn.streaming.Stream).

        initial: the starting state in the layout the module returns (h_n, or (h_n, c_n) for LSTM);
        zeros if None. Not available for bidirectional modules.
        The stream runs the weights the module has when it is created; after load_state_dict, make a new one.
        """
        return Stream(self, batch_size, initial)

    def _state(self, value, name, shape, unbatched):
        """An initial state as a fresh C-contiguous array of `shape` (the batched shape), zeros if None."""
        if value is None:
            return np.zeros(shape, dtype=self.dtype)
        array = value if type(value) is np.ndarray else to_numpy(value, name)
        expected = shape[:-2] + shape[-1:] if unbatched else shape
        if array.shape != expected:
            kind = "unbatched " if unbatched else ""
            raise ValueError(f"{name}: expected shape {expected} for {kind}input, got {array.shape}")
        return np.array(array.reshape(shape), dtype=self.dtype, order="C", copy=True)


class _RNNBase(_Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=np.float32):
        self.input_size = _check_int("input_size", input_size, 1)
        self.hidden_size = _check_int("hidden_size", hidden_size, 1)
        self.num_layers = _check_int("num_layers", num_layers, 1)
        self.proj_size = _check_int("proj_size", proj_size, 0)
        if self.proj_size and mode != "LSTM":
            raise ValueError("proj_size: only LSTM supports a projection")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size: must be smaller than hidden_size ({hidden_size}), got {proj_size}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a number in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)  # accepted for torch compatibility; inference applies no dropout
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.dtype = _check_dtype(dtype)
        self._mode = mode
        shapes = _layout.param_shapes(mode, self.input_size, self.hidden_size, self.num_layers, self.bias,
                                      self.bidirectional, self.proj_size)
        self._init_params(shapes, self.hidden_size, self.dtype)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _out_size(self):
        return self.proj_size or self.hidden_size

    def _pack(self):
        return [
            _layout.pack_layer(self._mode, self._params, layer, self.num_directions, self.dtype)
            for layer in range(self.num_layers)
        ]

    def _extra_repr(self):
        parts = [str(self.input_size), str(self.hidden_size)]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        if not self.bias:
            parts.append("bias=False")
        if self.batch_first:
            parts.append("batch_first=True")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        if self.bidirectional:
            parts.append("bidirectional=True")
        if self.proj_size:
            parts.append(f"proj_size={self.proj_size}")
        if self.dtype != np.float32:
            parts.append("dtype=float64")
        return parts

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(self._extra_repr())})"

    def _split_hx(self, hx):
        return hx, None

    def _join_states(self, h_n, c_n):
        return h_n

    def forward(self, input, hx=None, lengths=None):
        """Run the sequence; returns (output, h_n) or, for LSTM, (output, (h_n, c_n)), as torch does.

        input: (T, B, input_size), or (B, T, input_size) with batch_first, or unbatched (T, input_size).
        lengths: optional valid length of each batch row (1 <= length <= T): the result equals torch's
        pack_padded_sequence(enforce_sorted=False) -> module -> pad_packed_sequence(total_length=T).
        """
        x = input if type(input) is np.ndarray and input.dtype == self.dtype else to_numpy(input, "input")
        if x.ndim not in (2, 3):
            raise ValueError(f"input: expected a 3-D (batched) or 2-D (unbatched) array, got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input: expected last dimension input_size={self.input_size}, got shape {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            if lengths is not None:
                raise ValueError("lengths: not supported for unbatched (2-D) input; add a batch dimension")
            x = x[None] if self.batch_first else x[:, None]
        if self.batch_first:
            B, T = x.shape[0], x.shape[1]
        else:
            T, B = x.shape[0], x.shape[1]
        if T == 0:
            raise ValueError(f"input: the sequence length must be at least 1, got shape {x.shape}")

        dtype, layers = self.dtype, self._layers
        L, D, H, P = self.num_layers, self.num_directions, self.hidden_size, self._out_size
        h0, c0 = self._split_hx(hx)
        h_n = self._state(h0, "hx" if self._mode != "LSTM" else "h0", (L * D, B, P), unbatched)
        c_n = self._state(c0, "c0", (L * D, B, H), unbatched) if self._mode == "LSTM" else None

        order, active = None, None
        if lengths is not None:
            order, active = _sort_by_length(lengths, T, B)
            x = x[order] if self.batch_first else x[:, order]
            h_n = np.ascontiguousarray(h_n[:, order])
            if c_n is not None:
                c_n = np.ascontiguousarray(c_n[:, order])

        if not (x.flags.c_contiguous and x.dtype == dtype):
            x = np.ascontiguousarray(x, dtype=dtype)
        rows = x.reshape(T * B, self.input_size)
        empty = np.zeros if active is not None else np.empty  # padded outputs must read 0
        gates = scratch = None
        for index, layer in enumerate(layers):
            out = empty((T * B, D * P), dtype=dtype)
            size = T * B * D * layer.gate_rows
            if gates is None or gates.size < size:
                gates = np.empty(size, dtype=dtype)
            size = layer.scratch_size(B)
            if scratch is None or scratch.size < size:
                scratch = np.empty(size, dtype=dtype)
            states = slice(index * D, (index + 1) * D)
            layer.forward(rows, T, B, self.batch_first, h_n[states], None if c_n is None else c_n[states],
                          out, gates, scratch, active)
            rows = out

        out = rows.reshape((B, T, D * P) if self.batch_first else (T, B, D * P))
        if order is not None:
            inverse = np.argsort(order)
            out = out[inverse] if self.batch_first else out[:, inverse]
            h_n = h_n[:, inverse]
            c_n = None if c_n is None else c_n[:, inverse]
        if unbatched:
            out = out[0] if self.batch_first else out[:, 0]
            h_n = h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return out, self._join_states(h_n, c_n)

    __call__ = forward


def _sort_by_length(lengths, T, B):
    """Row order by decreasing length and the number of rows alive at each step."""
    values = to_numpy(lengths, "lengths")
    if values.ndim != 1 or values.shape[0] != B:
        raise ValueError(f"lengths: expected {B} entries (one per batch row), got shape {values.shape}")
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"lengths: expected integers, got {values.tolist()}")
    values = values.astype(np.int64)
    if B and (values.min() < 1 or values.max() > T):
        raise ValueError(f"lengths: every length must be in [1, {T}] (the sequence length), got {values.tolist()}")
    order = np.argsort(-values, kind="stable")
    active = np.searchsorted(-values[order], -np.arange(T), side="left").astype(np.intp)
    # active[t] = number of rows with length > t
    return order, np.ascontiguousarray(active)


class RNN(_RNNBase):
    """Elman RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu), like torch.nn.RNN."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, dtype)

    def _extra_repr(self):
        parts = super()._extra_repr()
        if self.nonlinearity != "tanh":
            parts.insert(2, f"nonlinearity={self.nonlinearity!r}")
        return parts


class LSTM(_RNNBase):
    """LSTM, gates [i, f, g, o], optional projection h = W_hr (o * tanh(c)), like torch.nn.LSTM."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=np.float32):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype)

    def _split_hx(self, hx):
        if hx is None:
            return None, None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"hx: expected a tuple (h0, c0) for LSTM, got {type(hx).__name__}")
        return hx[0], hx[1]

    def _join_states(self, h_n, c_n):
        return h_n, c_n


class GRU(_RNNBase):
    """GRU, gates [r, z, n], n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), like torch.nn.GRU."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float32):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, dtype)


class _CellBase(_Module):
    """One timestep: the engine's layer with T = 1, one direction."""

    def __init__(self, mode, input_size, hidden_size, bias=True, dtype=np.float32):
        self.input_size = _check_int("input_size", input_size, 1)
        self.hidden_size = _check_int("hidden_size", hidden_size, 1)
        self.bias = bool(bias)
        self.dtype = _check_dtype(dtype)
        self._mode = mode
        shapes = _layout.param_shapes(mode, self.input_size, self.hidden_size, 1, self.bias, False, 0, cell=True)
        self._init_params(shapes, self.hidden_size, self.dtype)

    def _pack(self):
        return [_layout.pack_layer(self._mode, self._params, 0, 1, self.dtype, cell=True)]

    def __repr__(self):
        parts = [str(self.input_size), str(self.hidden_size)]
        if not self.bias:
            parts.append("bias=False")
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            parts.append(f"nonlinearity={self.nonlinearity!r}")
        if self.dtype != np.float32:
            parts.append("dtype=float64")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _step(self, input, h0, c0, h_name):
        x = to_numpy(input, "input")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"input: expected shape (batch, {self.input_size}) or ({self.input_size},), got {x.shape}"
            )
        unbatched = x.ndim == 1
        B = 1 if unbatched else x.shape[0]
        H = self.hidden_size
        h = self._state(h0, h_name, (B, H), unbatched).reshape(1, B, H)
        c = self._state(c0, "c0", (B, H), unbatched).reshape(1, B, H) if self._mode == "LSTM" else None
        rows = np.ascontiguousarray(x, dtype=self.dtype).reshape(B, self.input_size)
        out = np.empty((B, H), dtype=self.dtype)
        layer = self._layers[0]
        gates = np.empty((B, layer.gate_rows), dtype=self.dtype)
        scratch = np.empty(layer.scratch_size(B), dtype=self.dtype)
        layer.forward(rows, 1, B, False, h, c, out, gates, scratch)
        shape = (H,) if unbatched else (B, H)
        return h.reshape(shape), None if c is None else c.reshape(shape)


class RNNCell(_CellBase):
    """One Elman RNN step, like torch.nn.RNNCell: h1 = cell(x, h0)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias, dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx, None, "hx")[0]

    __call__ = forward


class LSTMCell(_CellBase):
    """One LSTM step, like torch.nn.LSTMCell: (h1, c1) = cell(x, (h0, c0))."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32):
        super().__init__("LSTM", input_size, hidden_size, bias, dtype)

    def forward(self, input, hx=None):
        if hx is None:
            h0 = c0 = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2:
            h0, c0 = hx
        else:
            raise TypeError(f"hx: expected a tuple (h0, c0) for LSTMCell, got {type(hx).__name__}")
        return self._step(input, h0, c0, "h0")

    __call__ = forward


class GRUCell(_CellBase):
    """One GRU step, like torch.nn.GRUCell: h1 = cell(x, h0)."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32):
        super().__init__("GRU", input_size, hidden_size, bias, dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx, None, "hx")[0]

    __call__ = forward

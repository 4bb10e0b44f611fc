"""The torch.nn-compatible sequence modules: RNN, LSTM and GRU (the cells are in fastrnn.cells).

This layer checks arguments and shapes, handles batch_first, unbatched input, initial states and variable
lengths, and hands contiguous buffers to the engine (fastrnn._engine) through the weight layout of
fastrnn._layout. Names, defaults, call conventions and output shapes are torch's.
"""
from __future__ import annotations

import numpy as np

from fastrnn import _engine, _slow
from fastrnn._base import IncompatibleKeys, Module, check_dtype, check_precision, semantics_repr
from fastrnn._convert import check_int, lstm_state_pair, to_numpy
from fastrnn._kinds import check_nonlinearity
from fastrnn._torch_names import param_shapes
from fastrnn.config import RNNConfig

__all__ = ["RNN", "LSTM", "GRU", "IncompatibleKeys"]


class _RNNBase(Module):
    def __init__(self, kind, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=np.float32, nonlinearity="tanh", precision=None,
                 **semantics):
        self.input_size = check_int("input_size", input_size, 1)
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.proj_size = check_int("proj_size", proj_size, 0)
        if self.proj_size and kind != "LSTM":
            raise ValueError("proj_size: only LSTM supports a projection")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size: must be smaller than hidden_size ({hidden_size}), got {proj_size}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a number in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)  # accepted for torch compatibility; inference applies no dropout
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.dtype = check_dtype(dtype)
        self.config = RNNConfig(kind, False, self.input_size, self.hidden_size, self.num_layers, self.bidirectional,
                                self.proj_size, self.bias, nonlinearity, **semantics)
        self.precision = check_precision(precision, self.dtype, self.config)
        self.config.check_memory(self.dtype, self.precision)  # before param_shapes loops over the layers
        shapes = param_shapes(kind, self.input_size, self.hidden_size, self.num_layers, self.bias,
                              self.bidirectional, self.proj_size, peepholes=self.config.peepholes)
        self._init_params(shapes, self.hidden_size, self.dtype)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

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
        if self.precision not in ("float32", "float64"):
            parts.append(f"precision={self.precision!r}")
        return parts + semantics_repr(self.config)

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
        x, T, B, unbatched = self._batched_input(input, lengths)
        config, L, D = self.config, self.num_layers, 2 if self.bidirectional else 1
        h0, c0 = self._split_hx(hx)
        h_n = self._state(h0, "h0" if config.kind == "LSTM" else "hx", (L * D, B, config.out_size), unbatched)
        c_n = self._state(c0, "c0", (L * D, B, self.hidden_size), unbatched) if config.kind == "LSTM" else None

        order, active = None, None
        if lengths is not None:
            order, active = _sort_by_length(lengths, T, B)
            x = x[order] if self.batch_first else x[:, order]
            h_n = np.ascontiguousarray(h_n[:, order])
            if c_n is not None:
                c_n = np.ascontiguousarray(c_n[:, order])

        out = self._run_layers(x, T, B, h_n, c_n, active)  # (B, T, D*P) if batch_first, else (T, B, D*P)
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

    def _batched_input(self, input, lengths):
        """(x as a 3-D array of real numbers, T, B, unbatched), with the shape errors."""
        x = input if type(input) is np.ndarray and input.dtype == self.dtype else to_numpy(input, "input")
        if x.ndim not in (2, 3):
            raise ValueError(f"input: expected a 3-D (batched) or 2-D (unbatched) array, got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input: expected last dimension input_size={self.input_size}, got shape {x.shape}")
        unbatched, input_shape = x.ndim == 2, x.shape
        if unbatched:
            if lengths is not None:
                raise ValueError("lengths: not supported for unbatched (2-D) input; add a batch dimension")
            x = x[None] if self.batch_first else x[:, None]
        B, T = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        if T == 0:
            raise ValueError(f"input: the sequence length must be at least 1, got shape {x.shape}")
        self._check_call_memory(T, B, lambda: f"input of shape {input_shape}")
        return x, T, B, unbatched

    def _run_layers(self, x, T, B, h_n, c_n, active):
        """Every layer in turn over x (T, B, I) ((B, T, I) batch_first), states updated in place; returns the last
        layer's output, (T, B, D*P) ((B, T, D*P) batch_first)."""
        if self.config.slow:
            rows = np.ascontiguousarray(x, dtype=self.dtype).reshape(T * B, self.input_size)
            out = _slow.run_layers(self.config, self._weights(), rows, T, B, self.batch_first, h_n, c_n, active,
                                   self.dtype)
            return out.reshape(x.shape[:2] + (out.shape[-1],))
        # the module's work buffers (engine/calls.pxi), never pickled
        pool = self.__dict__.setdefault("_pool", [])
        return _engine.run_layers(self._layers, x, T, B, self.batch_first, h_n, c_n, active, pool)


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
    """Elman RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu), like torch.nn.RNN.

    Beyond torch (keyword-only; README "Custom gates"): activations (one slot, f, or two for bidirectional), clip,
    reverse."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, *, precision=None, activations=None, clip=None,
                 reverse=False):
        self.nonlinearity = check_nonlinearity(nonlinearity)
        super().__init__("RNN", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         dtype, nonlinearity, precision, activations=activations, clip=clip, reverse=reverse)

    def _extra_repr(self):
        parts = super()._extra_repr()
        if self.nonlinearity != "tanh":
            parts.insert(2, f"nonlinearity={self.nonlinearity!r}")
        return parts


class LSTM(_RNNBase):
    """LSTM, gates [i, f, g, o], optional projection h = W_hr (o * tanh(c)), like torch.nn.LSTM.

    Beyond torch (keyword-only; README "Custom gates"): activations (slots f, g, h), clip, peepholes (parameters
    weight_p_l{k}{suffix} of shape (3*hidden_size,), rows [i, f, o]), input_forget (f = 1 - i), reverse."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=np.float32, *, precision=None, activations=None, clip=None,
                 peepholes=False, input_forget=False, reverse=False):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype, precision=precision, activations=activations, clip=clip,
                         peepholes=bool(peepholes), input_forget=bool(input_forget), reverse=reverse)

    def _split_hx(self, hx):
        return lstm_state_pair(hx, "hx")

    def _join_states(self, h_n, c_n):
        return h_n, c_n


class GRU(_RNNBase):
    """GRU, gates [r, z, n], n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), like torch.nn.GRU.

    Beyond torch (keyword-only; README "Custom gates"): activations (slots f, g), clip, linear_before_reset
    (False: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), ONNX's default and Keras' reset_after=False), reverse."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float32, *, precision=None, activations=None, clip=None,
                 linear_before_reset=True, reverse=False):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, dtype, precision=precision, activations=activations, clip=clip,
                         linear_before_reset=bool(linear_before_reset), reverse=reverse)

"""The torch.nn-compatible cells: RNNCell, LSTMCell and GRUCell, one timestep per call (the engine's layer with
T = 1, one direction)."""
from __future__ import annotations

import numpy as np

from fastrnn import _engine, _slow
from fastrnn._base import Module, check_dtype, check_precision, semantics_repr
from fastrnn._convert import check_int, lstm_state_pair, to_numpy
from fastrnn._kinds import check_nonlinearity
from fastrnn._torch_names import param_shapes
from fastrnn.config import RNNConfig

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


class _CellBase(Module):
    def __init__(self, kind, input_size, hidden_size, bias=True, dtype=np.float32, nonlinearity="tanh", precision=None,
                 **semantics):
        self.input_size = check_int("input_size", input_size, 1)
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.bias = bool(bias)
        self.dtype = check_dtype(dtype)
        self.config = RNNConfig(kind, True, self.input_size, self.hidden_size, bias=self.bias,
                                nonlinearity=nonlinearity, **semantics)
        self.precision = check_precision(precision, self.dtype, self.config)
        self.config.check_memory(self.dtype, self.precision)
        shapes = param_shapes(kind, self.input_size, self.hidden_size, 1, self.bias, False, 0, cell=True,
                              peepholes=self.config.peepholes)
        self._init_params(shapes, self.hidden_size, self.dtype)

    def __repr__(self):
        parts = [str(self.input_size), str(self.hidden_size)]
        if not self.bias:
            parts.append("bias=False")
        if self.config.kind == "RNN" and self.config.nonlinearity != "tanh":
            parts.append(f"nonlinearity={self.config.nonlinearity!r}")
        if self.dtype != np.float32:
            parts.append("dtype=float64")
        if self.precision not in ("float32", "float64"):
            parts.append(f"precision={self.precision!r}")
        return f"{type(self).__name__}({', '.join(parts + semantics_repr(self.config))})"

    def _step(self, input, h0, c0, h_name):
        x = to_numpy(input, "input")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"input: expected shape (batch, {self.input_size}) or ({self.input_size},), got {x.shape}"
            )
        unbatched = x.ndim == 1
        B = 1 if unbatched else x.shape[0]
        self._check_call_memory(1, B, lambda: f"input of shape {x.shape}")
        H = self.hidden_size
        h = self._state(h0, h_name, (B, H), unbatched).reshape(1, B, H)
        c = self._state(c0, "c0", (B, H), unbatched).reshape(1, B, H) if self.config.kind == "LSTM" else None
        if self.config.slow:
            rows = np.ascontiguousarray(x, dtype=self.dtype).reshape(B, self.input_size)
            _slow.run_layers(self.config, self._weights(), rows, 1, B, False, h, c, None, self.dtype)
        else:  # the new h is the output: h and c are what the step gives
            _engine.run_layers(self._layers, x, 1, B, False, h, c, None, self.__dict__.setdefault("_pool", []))
        shape = (H,) if unbatched else (B, H)
        return h.reshape(shape), None if c is None else c.reshape(shape)


class RNNCell(_CellBase):
    """One Elman RNN step, like torch.nn.RNNCell: h1 = cell(x, h0)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float32, *,
                 precision=None, activations=None, clip=None):
        self.nonlinearity = check_nonlinearity(nonlinearity)
        super().__init__("RNN", input_size, hidden_size, bias, dtype, nonlinearity, precision, activations=activations,
                         clip=clip)

    def forward(self, input, hx=None):
        return self._step(input, hx, None, "hx")[0]

    __call__ = forward


class LSTMCell(_CellBase):
    """One LSTM step, like torch.nn.LSTMCell: (h1, c1) = cell(x, (h0, c0))."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, *, precision=None, activations=None,
                 clip=None, peepholes=False, input_forget=False):
        super().__init__("LSTM", input_size, hidden_size, bias, dtype, precision=precision, activations=activations,
                         clip=clip,
                         peepholes=bool(peepholes), input_forget=bool(input_forget))

    def forward(self, input, hx=None):
        h0, c0 = lstm_state_pair(hx, "hx", "LSTMCell")
        return self._step(input, h0, c0, "h0")

    __call__ = forward


class GRUCell(_CellBase):
    """One GRU step, like torch.nn.GRUCell: h1 = cell(x, h0)."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, *, precision=None, activations=None,
                 clip=None, linear_before_reset=True):
        super().__init__("GRU", input_size, hidden_size, bias, dtype, precision=precision, activations=activations,
                         clip=clip,
                         linear_before_reset=bool(linear_before_reset))

    def forward(self, input, hx=None):
        return self._step(input, hx, None, "hx")[0]

    __call__ = forward

"""Cells with a Python callable among their activations: the kernels' math in numpy, one step at a time (a callable
can only run in Python), in the module's dtype. The documented slower path: every option works (layers, directions,
reverse, lengths, peepholes, clip, coupled gates, both GRU variants, projections, streams), at the cost of a few
numpy calls per step and layer; named activations never come here.

Layouts as the engine's (fastrnn/_engine.pyx): rows (T*B, I) time-major or batch-major, h (L*D, B, P), c (L*D, B, H),
`active[t]` the rows alive at step t (rows sorted by decreasing length).
"""
from __future__ import annotations

import numpy as np

from fastrnn._torch_names import key


def _activation(entry, dtype):
    """A numpy function for an activation entry: the callable itself, or a named one."""
    if callable(entry):
        return lambda x: np.asarray(entry(x), dtype=dtype)
    name, alpha, beta = entry
    a, b = dtype.type(alpha), dtype.type(beta)
    one, zero = dtype.type(1), dtype.type(0)
    return {
            "sigmoid": lambda x: one / (one + np.exp(-x)), "tanh": np.tanh, "identity": lambda x: x,
            "relu": lambda x: np.where(x < 0, zero, x), "affine": lambda x: a * x + b,
            "leaky_relu": lambda x: np.where(x < 0, a * x, x), "thresholded_relu": lambda x: np.where(x < a, zero, x),
            "scaled_tanh": lambda x: a * np.tanh(b * x),
            "hard_sigmoid": lambda x: np.where(a * x + b < 0, zero, np.where(a * x + b > 1, one, a * x + b)),
            "elu": lambda x: np.where(x < 0, a * np.expm1(np.minimum(x, zero)), x),
            "softsign": lambda x: x / (one + np.abs(x)), "softplus": lambda x: np.logaddexp(zero, x),
            "step": lambda x: np.where(x < 0, zero, np.where(x >= 0, one, x)),
    }[name]


class _Direction:
    """One direction of one layer: its weights and its cell's functions."""

    def __init__(self, config, weights, layer, d, dtype):
        name = lambda base: key(base, layer, d, config.cell)  # noqa: E731
        get = lambda base: weights.get(name(base))  # noqa: E731
        self.config, self.dtype = config, dtype
        self.w_ih, self.w_hh = get("weight_ih"), get("weight_hh")
        self.w_hr, self.peep = get("weight_hr"), get("weight_p")
        b_ih, b_hh = get("bias_ih"), get("bias_hh")
        self.b_ih = np.zeros(self.w_ih.shape[0], dtype) if b_ih is None else b_ih
        self.b_hh = np.zeros(self.w_ih.shape[0], dtype) if b_hh is None else b_hh
        self.acts = [_activation(e, dtype) for e in config.gate_activations[d]]
        self.clip = None if config.clip is None else dtype.type(config.clip)
        self.reverse = d == 1 or config.reverse

    def _gate(self, slot, pre):
        return self.acts[slot](pre if self.clip is None else np.clip(pre, -self.clip, self.clip))

    def step(self, x, h, c):
        """(h', c') for the rows x (n, I), h (n, P), c (n, H) or None."""
        cfg, H = self.config, self.w_hh.shape[0] // {"RNN": 1, "GRU": 3, "LSTM": 4}[self.config.kind]
        gx = x @ self.w_ih.T + self.b_ih
        if cfg.kind == "RNN":
            return self._gate(0, gx + h @ self.w_hh.T + self.b_hh), None
        if cfg.kind == "GRU":
            gh = h @ self.w_hh[: 2 * H].T + self.b_hh[: 2 * H]
            r = self._gate(0, gx[:, :H] + gh[:, :H])
            z = self._gate(0, gx[:, H:2 * H] + gh[:, H:])
            if cfg.linear_before_reset:
                n = self._gate(1, gx[:, 2 * H:] + r * (h @ self.w_hh[2 * H:].T + self.b_hh[2 * H:]))
            else:
                n = self._gate(1, gx[:, 2 * H:] + (r * h) @ self.w_hh[2 * H:].T + self.b_hh[2 * H:])
            return (1 - z) * n + z * h, None
        pre = gx + h @ self.w_hh.T + self.b_hh
        p_i, p_f, p_o = np.split(np.zeros(3 * H, self.dtype) if self.peep is None else self.peep, 3)
        i = self._gate(0, pre[:, :H] + p_i * c)
        f = 1 - i if cfg.input_forget else self._gate(0, pre[:, H:2 * H] + p_f * c)
        c_new = f * c + i * self._gate(1, pre[:, 2 * H:3 * H])
        h_new = self._gate(0, pre[:, 3 * H:] + p_o * c_new) * self.acts[2](c_new)
        return (h_new if self.w_hr is None else h_new @ self.w_hr.T), c_new


def run_layers(config, weights, rows, T, B, batch_first, h_n, c_n, active, dtype):
    """Every layer over the (T*B, I) rows, h_n/c_n updated in place; returns the last layer's (T*B, D*P) output."""
    dtype = np.dtype(dtype)
    D = 2 if config.bidirectional else 1
    layers = 1 if config.cell else config.num_layers
    x = rows.reshape((B, T, -1) if batch_first else (T, B, -1))
    x = x.transpose(1, 0, 2) if batch_first else x
    for layer in range(layers):
        with np.errstate(over="ignore", invalid="ignore"):  # exp of large values saturates, as in the kernels
            outs = [_run_direction(_Direction(config, weights, layer, d, dtype), x, h_n[layer * D + d],
                                   None if c_n is None else c_n[layer * D + d], active) for d in range(D)]
        x = np.concatenate(outs, axis=-1)
    out = x.transpose(1, 0, 2) if batch_first else x
    return np.ascontiguousarray(out).reshape(T * B, -1)


def _run_direction(direction, x, h, c, active):
    T, B = x.shape[:2]
    out = np.zeros((T, B, h.shape[-1]), x.dtype)
    for t in (range(T - 1, -1, -1) if direction.reverse else range(T)):
        n = B if active is None else int(active[t])
        if n == 0:
            continue
        h_new, c_new = direction.step(x[t, :n], h[:n], None if c is None else c[:n])
        h[:n], out[t, :n] = h_new, h_new
        if c is not None:
            c[:n] = c_new
    return out


class Stack:
    """The engine's Stack (fastrnn.streaming) for a slow cell: the same h, c and run(x, out)."""

    def __init__(self, config, weights, batch_size, dtype):
        self.config, self.weights, self.dtype = config, weights, np.dtype(dtype)
        L, B = (1 if config.cell else config.num_layers), batch_size
        self.batch_size, self.input_size, self.out_size = B, config.input_size, config.out_size
        self.h = np.zeros((L, B, config.out_size), self.dtype)
        self.c = np.zeros((L, B, config.hidden_size), self.dtype) if config.kind == "LSTM" else None

    def run(self, x, out):
        if type(x) is not np.ndarray or x.dtype != self.dtype or not x.flags.c_contiguous:
            return False
        B = self.batch_size
        T = x.size // (B * self.input_size)
        out.reshape(T * B, -1)[...] = run_layers(self.config, self.weights, x.reshape(T * B, -1), T, B, False,
                                                 self.h, self.c, None, self.dtype)
        return True

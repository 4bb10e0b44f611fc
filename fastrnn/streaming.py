"""Stateful, low-latency stepping for real-time pipelines: `module.stream(batch_size)`.

A Stream owns the recurrent state and every work buffer, so a call allocates nothing beyond its result
(and nothing at all with `out=`). It runs the sequence one timestep at a time through every layer,
computing each step's input projection on its own: the arithmetic of a step then never depends on how
the frames were grouped into calls, so a sequence gives bitwise the same result whether it arrives in
one call or in chunks of any sizes (a gemm's rounding can depend on how many rows it is given).
"""
from __future__ import annotations

import numpy as np

from fastrnn._convert import to_numpy


class Stream:
    """Carries state across calls. Create it with `module.stream(batch_size=1, initial=None)`.

    For RNN/LSTM/GRU: `stream(chunk)` takes (T_chunk, B, input_size) ((B, T_chunk, input_size) with
    batch_first) or, when batch_size is 1, unbatched (T_chunk, input_size), and returns the output
    rows for those steps, shaped like the chunk. For cells: `stream(x)` takes one frame (B, input_size)
    or (input_size,) and returns h'.
    """

    def __init__(self, module, batch_size=1, initial=None):
        if getattr(module, "bidirectional", False):
            raise ValueError(
                "stream: a bidirectional module cannot stream: its reverse direction needs the whole "
                "sequence before it can produce the first output; call the module on the full sequence"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        self._module = module
        self._cell = not hasattr(module, "num_layers")
        self._lstm = module._mode == "LSTM"
        self._layers = module._layers if not self._cell else [module._layer]
        self.batch_size = B = int(batch_size)
        dtype = module.dtype
        L = len(self._layers)
        P = self._layers[-1].out_size
        H = module.hidden_size
        self._h = np.zeros((L, B, P), dtype=dtype)
        self._c = np.zeros((L, B, H), dtype=dtype) if self._lstm else None
        if initial is not None:
            self._set_initial(initial)
        # Work buffers for one step, shared by all layers (the largest any layer needs).
        self._gates = np.empty(max(B * layer.gate_rows for layer in self._layers), dtype=dtype)
        self._scratch = np.empty(max(layer.scratch_size(B) for layer in self._layers), dtype=dtype)
        self._between = [np.empty((B, layer.out_size), dtype=dtype) for layer in self._layers[:-1]]
        self._step_out = np.empty((B, P), dtype=dtype)
        # (layer, its h and c state views, its output buffer or None for the last layer), made once.
        self._per_layer = [
            (layer, self._h[i:i + 1], None if self._c is None else self._c[i:i + 1],
             self._between[i] if i < L - 1 else None)
            for i, layer in enumerate(self._layers)
        ]
        self._plans = {}

    def _set_initial(self, initial):
        module = self._module
        if self._lstm:
            if not isinstance(initial, (tuple, list)) or len(initial) != 2:
                raise TypeError(f"initial: expected a tuple (h0, c0), got {type(initial).__name__}")
            h0, c0 = initial
        else:
            h0, c0 = initial, None
        shape_h, shape_c = self._h.shape, None if self._c is None else self._c.shape
        if self._cell:  # cells speak (B, H), not (1, B, H)
            shape_h = shape_h[1:]
            shape_c = None if shape_c is None else shape_c[1:]
        self._h[...] = _state_array(h0, "initial h0" if self._lstm else "initial", shape_h, module.dtype)
        if self._lstm:
            self._c[...] = _state_array(c0, "initial c0", shape_c, module.dtype)

    @property
    def state(self):
        """The current state, as copies in torch's layout: h_n, or (h_n, c_n) for LSTM (cells: (B, H))."""
        h = self._h[0].copy() if self._cell else self._h.copy()
        if not self._lstm:
            return h
        return h, (self._c[0].copy() if self._cell else self._c.copy())

    def reset(self, rows=None):
        """Zero the state, of every batch row or only of `rows` (a list of row indices)."""
        if rows is None:
            index = slice(None)
        else:
            index = np.asarray(rows)
            if index.dtype.kind not in "iu" or index.ndim != 1:
                raise ValueError(f"rows: expected a list of batch row indices, got {rows!r}")
            if index.size and (index.min() < -self.batch_size or index.max() >= self.batch_size):
                raise ValueError(f"rows: indices must be in [0, {self.batch_size}), got {index.tolist()}")
        self._h[:, index] = 0
        if self._c is not None:
            self._c[:, index] = 0

    def __call__(self, chunk, out=None):
        """Run the frames of `chunk`, carrying state; return the outputs (written into `out` if given)."""
        x = chunk if type(chunk) is np.ndarray and chunk.dtype.kind in "fiu" else to_numpy(chunk, "chunk")
        plan = self._plans.get(x.shape)
        if plan is None:
            plan = self._plans[x.shape] = self._plan(x.shape)
        view, batch_first, T, result_shape = plan
        x = view(x)
        dtype = self._module.dtype
        if out is None:
            result = np.empty(result_shape, dtype=dtype)
        elif type(out) is np.ndarray and out.shape == result_shape and out.dtype == dtype and out.flags.writeable:
            result = out
        else:
            got = f"{type(out).__name__} {getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}".strip()
            if isinstance(out, np.ndarray) and not out.flags.writeable:
                got = "a read-only array"
            raise ValueError(f"out: expected a writeable numpy array of shape {result_shape} and dtype {dtype}, "
                             f"got {got}")
        frames = view(result)  # (T, B, P) or (B, T, P): frame t's rows, wherever they live
        for t in range(T):
            frame = x[:, t] if batch_first else x[t]
            dest = frames[:, t] if batch_first else frames[t]
            direct = dest.flags.c_contiguous
            self._step(np.ascontiguousarray(frame, dtype=dtype), dest if direct else self._step_out)
            if not direct:
                dest[...] = self._step_out
        return result

    def _plan(self, shape):
        """How to read a chunk of this shape: (view to (T,B,.) or (B,T,.), batch_first, T, result shape).
        Raises the shape error; called once per distinct chunk shape."""
        B, I, P = self.batch_size, self._module.input_size, self._step_out.shape[1]
        if self._cell:
            if len(shape) == 1 and B == 1 and shape[0] == I:
                return (lambda a: a[None, None]), False, 1, (P,)
            if shape == (B, I):
                return (lambda a: a[None]), False, 1, (B, P)
            raise ValueError(f"chunk: expected one frame of shape ({B}, {I})"
                             + (f" or ({I},)" if B == 1 else "") + f", got {shape}")
        batch_first = self._module.batch_first
        if len(shape) == 2 and B == 1 and shape[1] == I:
            return (lambda a: a[:, None]), False, shape[0], (shape[0], P)
        if len(shape) == 3 and shape[-1] == I and shape[0 if batch_first else 1] == B:
            return (lambda a: a), batch_first, shape[1 if batch_first else 0], shape[:2] + (P,)
        expected = f"({B}, T_chunk, {I})" if batch_first else f"(T_chunk, {B}, {I})"
        if B == 1:
            expected += f" or (T_chunk, {I})"
        raise ValueError(f"chunk: expected shape {expected}, got {shape}")

    def _step(self, rows, dest):
        """One timestep through every layer; the last layer writes its output rows (B, P) into dest."""
        B, gates, scratch = self.batch_size, self._gates, self._scratch
        for layer, h, c, out in self._per_layer:
            out = dest if out is None else out
            layer.forward(rows, 1, B, False, h, c, out, gates, scratch)
            rows = out


def _state_array(value, name, shape, dtype):
    array = to_numpy(value, name)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    return array.astype(dtype, copy=False)

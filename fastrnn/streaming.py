"""Stateful, low-latency stepping for real-time pipelines: `module.stream(batch_size)`.

A Stream wraps the engine's Stack, which owns the recurrent state and every work buffer, so a call
allocates nothing beyond its result (and nothing at all with `out=`). The Stack runs the sequence one
timestep at a time through every layer inside one GIL-free section, computing each step's input
projection on its own: the arithmetic of a step then never depends on how
the frames were grouped into calls, so a sequence gives bitwise the same result whether it arrives in
one call or in chunks of any sizes (a gemm's rounding can depend on how many rows it is given).
"""
from __future__ import annotations

import math

import numpy as np

from fastrnn import _memory
from fastrnn._convert import check_int, lstm_state_pair, to_numpy
from fastrnn._kinds import NUM_GATES


class Stream:
    """Carries state across calls. Create it with `module.stream(batch_size=1, initial=None)`.

    For RNN/LSTM/GRU: `stream(chunk)` takes (T_chunk, B, input_size) ((B, T_chunk, input_size) with
    batch_first) or, when batch_size is 1, unbatched (T_chunk, input_size), and returns the output
    rows for those steps, shaped like the chunk. For cells: `stream(x)` takes one frame (B, input_size)
    or (input_size,) and returns h'.
    """

    def __init__(self, config, make_stack, dtype, batch_first=False, batch_size=1, initial=None):
        """Made by module.stream(): config (fastrnn.config.RNNConfig), make_stack(batch_size) -> the engine's Stack
        of the module's layers (or fastrnn._slow's), its dtype and calling convention."""
        if config.bidirectional or config.reverse:
            which = "a bidirectional module" if config.bidirectional else "a reverse module"
            raise ValueError(
                f"stream: {which} cannot stream: its reverse direction needs the whole sequence before it can "
                f"produce the first output; call the module on the full sequence"
            )
        self.batch_size = check_int("batch_size", batch_size, 1, wrong_type=ValueError)
        layers, H, P = 1 if config.cell else config.num_layers, config.hidden_size, config.out_size
        # h (and c) of every layer; one step's gate rows and new h
        state = self.batch_size * (layers * (P + H * (config.kind == "LSTM")) + NUM_GATES[config.kind] * H + P)
        _memory.check(state * np.dtype(dtype).itemsize, lambda: (
            f"batch_size={self.batch_size}", f"for the state and work buffers of a stream of {config}"))
        self._config = config
        self._cell = config.cell
        self._lstm = config.kind == "LSTM"
        self._batch_first = batch_first
        self._dtype = np.dtype(dtype)
        # The engine's Stack owns the state (h (L, B, P), c (L, B, H)) and every work buffer.
        self._stack = make_stack(self.batch_size)
        self._run = self._stack.run
        self._h, self._c = self._stack.h, self._stack.c
        if initial is not None:
            self._set_initial(initial)
        # Validated chunk shapes -> result shape, for chunks whose memory is laid out time-major
        # (T, B, I) already, which go to the engine as they are; _plans also holds the others.
        self._direct = {}
        self._plans = {}

    def _set_initial(self, initial):
        if self._lstm:
            h0, c0 = lstm_state_pair(initial, "initial")
        else:
            h0, c0 = initial, None
        shape_h, shape_c = self._h.shape, None if self._c is None else self._c.shape
        if self._cell:  # cells speak (B, H), not (1, B, H)
            shape_h = shape_h[1:]
            shape_c = None if shape_c is None else shape_c[1:]
        self._h[...] = _state_array(h0, "initial h0" if self._lstm else "initial", shape_h, self._dtype)
        if self._lstm:
            self._c[...] = _state_array(c0, "initial c0", shape_c, self._dtype)

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
        # The common case costs a dict look-up, an np.empty and one engine call: a shape seen before,
        # a C-contiguous array of the module's dtype (Stack.run checks that and returns False if not).
        if type(chunk) is np.ndarray:
            shape = self._direct.get(chunk.shape)
            if shape is not None:
                result = np.empty(shape, self._dtype) if out is None else out
                if (out is None or (type(out) is np.ndarray and out.shape == shape)) and self._run(chunk, result):
                    return result
        return self._call_general(chunk, out)

    def _call_general(self, chunk, out):
        """Any chunk: converts the input, checks shapes and `out` (with the errors), handles batch_first."""
        x = chunk if type(chunk) is np.ndarray and chunk.dtype.kind in "fiu" else to_numpy(chunk, "chunk")
        plan = self._plans.get(x.shape)
        if plan is None:
            plan = self._plan(x.shape)
            _memory.check(math.prod(plan[1]) * self._dtype.itemsize,
                          lambda: (f"chunk of shape {x.shape}", "for its output"), MemoryError)
            self._plans[x.shape] = plan
            if plan[0]:
                self._direct[x.shape] = plan[1]
        direct, result_shape = plan
        dtype = self._dtype
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
        if direct:  # time-major memory: only dtype, contiguity or out's layout kept it off the fast path
            rows = np.ascontiguousarray(x, dtype=dtype)
            dest = result if result.flags.c_contiguous else np.empty(result_shape, dtype=dtype)
            self._run(rows, dest)
        else:  # batch_first with B > 1: the engine wants frame t's rows together
            rows = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=dtype)
            dest = np.empty((x.shape[1], x.shape[0], result_shape[-1]), dtype=dtype)
            self._run(rows, dest)
            dest = dest.transpose(1, 0, 2)
        if dest is not result:
            result[...] = dest
        return result

    def _plan(self, shape):
        """How to read a chunk of this shape: (its memory is time-major, result shape). Raises the shape
        error; called once per distinct chunk shape."""
        B, I, P = self.batch_size, self._config.input_size, self._stack.out_size
        if self._cell:
            if len(shape) == 1 and B == 1 and shape[0] == I:
                return True, (P,)
            if shape == (B, I):
                return True, (B, P)
            raise ValueError(f"chunk: expected one frame of shape ({B}, {I})"
                             + (f" or ({I},)" if B == 1 else "") + f", got {shape}")
        batch_first = self._batch_first
        if len(shape) == 2 and B == 1 and shape[1] == I:
            return True, (shape[0], P)
        if len(shape) == 3 and shape[-1] == I and shape[0 if batch_first else 1] == B:
            # (B, T, I) with B = 1 is (T, 1, I) in memory
            return not batch_first or B == 1, shape[:2] + (P,)
        expected = f"({B}, T_chunk, {I})" if batch_first else f"(T_chunk, {B}, {I})"
        if B == 1:
            expected += f" or (T_chunk, {I})"
        raise ValueError(f"chunk: expected shape {expected}, got {shape}")


def _state_array(value, name, shape, dtype):
    array = to_numpy(value, name)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    return array.astype(dtype, copy=False)

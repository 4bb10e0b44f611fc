"""Many variable-length sequences through one module: sorted by length into batches, run with `lengths=`, the
results put back in the caller's order. No dask here: fastrnn.dask runs this once per partition or block.

Bucketing: the sequences are ordered by decreasing length (ties keep their order) and cut into consecutive batches
of `batch_size`; each batch is padded to its own longest sequence and run with `lengths=`, so the engine computes
no step past a sequence's end and batches hold sequences of similar length.
"""
from __future__ import annotations

import numpy as np

from fastrnn._convert import to_numpy

OUTPUTS = ("sequence", "last", "state")


def check_sequence(value, input_size, name):
    """`value` as a (T, input_size) numpy array with T >= 1; errors name the sequence (`name`) and phrase the
    problem as a module call would."""
    array = to_numpy(value, name)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (T, input_size={input_size}), got shape {array.shape}")
    if array.shape[1] != input_size:
        raise ValueError(f"{name}: expected last dimension input_size={input_size}, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: the sequence length must be at least 1, got shape {array.shape}")
    return array


def batches(lengths, batch_size):
    """Index arrays into `lengths`, longest sequences first, `batch_size` per batch (the last may be smaller)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def score(module, arrays, batch_size, output):
    """One result per array of `arrays` (each (T_i, input_size), already checked), in their order.

    output: 'sequence' -> out (T_i, D * H_out); 'last' -> the last layer's final h, directions concatenated
    [forward, reverse], (D * H_out,); 'state' -> h_n (L * D, H_out), or (h_n, c_n) for an LSTM.
    """
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    results = [None] * len(arrays)
    D = 2 if module.bidirectional else 1
    for rows in batches(lengths, batch_size):
        T, B = int(lengths[rows[0]]), len(rows)
        # Padded in the module's own layout, so the call copies nothing more.
        x = np.zeros((B, T, module.input_size) if module.batch_first else (T, B, module.input_size), module.dtype)
        for b, i in enumerate(rows):
            if module.batch_first:
                x[b, :lengths[i]] = arrays[i]
            else:
                x[:lengths[i], b] = arrays[i]
        out, state = module(x, lengths=lengths[rows])
        h_n, c_n = state if isinstance(state, tuple) else (state, None)
        for b, i in enumerate(rows):
            # Copies: a result must not keep its whole batch alive.
            if output == "sequence":
                results[i] = (out[b, :lengths[i]] if module.batch_first else out[:lengths[i], b]).copy()
            elif output == "last":
                results[i] = h_n[-D:, b].flatten()
            elif c_n is None:
                results[i] = h_n[:, b].copy()
            else:
                results[i] = (h_n[:, b].copy(), c_n[:, b].copy())
    return results


def check_lengths(values, T, offset=0):
    """`values` (one per row of an (n, T, ...) array whose first row is row `offset` of the caller's x) as int64,
    each an integer in [1, T]; errors name the caller's row."""
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "fiu":
        raise ValueError(f"lengths: expected a 1-D array of integers, got shape {array.shape} dtype {array.dtype}")
    real = array.astype(np.float64)
    bad = np.flatnonzero(~((real == np.round(real)) & (real >= 1) & (real <= T)))  # NaN compares False: bad
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"lengths[{offset + i}]: expected an integer in [1, {T}] (x's time dimension), "
                         f"got {array[i].item()!r}")
    return real.astype(np.int64)

"""Scoring many variable-length sequences on a Dask cluster, with the results one process gives.

    pip install "fastrnn[dask]"
    import dask.bag as db, fastrnn.dask
    outs = fastrnn.dask.run(model_or_path, db.from_sequence(arrays, npartitions=64))   # a Bag of (T_i, H_out)
    y = fastrnn.dask.run_array(model_or_path, x, lengths=lengths)                       # x: (N, T, I) dask array

The model enters the task graph once: a module is scattered to the cluster (one key in the graph without a
distributed Client), a path is loaded by each worker process itself; either is kept in a per-process cache keyed
by its content (fastrnn._dask_tasks). Inside a task, sequences are bucketed by length (fastrnn._bucketing).
`import fastrnn` does not import this module, nor dask.
"""
from __future__ import annotations

import inspect
import os

import dask
import dask.array as da
import dask.bag as db
import numpy as np

import fastrnn
from fastrnn import _dask_tasks
from fastrnn._bucketing import OUTPUTS, check_lengths
from fastrnn._dask_tasks import cache_info, clear_cache

__all__ = ["run", "run_array", "cache_info", "clear_cache"]


def run(model, seqs, *, batch_size=16, output="sequence", threads=None, **load_kwargs):
    """Run `model` over every sequence of the dask Bag `seqs`; a Bag of results in the same order.

    model: a fastrnn RNN/LSTM/GRU, or a path (str or os.PathLike) to a file that every worker can read, with
        `load_kwargs` for fastrnn.load (prefix=, nonlinearity=, dtype=, ...).
    seqs: a dask.bag.Bag of (T_i, input_size) arrays, any T_i >= 1.
    batch_size: sequences per engine call; within a partition, sequences are sorted by length and cut into
        batches of similar length, each run with lengths= (no compute past a sequence's end). The default, 16,
        was the fastest of 1..64 for LSTM(80, 256, num_layers=2) on the 2-core development machine.
    output: 'sequence' -> out, (T_i, D * H_out) per sequence; 'last' -> the last layer's final hidden state,
        directions concatenated [forward, reverse], (D * H_out,); 'state' -> h_n (num_layers * D, H_out) per
        sequence, or (h_n, c_n) for an LSTM (c_n: (num_layers * D, hidden_size)).
    threads: threads per task, pinned in the worker process: fastrnn's budget and, with threadpoolctl installed
        (the dask extra installs it), every BLAS and OpenMP pool of the process; default: in a dask worker, its
        OMP_NUM_THREADS (dask's nanny sets 1 in every worker process it starts) or 1; on dask's local
        schedulers (no Client) the caller's process keeps its own settings.

    A sequence of the wrong shape (or T = 0) fails its task with an error naming it ("sequence 3 of
    partition 7: ..."); NaNs are computed through like any value.
    """
    _check_options(batch_size, output, threads)
    if not isinstance(seqs, db.Bag):
        raise TypeError(f"seqs: expected a dask.bag.Bag of (T, input_size) arrays (db.from_sequence(arrays, "
                        f"npartitions=...)), got {type(seqs).__name__}")
    spec = _model_spec(model, load_kwargs)
    ref = _in_graph(spec)
    task = dask.delayed(_dask_tasks.score_partition, pure=True)
    return db.from_delayed([task(ref, part, p, batch_size, output, threads)
                            for p, part in enumerate(seqs.to_delayed())])


def run_array(model, x, *, lengths=None, batch_size=16, output="sequence", threads=None, **load_kwargs):
    """Run `model` over the rows of a dask array x (N, T, input_size), batch-major whatever the module's
    batch_first; chunks along N are the tasks (T and input_size are made one chunk).

    lengths: None (every row has T steps), or N integers in [1, T] (a sequence, numpy or dask array).
    Returns, as dask arrays chunked like x along N: 'sequence' -> (N, T, D * H_out), zeros past each row's length
    (what module(x, lengths=) gives); 'last' -> (N, D * H_out); 'state' -> h_n as (N, num_layers * D, H_out), or
    the pair (h_n, c_n) for an LSTM, both from the same tasks (compute them together: dask.compute(h_n, c_n)).
    Other arguments as for run(); a bad length fails with an error naming its row (lengths[i]).
    """
    _check_options(batch_size, output, threads)
    if not isinstance(x, da.Array):
        raise TypeError(f"x: expected a dask array (N, T, input_size) (da.from_array(x, chunks=...)), "
                        f"got {type(x).__name__}")
    spec = _model_spec(model, load_kwargs)
    if x.ndim != 3 or x.shape[2] != spec.input_size:
        raise ValueError(f"x: expected shape (N, T, input_size={spec.input_size}), got {x.shape}")
    N, T = x.shape[:2]
    if T == 0:
        raise ValueError(f"x: the sequence length must be at least 1, got shape {x.shape}")
    x = x.rechunk({1: -1, 2: -1})
    rows = x.chunks[0]
    starts = np.cumsum((0,) + rows)
    if lengths is None:
        length_blocks = [None] * len(rows)
    elif isinstance(lengths, da.Array):
        if lengths.shape != (N,):
            raise ValueError(f"lengths: expected {N} entries (one per row of x), got shape {lengths.shape}")
        length_blocks = list(lengths.rechunk((rows,)).to_delayed())  # checked in the tasks
    else:
        values = np.asarray(lengths)
        if values.shape != (N,):
            raise ValueError(f"lengths: expected {N} entries (one per row of x), got shape {values.shape}")
        values = check_lengths(values, T)
        length_blocks = [values[a:b] for a, b in zip(starts[:-1], starts[1:])]

    ref = _in_graph(spec)
    task = dask.delayed(_dask_tasks.score_block, pure=True)
    blocks = [task(ref, block, lens, int(start), batch_size, output, threads)
              for block, lens, start in zip(x.to_delayed().ravel(), length_blocks, starts[:-1])]
    width = spec.directions * spec.out_size
    if output == "sequence":
        return _stack(blocks, rows, (T, width), spec.dtype)
    if output == "last":
        return _stack(blocks, rows, (width,), spec.dtype)
    h_shape = (spec.state_rows, spec.out_size)
    if spec.cell_size is None:
        return _stack(blocks, rows, h_shape, spec.dtype)
    return (_stack([b[0] for b in blocks], rows, h_shape, spec.dtype),
            _stack([b[1] for b in blocks], rows, (spec.state_rows, spec.cell_size), spec.dtype))


def _stack(blocks, rows, shape, dtype):
    return da.concatenate([da.from_delayed(b, (n,) + shape, dtype=dtype) for b, n in zip(blocks, rows)])


def _model_spec(model, load_kwargs):
    if isinstance(model, (str, os.PathLike)):
        try:  # a misspelt keyword fails here, not on every worker
            inspect.signature(fastrnn.load).bind(model, **load_kwargs)
        except TypeError as exc:
            raise TypeError(f"fastrnn.load: {exc}") from None
        return _dask_tasks.ModelFile(os.fspath(model), load_kwargs)
    if load_kwargs:
        raise TypeError(f"{', '.join(load_kwargs)}: fastrnn.load keywords apply to a model given by path, "
                        f"not to a module ({type(model).__name__})")
    _dask_tasks.check_model(model, "model")
    return _dask_tasks.GivenModule(model)


def _check_options(batch_size, output, threads):
    _check_count("batch_size", batch_size)
    if threads is not None:
        _check_count("threads", threads)
    if output not in OUTPUTS:
        raise ValueError(f"output: expected one of {', '.join(map(repr, OUTPUTS))}, got {output!r}")


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")


def _in_graph(spec):
    """The model as one dependency of every task: with a distributed Client, a module is scattered (the graph
    then holds a reference, however large the weights); otherwise the spec is one key of the graph."""
    client = _distributed_client()
    if client is not None and isinstance(spec, _dask_tasks.GivenModule):
        # A fresh key per call: a content-hashed one can be released by an earlier call's graph as this one uses it.
        return client.scatter(spec, hash=False)
    return dask.delayed(spec, name=f"fastrnn-model-{spec.key}")


def _distributed_client():
    """The distributed Client that dask would compute with now, if it is one."""
    try:
        from distributed import Client
    except ImportError:
        return None
    client = getattr(dask.base.get_scheduler(), "__self__", None)  # a Client's scheduler is its bound get()
    return client if isinstance(client, Client) else None

"""What fastrnn.dask's tasks run inside a worker process, and the state a worker keeps between them.

The tasks are plain functions of numpy arrays and a model description (a ModelSpec), referred to by name in the
graph; this module imports no dask at import time (only distributed.get_worker, to tell a worker from the caller).

- The model: a task graph carries a ModelSpec once (scattered or as one key); a worker turns it into a module on
  first use and keeps it in a small per-process cache keyed by the model's content, so a model is loaded (or
  unpickled and packed) once per worker process, not once per task.
- Threads: in a worker, each task pins fastrnn's budget and, through threadpoolctl when it is installed (the dask
  extra installs it), the process's BLAS and OpenMP pools (numpy's, and any other library's: fastrnn uses none) to
  the threads a task may use, so `nthreads` tasks of a worker on `nthreads` cores do not oversubscribe them.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

import numpy as np

import fastrnn
from fastrnn._bucketing import check_lengths, check_sequence, score

# Models kept per worker process, least recently used dropped first: enough for a few models in turn without
# holding every checkpoint a long-lived worker ever scored.
CACHE_SIZE = 4

_lock = threading.Lock()
_models = OrderedDict()  # content key -> module
_loads = 0
_pinned_threads = None


class ModelSpec:
    """A model as a graph carries it: `key` (a digest of its content), the sizes that give output shapes, and
    `load()`, which a worker calls on a cache miss."""

    def __init__(self, module, key):
        self.key = key
        self.input_size = module.input_size
        self.directions = 2 if module.bidirectional else 1
        self.state_rows = module.num_layers * self.directions  # rows of h_n / c_n
        self.out_size = module.proj_size or module.hidden_size  # H_out of one direction
        self.cell_size = module.hidden_size if isinstance(module, fastrnn.LSTM) else None  # c_n's size; LSTM only
        self.dtype = module.dtype

    def __dask_tokenize__(self):
        return self.key


class GivenModule(ModelSpec):
    """A module the caller built: it travels with the spec (pickled small: its torch-named weights and config)."""

    def __init__(self, module):
        digest = hashlib.sha256(repr(module).encode())
        for name, value in module.named_parameters():
            digest.update(f"{name} {value.dtype.str} {value.shape}".encode())
            digest.update(np.ascontiguousarray(value))
        super().__init__(module, "module-" + digest.hexdigest())
        self.module = module

    def load(self):
        return self.module


class ModelFile(ModelSpec):
    """A file and fastrnn.load keywords: every worker loads the file itself (a path all of them can read)."""

    def __init__(self, path, load_kwargs):
        self.path = os.path.abspath(path)
        self.load_kwargs = dict(load_kwargs)
        self.file_digest = _file_digest(self.path)
        options = hashlib.sha256(repr(sorted(self.load_kwargs.items())).encode()).hexdigest()
        # Loaded here once to refuse a wrong file or keyword before anything runs, and to know the output shapes.
        super().__init__(self._load_module(), f"file-{self.file_digest}-{options}")

    def load(self):
        digest = _file_digest(self.path)
        if digest != self.file_digest:
            raise ValueError(f"{self.path}: this worker's file differs from the one given to fastrnn.dask "
                             f"(sha256 {digest[:12]}... here, {self.file_digest[:12]}... there); every worker "
                             f"must read the same model file")
        return self._load_module()

    def _load_module(self):
        module = fastrnn.load(self.path, **self.load_kwargs)
        check_model(module, f"fastrnn.load({self.path!r})")
        return module


def check_model(module, name):
    if not isinstance(module, (fastrnn.RNN, fastrnn.LSTM, fastrnn.GRU)):
        raise TypeError(f"{name}: expected an RNN, LSTM or GRU module (a cell has no sequences to score), "
                        f"got {type(module).__name__}")


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model(spec):
    global _loads
    with _lock:  # one load per process even when a worker runs several tasks at once
        module = _models.pop(spec.key, None)
        if module is None:
            module = spec.load()
            _loads += 1
        _models[spec.key] = module
        while len(_models) > CACHE_SIZE:
            _models.popitem(last=False)
    return module


def cache_info():
    """This process's model cache: {'loads': models loaded (or unpickled) so far, 'models': content keys held}.
    On a cluster: client.run(fastrnn.dask.cache_info) -> {worker address: info}."""
    with _lock:
        return {"loads": _loads, "models": list(_models)}


def clear_cache():
    """Drop this process's cached models (client.run(fastrnn.dask.clear_cache) on a cluster)."""
    global _loads
    with _lock:
        _models.clear()
        _loads = 0


def threads_per_task(threads):
    """How many threads a task pins its process to: `threads` if given; else, in a dask worker, the worker's
    OMP_NUM_THREADS (which dask's nanny sets to 1 in every worker process it starts, through the config key
    distributed.nanny.pre-spawn-environ) or 1; else None: on dask's local schedulers the tasks run in the
    caller's process, whose thread settings are the caller's to make."""
    if threads is not None:
        return threads
    if not _in_dask_worker():
        return None
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def _in_dask_worker():
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _pin_threads(threads):
    global _pinned_threads
    n = threads_per_task(threads)
    with _lock:
        if n is not None and n != _pinned_threads:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:  # fastrnn's threads are pinned below all the same; the others stay as they are
                pass
            else:
                threadpool_limits(limits=n)  # every BLAS and OpenMP pool loaded in the process, for good
            fastrnn.set_num_threads(n)
            _pinned_threads = n


def score_partition(spec, sequences, partition, batch_size, output, threads):
    """One bag partition: a list of (T_i, input_size) arrays -> a list of results, in the same order."""
    _pin_threads(threads)
    module = _model(spec)
    arrays = [check_sequence(seq, module.input_size, f"sequence {i} of partition {partition}")
              for i, seq in enumerate(sequences)]
    return score(module, arrays, batch_size, output)


def score_block(spec, block, lengths, offset, batch_size, output, threads):
    """One block of rows (n, T, input_size) of the caller's x, its first row being x[offset] -> that block of
    the result: (n, T, D * H_out) zero past each length, (n, D * H_out), or (n, L * D, H_out) [and c_n's]."""
    _pin_threads(threads)
    module = _model(spec)
    n, T = block.shape[:2]
    lengths = np.full(n, T, dtype=np.int64) if lengths is None else check_lengths(lengths, T, offset)
    results = score(module, [block[i, :lengths[i]] for i in range(n)], batch_size, output)
    width = spec.directions * spec.out_size
    if output == "sequence":
        out = np.zeros((n, T, width), dtype=spec.dtype)  # zeros past each length, as module(x, lengths=) gives
        for i, result in enumerate(results):
            out[i, :lengths[i]] = result
        return out
    if output == "last":
        out = np.empty((n, width), dtype=spec.dtype)
        for i, result in enumerate(results):
            out[i] = result
        return out
    h_n = np.empty((n, spec.state_rows, spec.out_size), dtype=spec.dtype)
    if spec.cell_size is None:
        for i, result in enumerate(results):
            h_n[i] = result
        return h_n
    c_n = np.empty((n, spec.state_rows, spec.cell_size), dtype=spec.dtype)
    for i, (h, c) in enumerate(results):
        h_n[i], c_n[i] = h, c
    return h_n, c_n

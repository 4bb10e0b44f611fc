"""What every fuzz target checks on one input (the invariant of issue 15), shared by the targets and the tests.

For any input, the readers may only raise `fastrnn.LoadError`. Anything else that escapes a target is a finding:
another exception (libFuzzer stops and writes the input as crash-*), a crash (deadly signal), a hang (libFuzzer's
-timeout), or an allocation far beyond the file's size:

    peak traced allocation for one input  <=  MEMORY_FLOOR + MEMORY_FACTOR * len(input)

The peak is counted by fuzz/memcount.c, an allocator shim that fuzz/run.py preloads: it counts numpy's array
buffers and Python's large bytes objects as requested, touched or not. That is what detects a declared size
honoured before it is checked: `np.empty(10**10)` costs no resident memory until it is written (Linux
overcommits), so libFuzzer's -rss_limit_mb misses it, and without sanitizer hooks -malloc_limit_mb sees
nothing. A target started without the shim (e.g. to replay one input) measures with tracemalloc instead,
which sees the same but runs several times slower.
The readers refuse what a file declares beyond `fastrnn._torchfile.output_limit(file size)` = 64 MiB + 4 x the
file's size (tensors, uncompressed records, npz arrays) before allocating it; this bound (192 MiB + 10 x) leaves
room for a result plus its transient copy (bfloat16 widening), the parse itself and, in `load`, the module.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import tempfile
import tracemalloc

import numpy as np

import fastrnn
from fastrnn import LoadError

MEMORY_FLOOR = 192 << 20
MEMORY_FACTOR = 10


class Finding(AssertionError):
    """An input that breaks the invariant in a way no exception shows (too much memory, an unchecked view)."""


def memory_bound(input_size):
    return MEMORY_FLOOR + MEMORY_FACTOR * input_size


def _shim():
    """The preloaded counters of fuzz/memcount.c, or None."""
    process = ctypes.CDLL(None)
    if not hasattr(process, "fastrnn_fuzz_peak"):
        return None
    for name in ("fastrnn_fuzz_peak", "fastrnn_fuzz_current"):
        getattr(process, name).restype = ctypes.c_longlong
    return process


_SHIM = _shim()


def start():
    """Call once per process, before the first input."""
    if _SHIM is None and not tracemalloc.is_tracing():
        tracemalloc.start(1)


def _reset_peak():
    if _SHIM is None:
        tracemalloc.reset_peak()
        return tracemalloc.get_traced_memory()[0]
    _SHIM.fastrnn_fuzz_reset_peak()
    return _SHIM.fastrnn_fuzz_current()


def _peak():
    return tracemalloc.get_traced_memory()[1] if _SHIM is None else _SHIM.fastrnn_fuzz_peak()


def check(data, action):
    """Run action(); LoadError is the one accepted outcome besides success; the peak allocation is bounded."""
    before = _reset_peak()
    try:
        action()
    except LoadError:
        pass
    grown = _peak() - before
    if grown > memory_bound(len(data)):
        raise Finding(f"{grown} bytes allocated for a {len(data)}-byte input (bound {memory_bound(len(data))})")


class ScratchFile:
    """One file per process for the readers that take a path, on tmpfs when there is one (no disk I/O)."""

    def __init__(self, suffix):
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        handle, self.path = tempfile.mkstemp(prefix="fastrnn-fuzz-", suffix=suffix, dir=folder)
        os.close(handle)

    def write(self, data):
        with open(self.path, "wb") as file:
            file.write(data)
        return self.path

    def remove(self):
        """After each input: libFuzzer leaves the process without running atexit handlers."""
        if os.path.exists(self.path):
            os.remove(self.path)


def load_everything(path):
    """The public reading path on one file: every tensor, discovery, and `load` of each RNN found in them."""
    state = fastrnn.load_state_dict(path)
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise Finding(f"load_state_dict returned {type(name).__name__} -> {type(value).__name__}")
    for group in fastrnn.find_rnns(state):
        if group.config is not None:
            fastrnn.load(state, prefix=group.prefix)


def file_target(suffix):
    """test_one_input for a reader that takes a path: the input is written to a scratch file and loaded."""
    scratch = ScratchFile(suffix)

    def test_one_input(data):
        try:
            check(data, lambda: load_everything(scratch.write(data)))
        finally:
            scratch.remove()

    return test_one_input


_PROT_NONE = 0
_LIBC = ctypes.CDLL(None, use_errno=True)


def guarded_zeros(nbytes):
    """`nbytes` zero bytes that end exactly where an inaccessible page starts: reading one byte past them is a
    segfault, which libFuzzer reports, instead of silently returning whatever lies beyond."""
    page = mmap.PAGESIZE
    size = -(-nbytes // page) * page
    block = mmap.mmap(-1, size + page)
    anchor = ctypes.c_char.from_buffer(block)
    address = ctypes.addressof(anchor)
    del anchor  # a live ctypes export would keep the mmap from ever closing
    if _LIBC.mprotect(ctypes.c_void_p(address + size), ctypes.c_size_t(page), _PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect of the guard page failed")
    return np.frombuffer(block, dtype=np.uint8, count=nbytes, offset=size - nbytes)

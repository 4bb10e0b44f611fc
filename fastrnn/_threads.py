"""fastrnn's thread budget.

The engine's matrix work runs in the BLAS behind scipy.linalg.cython_blas (scipy's bundled OpenBLAS
in a wheel install). `set_num_threads` caps that library's threads through threadpoolctl. numpy's own
BLAS is a different library and is left alone, except where scipy and numpy share one BLAS (then both
see the cap, as they would with any BLAS thread setting).
"""
from __future__ import annotations

import os

import numpy as np

_num_threads = None


def _scipy_blas_controllers():
    import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's BLAS so threadpoolctl can see it)
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    # A wheel install bundles scipy's BLAS under scipy.libs/; anything else (a system or conda BLAS
    # shared with numpy) cannot be told apart, so then every BLAS gets the cap.
    scipys = [lib for lib in blas.lib_controllers if "scipy.libs" in lib.filepath]
    return scipys or list(blas.lib_controllers)


def set_num_threads(n):
    """Use at most `n` threads for fastrnn's compute (n >= 1)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected an int >= 1, got {n!r}")
    n = int(n)
    for lib in _scipy_blas_controllers():
        lib.set_num_threads(n)
    _num_threads = n


def get_num_threads():
    """The number of threads fastrnn's compute may use (default: what the BLAS uses, all cores)."""
    if _num_threads is not None:
        return _num_threads
    counts = [lib.num_threads for lib in _scipy_blas_controllers()]
    return max(counts) if counts else (os.cpu_count() or 1)

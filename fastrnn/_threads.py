"""fastrnn's thread budget.

Two kinds of threads do fastrnn's work, and the budget caps both:
- the engine's own: with a budget of 2 or more, the two directions of a bidirectional layer run at once,
  one of them on fastrnn's single persistent worker thread, and large one-direction steps (few batch rows)
  are split by hidden units between the caller and that worker (only where no step of the time loop calls
  BLAS, so the two kinds never run together);
- the BLAS behind scipy.linalg.cython_blas (scipy's bundled OpenBLAS in a wheel install), used for the
  input projections of whole sequences and for steps with many batch rows; `set_num_threads` caps its
  threads through threadpoolctl. numpy's own BLAS is a different library and is left alone, except where
  scipy and numpy share one BLAS (then both see the cap, as they would with any BLAS thread setting).

The default budget is what the BLAS uses (all cores); the engine starts with the CPUs this process may run on.
"""
from __future__ import annotations

import os

from fastrnn import _engine
from fastrnn._convert import check_int

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
    n = check_int("set_num_threads", n, 1, wrong_type=ValueError)
    for lib in _scipy_blas_controllers():
        lib.set_num_threads(n)
    _engine.set_num_threads(n)
    _num_threads = n


def get_num_threads():
    """The number of threads fastrnn's compute may use (default: what the BLAS uses, all cores)."""
    if _num_threads is not None:
        return _num_threads
    counts = [lib.num_threads for lib in _scipy_blas_controllers()]
    return max(counts) if counts else (os.cpu_count() or 1)


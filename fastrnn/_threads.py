"""fastrnn's thread budget.

Every product of the engine runs on fastrnn's own kernels (no BLAS), so the budget is the engine's alone: with 2
or more, the two directions of a bidirectional layer run at once, one of them on fastrnn's single persistent
worker thread, or one direction's large enough phases (input projection, step, projection) are split into chunks
of hidden units shared by the caller and that worker. numpy's BLAS and other libraries' pools are left alone
(fastrnn.dask pins them in its workers).

The default budget is the number of CPUs this process may run on.
"""
from __future__ import annotations

from fastrnn import _engine
from fastrnn._convert import check_int


def set_num_threads(n):
    """Use at most `n` threads for fastrnn's compute (n >= 1)."""
    n = check_int("set_num_threads", n, 1, wrong_type=ValueError)
    _engine.set_num_threads(n)


def get_num_threads():
    """The number of threads fastrnn's compute may use (default: the CPUs this process may run on)."""
    return _engine.get_num_threads()

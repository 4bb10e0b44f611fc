"""Fail early and clearly when the compiled engine is missing or broken (an unbuilt or half-built checkout), instead
of the "partially initialized module ... circular import" error a failed import inside the package would give."""
from __future__ import annotations

import importlib.util
import os

_HOW = ("If you are working in a source checkout ({here}), build it first:\n"
        "    pip install -e .                          # or: python setup.py build_ext --inplace\n"
        "(needs a C compiler, Cython and numpy). An installed fastrnn should not show this: reinstall it.")


def _fail(problem):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    raise ImportError(f"fastrnn's compiled engine (fastrnn._engine) {problem}.\n" + _HOW.format(here=here))


if importlib.util.find_spec("fastrnn._engine") is None:
    _fail("is not built")
try:
    from fastrnn import _engine  # noqa: F401
except ImportError as exc:
    _fail(f"cannot be imported ({exc})")

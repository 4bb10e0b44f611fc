"""The package's shape: which module may import which, the message of an unbuilt checkout, the debug build."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastrnn import _engine

PACKAGE = Path(__file__).resolve().parents[1] / "fastrnn"


def module_imports(name):
    """The fastrnn modules `name` imports at import time (top-level statements only: lazy imports inside
    functions are the point of keeping a dependency out)."""
    path = PACKAGE.joinpath(*name.split(".")[1:]).with_suffix(".py")
    if not path.exists():
        path = PACKAGE.joinpath(*name.split(".")[1:], "__init__.py")
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in found if n.startswith("fastrnn.") and (PACKAGE / f"{n[8:].replace('.', '/')}.py").exists()
            or n == "fastrnn._engine"}


def reachable(name):
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen or current == "fastrnn._engine":
            seen.add(current)
            continue
        seen.add(current)
        todo.extend(module_imports(current))
    return seen


@pytest.mark.parametrize("name", ["fastrnn.loading", "fastrnn._readers", "fastrnn._torchfile", "fastrnn.config",
                                  "fastrnn._torch_names", "fastrnn._kinds"])
def test_reading_files_never_imports_the_engine(name):
    assert "fastrnn._engine" not in reachable(name), f"{name} reaches the compiled engine: {sorted(reachable(name))}"


def test_the_import_graph_check_sees_the_engine():
    """The check above can fail: the modules that build layers do reach the engine."""
    assert "fastrnn._engine" in reachable("fastrnn.modules")


def test_unbuilt_checkout_says_how_to_build(tmp_path):
    """A copy of the package without its compiled engine: ImportError with the build command, not a circular
    import error."""
    copy = tmp_path / "fastrnn"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # An editable install's finder would hand out this checkout's engine for any `fastrnn.*`: drop it.
    code = ("import sys\nsys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
            "import fastrnn\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode != 0
    assert "ImportError: fastrnn's compiled engine (fastrnn._engine) is not built" in proc.stderr, proc.stderr
    assert "python setup.py build_ext --inplace" in proc.stderr and "partially initialized" not in proc.stderr


def test_debug_build_checks_bounds():
    """FASTRNN_DEBUG=1 builds with Cython's bounds checks: an out-of-range index raises instead of reading."""
    if not _engine.DEBUG_BUILD:
        pytest.skip("a release build (CI's sanitizer step builds with FASTRNN_DEBUG=1 and runs this test)")
    with pytest.raises(IndexError):
        _engine._debug_index(np.zeros(4, np.float32), 4)
    assert _engine._debug_index(np.arange(4, dtype=np.float32), 3) == 3.0


def test_running_a_model_imports_no_blas_package():
    """The engine computes every product itself: importing fastrnn, building, running and streaming a module and
    setting the thread budget load neither scipy (whose BLAS the engine once used) nor threadpoolctl, so neither is
    a run-time dependency."""
    code = ("import sys, numpy as np, fastrnn\n"
            "fastrnn.set_num_threads(2)\n"
            "m = fastrnn.LSTM(4, 8, num_layers=2)\n"
            "m(np.ones((3, 2, 4), np.float32)); m.stream(1)(np.ones((2, 4), np.float32))\n"
            "fastrnn.GRU(4, 8, bidirectional=True)(np.ones((5, 4)))\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('scipy', 'threadpoolctl')))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout

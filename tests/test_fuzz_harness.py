"""The fuzz harness's allocation bound really detects an allocation far beyond the input's size, including one
that is never touched (which an RSS limit does not see)."""
from __future__ import annotations

import os
import subprocess
import sys

import fastrnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__)))
FUZZ = os.path.join(ROOT, "fuzz")


def run_with_shim(tmp_path, code):
    sys.path.insert(0, FUZZ)
    try:
        import run as fuzz_run
        shim = fuzz_run.build_shim(str(tmp_path))
    finally:
        sys.path.remove(FUZZ)
    env = dict(os.environ, LD_PRELOAD=shim, PYTHONPATH=os.pathsep.join([ROOT, FUZZ]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_untouched_allocation_is_a_finding_that_rss_misses(tmp_path):
    code = (
        "import resource, numpy as np, _harness\n"
        "assert _harness._SHIM is not None, 'shim not preloaded'\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    _harness.check(b'x' * 1000, lambda: np.empty(300 << 20, np.uint8))  # 300 MiB, never written\n"
        "except _harness.Finding as exc:\n"
        "    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "    print('finding:', exc, '| rss grew by', grown_kb, 'KiB')\n"
        "_harness.check(b'x' * 1000, lambda: np.zeros(1 << 20))  # 8 MiB: within the bound\n"
    )
    done = run_with_shim(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert "finding: 3145" in done.stdout and "bytes allocated for a 1000-byte input" in done.stdout, done.stdout
    grown_kib = int(done.stdout.split("rss grew by")[1].split()[0])
    assert grown_kib < 64 << 10, done.stdout  # what -rss_limit_mb would have seen: next to nothing

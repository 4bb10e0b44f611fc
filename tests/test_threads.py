"""set_num_threads / get_num_threads: the budget is the engine's (fastrnn uses no BLAS), results do not depend on it,
and concurrent calls from Python threads (the engine releases the GIL) give the serial answers."""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from conftest import assert_close, make_module, make_pair, randn, run_fastrnn, run_torch
from fastrnn import _engine


@pytest.fixture
def restore_threads():
    before = fastrnn.get_num_threads()
    yield before
    fastrnn.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_then_get(n, restore_threads):
    fastrnn.set_num_threads(n)
    assert fastrnn.get_num_threads() == n
    assert _engine.get_num_threads() == n  # the budget the time loops read


def test_default_is_positive_int():
    n = fastrnn.get_num_threads()
    assert isinstance(n, int) and n >= 1


def test_default_is_the_cpus_this_process_may_use():
    """In a fresh process, before any set_num_threads (this process's budget has been set by other tests)."""
    code = ("import os, fastrnn\n"
            "cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()\n"
            "print(fastrnn.get_num_threads(), cpus)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    got, cpus = proc.stdout.split()
    assert got == cpus


@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, True, "2", None])
def test_bad_thread_counts(bad, restore_threads):
    with pytest.raises(ValueError, match=r"set_num_threads.*int"):
        fastrnn.set_num_threads(bad)
    assert fastrnn.get_num_threads() == restore_threads  # a refused call changes nothing


def test_numpy_integer_thread_count(restore_threads):
    fastrnn.set_num_threads(np.int64(1))
    assert fastrnn.get_num_threads() == 1


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "LSTMP"])
def test_one_and_two_threads_agree(kind, rng, seed, restore_threads):
    """Big enough that two threads run the two directions of each layer at once."""
    fmod = make_module(kind, rng, np.float32, input_size=128, hidden_size=128, num_layers=2, bidirectional=True,
                        batch_first=True, proj_size=48)
    x = randn(rng, (8, 20, 128))
    results = {}
    for n in (1, 2):
        fastrnn.set_num_threads(n)
        results[n] = run_fastrnn(fmod, x, None, kind)
    out1, fin1 = results[1]
    out2, fin2 = results[2]
    assert_close(out2, out1, np.float32, f"{kind} out 2 threads vs 1", seed)
    for a, b in zip(fin2, fin1):
        assert_close(a, b, np.float32, f"{kind} state 2 threads vs 1", seed)


def test_one_thread_matches_torch(rng, seed, restore_threads):
    pytest.importorskip("torch")
    tmod, fmod = make_pair("LSTM", rng, np.float32, input_size=64, hidden_size=96, num_layers=2, bidirectional=True)
    x = randn(rng, (30, 8, 64))
    fastrnn.set_num_threads(1)
    out, finals = run_fastrnn(fmod, x, None, "LSTM")
    t_out, t_finals = run_torch(tmod, x, kind="LSTM")
    assert_close(out, t_out, np.float32, "1 thread vs torch", seed)
    for a, b in zip(finals, t_finals):
        assert_close(a, b, np.float32, "1 thread vs torch state", seed)


@pytest.mark.parametrize("kind", ["RNN_TANH", "LSTM", "GRU"])
def test_concurrent_calls_from_python_threads(kind, rng, seed):
    """One module used from two Python threads at once (the GIL is released in the time loop)."""
    fmod = make_module(kind, rng, np.float64, input_size=16, hidden_size=32, num_layers=2, bidirectional=True)
    inputs = [randn(rng, (25, int(rng.integers(1, 6)), 16), np.float64) for _ in range(8)]
    lengths = [rng.integers(1, 26, size=x.shape[1]) for x in inputs]
    serial = [run_fastrnn(fmod, x, None, kind, lengths=n) for x, n in zip(inputs, lengths)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = list(pool.map(lambda args: run_fastrnn(fmod, args[0], None, kind, lengths=args[1]),
                                 zip(inputs, lengths)))
    for i, ((so, sf), (po, pf)) in enumerate(zip(serial, parallel)):
        assert_close(po, so, np.float64, f"{kind} concurrent out #{i}", seed)
        for a, b in zip(pf, sf):
            assert_close(a, b, np.float64, f"{kind} concurrent state #{i}", seed)

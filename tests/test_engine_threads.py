"""The engine's own thread: the two directions of a bidirectional layer at once, on fastrnn's persistent worker.

Every kind, dtype, batch_first, variable lengths and a projection, with the parallel path forced (no minimum
work), against torch and bitwise against one thread (the directions are independent, so running them at once
changes no arithmetic); concurrent callers share the one worker (the loser runs both directions itself); a
forked child starts its own worker.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastrnn
from conftest import KINDS, assert_close, make_pair, randn, run_fastrnn, run_torch, state_shapes

from fastrnn import _engine


@pytest.fixture
def parallel_always():
    threads = fastrnn.get_num_threads()
    old = _engine._set_parallel_min_flops(0)
    yield
    _engine._set_parallel_min_flops(old)
    fastrnn.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_two_threads_match_torch_and_one_thread(parallel_always, kind, dtype, batch_first, rng, seed):
    T, B, H = 7, 3, 21
    tmod, fmod = make_pair(kind, rng, dtype, input_size=6, hidden_size=H, num_layers=2, bidirectional=True,
                           batch_first=batch_first)
    x = randn(rng, (B, T, 6) if batch_first else (T, B, 6), dtype)
    states = [randn(rng, s, dtype) for s in state_shapes(kind, 2, True, B, H)]
    want_out, want_states = run_torch(tmod, x, states, kind)
    results = {}
    for n in (1, 2):
        fastrnn.set_num_threads(n)
        results[n] = run_fastrnn(fmod, x, states, kind)
        out, finals = results[n]
        assert_close(out, want_out, dtype, f"{kind} threads={n} out", seed)
        for got, want in zip(finals, want_states):
            assert_close(got, want, dtype, f"{kind} threads={n} state", seed)
    assert np.array_equal(results[1][0], results[2][0])


@pytest.mark.parametrize("kind", KINDS)
def test_two_threads_with_lengths(parallel_always, kind, rng, seed):
    # T*B <= 40 rows: one thread projects through the panels too (more rows take BLAS, whose summation order
    # differs), so the two runs do the same arithmetic. Larger batches: tests/test_engine_lengths.py vs torch.
    T, B = 8, 5
    _, fmod = make_pair(kind, rng, np.float32, input_size=4, hidden_size=18, bidirectional=True)
    x = randn(rng, (T, B, 4))
    lengths = rng.integers(1, T + 1, size=B)
    fastrnn.set_num_threads(1)
    one = run_fastrnn(fmod, x, None, kind, lengths=lengths)
    fastrnn.set_num_threads(2)
    two = run_fastrnn(fmod, x, None, kind, lengths=lengths)
    assert np.array_equal(one[0], two[0])
    for a, b in zip(one[1], two[1]):
        assert np.array_equal(a, b)


def test_concurrent_callers_share_the_worker(parallel_always, rng):
    fastrnn.set_num_threads(2)
    _, fmod = make_pair("LSTM", rng, np.float32, input_size=8, hidden_size=40, num_layers=2, bidirectional=True)
    inputs = [randn(rng, (30, int(rng.integers(1, 9)), 8)) for _ in range(12)]
    serial = [fmod(x)[0] for x in inputs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda x: fmod(x)[0], inputs))
    for a, b in zip(serial, parallel):
        assert np.array_equal(a, b)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_its_own_worker(parallel_always, rng):
    fastrnn.set_num_threads(2)
    _, fmod = make_pair("GRU", rng, np.float32, input_size=5, hidden_size=24, bidirectional=True)
    x = randn(rng, (20, 2, 5))
    want = fmod(x)[0]  # the parent's worker exists now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: a worker-less copy of the parent; must not hang
        try:
            ok = np.array_equal(fmod(x)[0], want)
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    got = os.read(read, 1)
    os.waitpid(pid, 0)
    assert got == b"1"


def test_thread_budget_reaches_the_engine(parallel_always):
    fastrnn.set_num_threads(1)
    assert _engine._get_num_threads() == 1
    fastrnn.set_num_threads(2)
    assert _engine._get_num_threads() == 2

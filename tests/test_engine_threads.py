"""The engine's own thread: the two directions of a bidirectional layer at once, on fastrnn's persistent worker;
and one direction's steps split by hidden units across the caller and the worker (spin barriers per step).

Every kind, dtype, batch_first, variable lengths and a projection, with the parallel path forced (no minimum
work), against the numpy oracle (tests/reference.py) and bitwise against one thread (the directions are
independent, so running them at once changes no arithmetic); concurrent callers share the one worker (the loser runs
both directions itself); a forked child starts its own worker.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastrnn
from conftest import (KINDS, assert_close, make_module, module_args, randn, random_weights, run_fastrnn, run_reference,
                      state_shapes, tuned)

from fastrnn import _engine


@pytest.fixture
def parallel_always():
    threads = fastrnn.get_num_threads()
    with tuned(parallel_min_flops=0):
        yield
    fastrnn.set_num_threads(threads)


@pytest.fixture
def split_always(parallel_always):
    isa = _engine.isa()
    with tuned(split_min_step_flops=0, split_min_call_flops=0, split_chunks=3):
        yield
    _engine.set_isa(isa)


def worker_joins(call, tries=2000):
    """Whether the worker takes part in `call` within `tries` calls (it joins when it is awake; a first call may
    find it asleep and finish alone, which is the point of claiming chunks; on a loaded machine it may be late
    and back off, so the back-off is ended before each try)."""
    before = _engine._team_counts()[0]
    for _ in range(tries):
        _engine._team_forgive()
        call()
        if _engine._team_counts()[0] > before:
            return True
    return False


# H = 37 (f32: 3 panels of 16, the last partial; f64: 5 of 8), H_out 18 for LSTMP: chunks of one panel, a partial
# one among them. Every unit's arithmetic is the same whichever thread computes it: bitwise equal to one thread.
@pytest.mark.parametrize("isa", _engine.supported_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_split_steps_match_oracle_and_one_thread(split_always, isa, kind, dtype, lengths, batch_first, rng, seed):
    _engine.set_isa(isa)
    T, B, H = 8, 4, 37
    fmod = make_module(kind, rng, dtype, input_size=5, hidden_size=H, num_layers=2, batch_first=batch_first)
    x = randn(rng, (B, T, 5) if batch_first else (T, B, 5), dtype)
    kwargs = {}
    if lengths:
        kwargs["lengths"] = np.array([T, T - 2, 3, 1])  # one thread: against the oracle in test_engine_lengths.py
    states = [randn(rng, s, dtype) for s in state_shapes(kind, 2, False, B, H)]
    results = {}
    for n in (1, 2):
        fastrnn.set_num_threads(n)
        results[n] = run_fastrnn(fmod, x, states, kind, **kwargs)
    assert worker_joins(lambda: run_fastrnn(fmod, x, states, kind, **kwargs))
    if not lengths:
        want_out, want_states = run_reference(fmod, x, states, kind)
        out, finals = results[2]
        assert_close(out, want_out, dtype, f"{kind} split out", seed)
        for got, want in zip(finals, want_states):
            assert_close(got, want, dtype, f"{kind} split state", seed)
    assert np.array_equal(results[1][0], results[2][0])
    for a, b in zip(results[1][1], results[2][1]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunks", [2, 5, 8])
def test_split_middle_out_order_changes_no_bits(split_always, kind, chunks, rng, seed):
    """A split step's chunks taken from the middle out on odd steps (timeloop.pxi _split_order: every chunk once,
    whichever claims the worker wins) give what the plain order and one thread give, bit for bit."""
    T, B, H = 9, 3, 150  # float32: 10 panels of 16 (the last partial) in `chunks` chunks
    fmod = make_module(kind, rng, np.float32, input_size=7, hidden_size=H, num_layers=2)
    x = randn(rng, (T, B, 7))
    states = [randn(rng, s, np.float32) for s in state_shapes(kind, 2, False, B, H)]
    fastrnn.set_num_threads(1)
    want = run_fastrnn(fmod, x, states, kind)
    fastrnn.set_num_threads(2)
    for split_sweep in (0, 1):
        with tuned(split_chunks=chunks, split_sweep=split_sweep):
            assert worker_joins(lambda: run_fastrnn(fmod, x, states, kind))
            got = run_fastrnn(fmod, x, states, kind)
        assert np.array_equal(got[0], want[0]), f"{kind} chunks={chunks} split_sweep={split_sweep} (seed={seed})"
        for a, b in zip(got[1], want[1]):
            assert np.array_equal(a, b), f"{kind} chunks={chunks} split_sweep={split_sweep} state (seed={seed})"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_sweep_order_changes_no_bits(isa, kind, dtype, rng, seed):
    """One thread taking each step's panels in chunks, in the opposite order every other step (timeloop.pxi
    _sweep, for weights of about L2's size), computes each unit as one pass over the panels does."""
    T, B, H = 7, 3, 37
    fmod = make_module(kind, rng, dtype, input_size=5, hidden_size=H, num_layers=2, bidirectional=True)
    x = randn(rng, (T, B, 5), dtype)
    lengths = np.array([T, T - 2, 1])
    states = [randn(rng, s, dtype) for s in state_shapes(kind, 2, True, B, H)]
    threads = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1)
    try:
        with tuned(sweep_min_bytes=1e30):
            once = run_fastrnn(fmod, x, states, kind, lengths=lengths)
        with tuned(sweep_min_bytes=0, sweep_chunks=2):
            swept = run_fastrnn(fmod, x, states, kind, lengths=lengths)
    finally:
        fastrnn.set_num_threads(threads)
    assert np.array_equal(once[0], swept[0]), f"{kind} {dtype.__name__} isa={isa} out (seed={seed})"
    for a, b in zip(once[1], swept[1]):
        assert np.array_equal(a, b), f"{kind} {dtype.__name__} isa={isa} state (seed={seed})"


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("kind", KINDS + ("GRU_RESET_BEFORE",))
def test_fused_sweep_changes_no_bits(isa, kind, precision, rng, seed):
    """Blocks of one step run chunk by chunk, each chunk's input projection with its step, in the opposite order on
    every other step (timeloop.pxi _fused_step: every streamed step of weights about L2's size) give the bits of
    the projection-then-step phases, streamed frame by frame and in a call with variable lengths."""
    T, B, H, I = 7, 3, 37, 5
    name, kwargs = module_args("GRU" if kind == "GRU_RESET_BEFORE" else kind, I, H, num_layers=2)
    if kind == "GRU_RESET_BEFORE":
        kwargs["linear_before_reset"] = False
    fmod = getattr(fastrnn, name)(**kwargs, precision=precision)
    fmod.load_state_dict(random_weights(fmod, rng, 1.0 / np.sqrt(H)))
    x = randn(rng, (T, B, I))
    lengths = np.array([T, T - 2, 1])
    threads = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1)
    try:
        results = []
        for fuse in (1e30, 0):
            with tuned(fuse_min_bytes=fuse, sweep_chunks=3, block_bytes=1, block_rows=1):
                stream = fmod.stream(batch_size=B)
                frames = np.stack([stream(x[t:t + 1])[0] for t in range(T)])
                state = stream.state
                out, finals = run_fastrnn(fmod, x, lengths=lengths, kind=name)
                results.append([frames, *(state if isinstance(state, tuple) else [state]), out, *finals])
    finally:
        fastrnn.set_num_threads(threads)
    plain, fused = results
    for what, a, b in zip(["stream", "stream h", "stream c or call"] + ["call"] * 3, plain, fused):
        assert np.array_equal(a, b), f"{kind} {precision} isa={isa} {what} (seed={seed})"


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_split_steps_with_blocks_match_oracle(split_always, kind, rng, seed):
    # Blocks of 4 steps of input projection, each split too; B = 49 rows: more than a register block holds.
    fmod = make_module(kind, rng, np.float32, input_size=20, hidden_size=70)
    x = randn(rng, (30, 49, 20))
    want_out, want_states = run_reference(fmod, x, None, kind)
    fastrnn.set_num_threads(2)
    with tuned(block_bytes=4 * 49 * 70 * 4 * 4, block_rows=1):
        out, finals = run_fastrnn(fmod, x, None, kind)
    assert_close(out, want_out, np.float32, f"{kind} split out", seed)
    for got, want in zip(finals, want_states):
        assert_close(got, want, np.float32, f"{kind} split state", seed)


def test_split_concurrent_callers(split_always, rng):
    # A caller that finds the worker busy with another runs its steps alone.
    fastrnn.set_num_threads(2)
    fmod = make_module("GRU", rng, np.float32, input_size=8, hidden_size=50, num_layers=2)
    inputs = [randn(rng, (int(rng.integers(1, 13)), 3, 8)) for _ in range(16)]
    serial = [fmod(x)[0] for x in inputs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda x: fmod(x)[0], inputs))
    for a, b in zip(serial, parallel):
        assert np.array_equal(a, b)


def test_split_streaming(split_always, rng):
    fastrnn.set_num_threads(2)
    fmod = make_module("LSTM", rng, np.float32, input_size=6, hidden_size=40, num_layers=2)
    x = randn(rng, (9, 2, 6))
    want = fmod(x)[0]
    stream = fmod.stream(batch_size=2)
    got = np.concatenate([stream(x[t:t + 1]) for t in range(9)])
    assert np.array_equal(got, want)
    assert worker_joins(lambda: stream(x[:1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_two_threads_match_oracle_and_one_thread(parallel_always, kind, dtype, batch_first, rng, seed):
    T, B, H = 7, 3, 21
    fmod = make_module(kind, rng, dtype, input_size=6, hidden_size=H, num_layers=2, bidirectional=True,
                           batch_first=batch_first)
    x = randn(rng, (B, T, 6) if batch_first else (T, B, 6), dtype)
    states = [randn(rng, s, dtype) for s in state_shapes(kind, 2, True, B, H)]
    want_out, want_states = run_reference(fmod, x, states, kind)
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
    # Each unit's arithmetic is the same whichever thread computes it, so the two runs agree bitwise. Larger
    # batches: tests/test_engine_lengths.py.
    T, B = 8, 5
    fmod = make_module(kind, rng, np.float32, input_size=4, hidden_size=18, bidirectional=True)
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
    fmod = make_module("LSTM", rng, np.float32, input_size=8, hidden_size=40, num_layers=2, bidirectional=True)
    inputs = [randn(rng, (30, int(rng.integers(1, 9)), 8)) for _ in range(12)]
    serial = [fmod(x)[0] for x in inputs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda x: fmod(x)[0], inputs))
    for a, b in zip(serial, parallel):
        assert np.array_equal(a, b)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_its_own_worker(parallel_always, rng):
    fastrnn.set_num_threads(2)
    fmod = make_module("GRU", rng, np.float32, input_size=5, hidden_size=24, bidirectional=True)
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
    assert _engine.get_num_threads() == 1
    fastrnn.set_num_threads(2)
    assert _engine.get_num_threads() == 2


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_no_split_on_one_cpu():
    # A budget of 2 on one CPU: the split's spinning barriers would wait out each other's time slices.
    import subprocess
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
            "import numpy as np, fastrnn\nfrom fastrnn import _engine\n"
            "fastrnn.set_num_threads(2); _engine.set_tuning(split_min_step_flops=0, split_min_call_flops=0)\n"
            "for _ in range(50): fastrnn.GRU(8, 40)(np.zeros((5, 2, 8), np.float32))\n"
            "assert _engine._team_counts() == (0, 0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})

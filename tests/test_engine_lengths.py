"""Variable-length batches in the engine against the numpy oracle (tests/reference.py, no torch).

Layer.forward with `active` projects only the rows a batch uses (time-major: runs of full steps, and a step with
finished rows alone; batch-major: each row's steps before its length), block by block. Every kind, dtype, layout,
one and two directions, blocks of one step and of the whole sequence, 1 and 2 threads (the directions at once),
each kernel tier, and a wide input. Padded outputs must read exactly 0.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from conftest import KINDS, assert_close, make_module, randn, run_reference, state_shapes, tuned
from fastrnn import _engine

TIERS = _engine.supported_tiers()


@pytest.fixture
def engine_settings():
    """Restore what a test changes: tuning, threads, tier; the directions run at once however small."""
    threads, isa = fastrnn.get_num_threads(), _engine.isa()
    with tuned(parallel_min_flops=0):
        yield
    _engine.set_isa(isa)
    fastrnn.set_num_threads(threads)


def check(kind, rng, seed, dtype, T, B, I, H, bidirectional, batch_first, lengths, step_blocks, threads, isa,
          num_layers=2):
    _engine.set_tuning(block_rows=1, block_bytes=1 if step_blocks else 1 << 40)
    _engine.set_isa(isa)
    fastrnn.set_num_threads(threads)
    fmod = make_module(kind, rng, dtype, input_size=I, hidden_size=H, num_layers=num_layers,
                       bidirectional=bidirectional, batch_first=batch_first)
    x = randn(rng, (B, T, I) if batch_first else (T, B, I), dtype)
    hx = [randn(rng, s, dtype) for s in state_shapes(kind, num_layers, bidirectional, B, H)]
    t_out, t_fin = run_reference(fmod, x, hx, kind, lengths)
    out, hn = fmod(x, tuple(hx) if kind in ("LSTM", "LSTMP") else hx[0], lengths=lengths)
    finals = list(hn) if isinstance(hn, tuple) else [hn]
    label = f"{kind} step_blocks={step_blocks} threads={threads} isa={isa} T={T} B={B} I={I} H={H} bf={batch_first}"
    assert_close(out, t_out, dtype, f"{label} out", seed)
    for name, f, t in zip(("h_n", "c_n"), finals, t_fin):
        assert_close(f, t, dtype, f"{label} {name}", seed)
    pad = np.arange(T)[None, :] >= np.asarray(lengths)[:, None]  # (B, T)
    out_bt = out if batch_first else out.transpose(1, 0, 2)
    assert np.all(out_bt[pad] == 0), f"{label}: padded outputs are not zero (seed={seed})"
    return out


def skewed(rng, B, T):
    """Mostly short rows, one of full length, ties: a staircase with flat stretches."""
    lengths = np.clip(rng.geometric(3.0 / T, size=B), 1, T)
    lengths[rng.integers(B)] = T
    return lengths


@pytest.mark.parametrize("isa", TIERS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("step_blocks", [True, False])
def test_ragged_projection_matches_oracle(engine_settings, step_blocks, kind, bidirectional, batch_first, threads,
                                          isa, rng, seed):
    for T, B in ((6, 5), (30, 10)):
        for dtype in (np.float32, np.float64):
            check(kind, rng, seed, dtype, T, B, 7, 19, bidirectional, batch_first, skewed(rng, B, T), step_blocks,
                  threads, isa)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_ragged_with_wide_input(engine_settings, kind, batch_first, rng, seed):
    """I much larger than the gate columns."""
    check(kind, rng, seed, np.float32, 25, 6, 90, 3, False, batch_first, skewed(rng, 6, 25), True, 1,
          _engine.cpu_isa(), num_layers=1)


@pytest.mark.parametrize("batch_first", [False, True])
def test_block_sizes_agree(engine_settings, batch_first, rng, seed):
    """Blocks of one step and of the whole sequence compute the same rows: lengths of every shape (all full,
    all one, ties, skewed) agree between the two to float rounding."""
    kind, T, B = "LSTM", 40, 9
    for lengths in (np.full(B, T), np.ones(B, int), rng.integers(1, T + 1, size=B), skewed(rng, B, T)):
        outs = [check(kind, np.random.default_rng(seed), seed, np.float64, T, B, 5, 11, True, batch_first,
                      lengths, step_blocks, 1, _engine.cpu_isa()) for step_blocks in (True, False)]
        np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-12)

"""Every kernel path the engine can take on this machine, against the numpy oracle (tests/reference.py; torch
for the packed-sequence path).

Paths: kernel tier (every tier this CPU runs) x blocks of input projection (one step per block, or the whole
sequence at once) x threads (1; 2 with the steps split into chunks shared with the worker; 2 with the two directions
at once), for every cell kind, one and several batch rows (register blocks of every height, variable lengths
shrinking the active rows), one step and several, sizes with panel tails. FASTRNN_ISA is checked in a subprocess,
since it is read at import.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import KINDS, assert_close, make_module, make_pair, randn, run_reference, state_shapes, tuned

from fastrnn import _engine

@pytest.fixture(params=["step_blocks", "one_block"])
def blocks(request):
    """The input projection one step at a time (a block of one step) or the whole sequence at once."""
    with tuned(block_rows=1, block_bytes=1 if request.param == "step_blocks" else 1 << 40):
        yield request.param


@pytest.fixture(params=["1", "1_sweep", "1_fused", "2_split", "2_directions"])
def threads(request):
    """One thread; one thread taking each step's panels in chunks, in the opposite order every other step; the same
    with each chunk's input projection fused into its step (blocks of one step); two with every step split into
    chunks; two with the directions at once (however small)."""
    import fastrnn
    before = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1 if request.param.startswith("1") else 2)
    split = 0 if request.param == "2_split" else 1e30
    with tuned(parallel_min_flops=0 if request.param == "2_directions" else 1e30, split_min_step_flops=split,
               split_min_call_flops=split, split_chunks=3, sweep_chunks=3,
               sweep_min_bytes=0 if request.param == "1_sweep" else 1e30,
               fuse_min_bytes=0 if request.param == "1_fused" else 1e30):
        yield request.param
    fastrnn.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T,B,H,bidirectional", [(1, 1, 17, False), (9, 1, 33, True), (6, 3, 40, False),
                                                 (5, 1, 64, False), (1, 13, 21, False), (4, 7, 16, True)])
def test_path_matches_oracle(isa, blocks, threads, dtype, kind, T, B, H, bidirectional, rng, seed):
    fmod = make_module(kind, rng, dtype, input_size=11, hidden_size=H, num_layers=2, bidirectional=bidirectional)
    x = randn(rng, (T, B, 11), dtype, scale=2.0)
    states = [randn(rng, shape, dtype) for shape in state_shapes(kind, 2, bidirectional, B, H)]
    want_out, want_states = run_reference(fmod, x, states, kind)
    hx = tuple(states) if len(states) == 2 else states[0]
    out, got = fmod(x, hx)
    got_states = list(got) if isinstance(got, tuple) else [got]
    where = f"isa={isa} blocks={blocks} threads={threads} {kind} T={T} B={B} H={H}"
    assert_close(out, want_out, dtype, where + " out", seed)
    for g, w in zip(got_states, want_states):
        assert_close(g, w, dtype, where + " state", seed)


@pytest.mark.parametrize("kind", KINDS)
def test_path_with_lengths_matches_torch(isa, blocks, threads, kind, rng, seed):
    """Active rows shrink from 9 to 1 over the sequence: every register block height, then the one-row kernel."""
    torch = pytest.importorskip("torch")
    T, B, H = 9, 9, 20
    tmod, fmod = make_pair(kind, rng, np.float32, input_size=5, hidden_size=H, bidirectional=True)
    x = randn(rng, (T, B, 5))
    lengths = np.arange(T, 0, -1)
    rng.shuffle(lengths)
    out, _ = fmod(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths),
                                                     enforce_sorted=False)
    with torch.no_grad():
        t_out, _ = tmod(packed)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out, total_length=T)
    assert_close(out, want.numpy(), np.float32, f"isa={isa} blocks={blocks} threads={threads} {kind} lengths",
                 seed)


def test_paths_propagate_nan_and_saturate(isa, blocks):
    """Deep saturation gives finite exact-limit values on every path; a NaN input poisons only its row."""
    import fastrnn
    lstm = fastrnn.LSTM(4, 20)
    sd = lstm.state_dict()
    sd = {k: np.full_like(v, 1e3) for k, v in sd.items()}
    lstm.load_state_dict(sd)
    x = np.full((3, 2, 4), 1e30, np.float32)
    x[1, 1, 0] = -np.inf
    out, (h, c) = lstm(x)
    assert np.isfinite(out[:, 0]).all() and np.all(np.abs(out[:, 0]) <= 1)
    x[0, 1, 2] = np.nan
    out, _ = lstm(x)
    assert np.isnan(out[:, 1]).all() and np.isfinite(out[:, 0]).all()


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activations_each_isa(isa, name):
    x = np.concatenate([np.linspace(-30, 30, 6001), [1e-30, -1e-30, 88, -88, 1e30, -1e30, np.inf, -np.inf]])
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-x)) if name == "sigmoid" else np.tanh(x)
    got = x.astype(np.float32)
    _engine._kernel_activation(name, got)
    assert_close(got, want, np.float32, f"{name} isa={isa}")
    got = np.array([np.nan, 1.0], np.float32)
    _engine._kernel_activation(name, got)
    assert np.isnan(got[0]) and np.isfinite(got[1])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activations_each_isa_within_3_ulp(isa, name, rng, seed):
    """float32 sigmoid and tanh within 3 ulp of float64 on every tier, also where |x| is tiny and tanh(x) ~ x:
    an absolute tolerance would not see a tanh that lost its relative accuracy near 0 (e.g. expm1 taken as
    exp - 1)."""
    x = np.concatenate([np.linspace(-45, 45, 90001), randn(rng, 20000, np.float64, scale=3.0),
                        10.0 ** rng.uniform(-38, 1, 20000) * rng.choice([-1.0, 1.0], 20000)]).astype(np.float32)
    x64 = x.astype(np.float64)
    want = 1 / (1 + np.exp(-x64)) if name == "sigmoid" else np.tanh(x64)
    got = x.copy()
    _engine._kernel_activation(name, got)
    normal = np.abs(want) >= np.finfo(np.float32).tiny
    ulps = np.abs(got[normal] - want[normal]) / np.spacing(np.abs(want[normal]).astype(np.float32))
    worst = int(np.argmax(ulps))
    assert ulps[worst] <= 3, f"{name} isa={isa}: {ulps[worst]:.2f} ulp at x={x[normal][worst]!r} (seed={seed})"
    if name == "tanh":  # odd, down to -0.0
        assert np.array_equal(np.signbit(got), np.signbit(want)), f"tanh isa={isa}: a sign differs (seed={seed})"


@pytest.mark.parametrize("value", [*_engine.TIERS, "", "bogus"])
def test_env_var_selects_isa(value):
    """FASTRNN_ISA names the tier (a cap: any tier this CPU runs); unknown or unsupported: the default, warned."""
    expected = value if value in _engine.supported_tiers() else _engine.cpu_isa()
    env = dict(os.environ, FASTRNN_ISA=value)
    code = "import fastrnn._engine as e; print(e.isa())"
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == expected


def test_set_isa_refuses_unknown_and_unsupported():
    with pytest.raises(ValueError, match="expected one of"):
        _engine.set_isa("avx1024")
    for name in set(_engine.TIERS) - set(_engine.supported_tiers()):
        with pytest.raises(ValueError, match="cannot run"):
            _engine.set_isa(name)


@pytest.mark.parametrize("tier", _engine.TIERS)
def test_every_compiled_tier_runs_here_or_says_why(tier):
    """The tiers this CPU lacks are not collected by the `isa` fixture: name them as skips, not silence."""
    if tier not in _engine.supported_tiers():
        pytest.skip(f"this CPU does not run the {tier!r} kernels (its tiers: {_engine.supported_tiers()})")
    before = _engine.isa()
    try:
        _engine.set_isa(tier)
        assert _engine.isa() == tier
    finally:
        _engine.set_isa(before)

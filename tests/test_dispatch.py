"""Every kernel path the engine can take on this machine, against torch.

Paths (each at 1 and 2 engine threads): instruction set (generic always; avx2 where the CPU runs it) x recurrent step (the fused packed-panel
kernel for every row count, for one row only with BLAS beyond, or BLAS + gate kernel throughout), for every
cell kind, one and several batch rows (register blocks of every height, variable lengths shrinking the active
rows across the crossover), one step (the input projection through the panels) and several, sizes with panel
tails. FASTRNN_ISA is checked in a subprocess, since it is read at import.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import KINDS, assert_close, make_pair, randn, run_torch, state_shapes

from fastrnn import _engine

ISAS = [name for name in _engine.ISA_NAMES if _engine.ISA_NAMES.index(name) <= _engine.ISA_NAMES.index(_engine.cpu_isa())]
# (_PACKED_MAX_BYTES, _PACKED_MAX_ROWS) that force each path
RECURRENT = {"packed": (1 << 62, 1 << 30), "packed1": (1 << 62, 1), "packed4": (1 << 62, 4), "blas": (0, 0)}


@pytest.fixture(params=ISAS)
def isa(request):
    before = _engine.isa()
    _engine._set_isa(request.param)
    yield request.param
    _engine._set_isa(before)


@pytest.fixture(params=list(RECURRENT))
def recurrent(request, monkeypatch):
    max_bytes, max_rows = RECURRENT[request.param]
    monkeypatch.setattr(_engine, "_PACKED_MAX_BYTES", max_bytes)
    monkeypatch.setattr(_engine, "_PACKED_MAX_ROWS", max_rows)
    return request.param


@pytest.fixture(params=[1, 2])
def threads(request):
    """1 or 2 engine threads; with 2 the directions of a bidirectional layer run at once however small."""
    import fastrnn
    before = fastrnn.get_num_threads()
    old = _engine._set_parallel_min_flops(0)
    fastrnn.set_num_threads(request.param)
    yield request.param
    _engine._set_parallel_min_flops(old)
    fastrnn.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T,B,H,bidirectional", [(1, 1, 17, False), (9, 1, 33, True), (6, 3, 40, False),
                                                 (5, 1, 64, False), (1, 13, 21, False), (4, 7, 16, True)])
def test_path_matches_torch(isa, recurrent, threads, dtype, kind, T, B, H, bidirectional, rng, seed):
    tmod, fmod = make_pair(kind, rng, dtype, input_size=11, hidden_size=H, num_layers=2,
                           bidirectional=bidirectional)
    assert all(layer.recurrent == recurrent.rstrip("14") for layer in fmod._layers)
    x = randn(rng, (T, B, 11), dtype, scale=2.0)
    states = [randn(rng, shape, dtype) for shape in state_shapes(kind, 2, bidirectional, B, H)]
    want_out, want_states = run_torch(tmod, x, states, kind)
    hx = tuple(states) if len(states) == 2 else states[0]
    out, got = fmod(x, hx)
    got_states = list(got) if isinstance(got, tuple) else [got]
    where = f"isa={isa} recurrent={recurrent} threads={threads} {kind} T={T} B={B} H={H}"
    assert_close(out, want_out, dtype, where + " out", seed)
    for g, w in zip(got_states, want_states):
        assert_close(g, w, dtype, where + " state", seed)


@pytest.mark.parametrize("kind", KINDS)
def test_path_with_lengths_matches_torch(isa, recurrent, threads, kind, rng, seed):
    """Active rows shrink from 9 to 1 over the sequence, crossing every path's row crossover."""
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
    assert_close(out, want.numpy(), np.float32, f"isa={isa} recurrent={recurrent} threads={threads} {kind} lengths",
                 seed)


def test_paths_propagate_nan_and_saturate(isa, recurrent):
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


@pytest.mark.parametrize("value,expected", [("generic", "generic"), ("", _engine.cpu_isa()), ("avx2", None),
                                            ("bogus", _engine.cpu_isa())])
def test_env_var_selects_isa(value, expected):
    if expected is None:  # avx2: honoured where the CPU has it, else refused with a warning
        expected = "avx2" if _engine.cpu_isa() == "avx2" else "generic"
    env = dict(os.environ, FASTRNN_ISA=value)
    code = "import fastrnn._engine as e; print(e.isa())"
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == expected


def test_set_isa_refuses_unknown():
    with pytest.raises(ValueError):
        _engine._set_isa("avx512")

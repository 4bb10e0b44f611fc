"""Every kernel path the engine can take on this machine, against torch.

Paths: instruction set (generic always; avx2 where the CPU runs it) x recurrent step (the fused packed-panel
kernel or BLAS + gate kernel), for every cell kind, one and several batch rows (a one-row step takes the
fused kernel, more rows take BLAS), one step (the streaming input projection through the panels) and
several, sizes with panel tails. FASTRNN_ISA is checked in a subprocess, since it is read at import.
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
RECURRENT = {"packed": 1 << 62, "blas": 0}  # _PACKED_MAX_BYTES that forces each path


@pytest.fixture(params=ISAS)
def isa(request):
    before = _engine.isa()
    _engine._set_isa(request.param)
    yield request.param
    _engine._set_isa(before)


@pytest.fixture(params=list(RECURRENT))
def recurrent(request, monkeypatch):
    monkeypatch.setattr(_engine, "_PACKED_MAX_BYTES", RECURRENT[request.param])
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T,B,H,bidirectional", [(1, 1, 17, False), (9, 1, 33, True), (6, 3, 40, False),
                                                 (5, 1, 64, False)])
def test_path_matches_torch(isa, recurrent, dtype, kind, T, B, H, bidirectional, rng, seed):
    tmod, fmod = make_pair(kind, rng, dtype, input_size=11, hidden_size=H, num_layers=2,
                           bidirectional=bidirectional)
    assert all(layer.recurrent == recurrent for layer in fmod._layers)
    x = randn(rng, (T, B, 11), dtype, scale=2.0)
    states = [randn(rng, shape, dtype) for shape in state_shapes(kind, 2, bidirectional, B, H)]
    want_out, want_states = run_torch(tmod, x, states, kind)
    hx = tuple(states) if len(states) == 2 else states[0]
    out, got = fmod(x, hx)
    got_states = list(got) if isinstance(got, tuple) else [got]
    where = f"isa={isa} recurrent={recurrent} {kind} T={T} B={B} H={H}"
    assert_close(out, want_out, dtype, where + " out", seed)
    for g, w in zip(got_states, want_states):
        assert_close(g, w, dtype, where + " state", seed)


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

"""The engine's C gate kernels against tests/reference.py, directly: a failure here is in src_c/, not in the
time loop, the BLAS seam or the weight layout. No torch needed."""
from __future__ import annotations

import numpy as np
import pytest

import reference
from conftest import assert_close, randn

from fastrnn import _engine

DTYPES = [np.float32, np.float64]
# (n rows, H): edges, odd sizes (vector tails), one larger.
SIZES = [(1, 1), (1, 7), (3, 1), (5, 17), (2, 33), (4, 130)]


def _saturating(rng, shape, dtype, scale):
    """Gaussian data with some entries pushed deep into saturation (+-30, +-100)."""
    x = rng.standard_normal(shape) * scale
    mask = rng.random(shape) < 0.1
    x[mask] = rng.choice([-100.0, -30.0, 30.0, 100.0], size=int(mask.sum()))
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H", SIZES)
@pytest.mark.parametrize("scale", [1.0, 8.0])
def test_lstm_kernel(dtype, n, H, scale, rng, seed):
    gates = _saturating(rng, (n, 4 * H), dtype, scale)
    c = randn(rng, (n, H), dtype, scale)
    h = randn(rng, (n, H), dtype)  # garbage on entry: the kernel must overwrite it
    want_c, want_h = reference.lstm_gates(gates, c.astype(np.float64))
    gates_before = gates.copy()
    _engine._kernel_lstm_step(gates, c, h)
    assert_close(c, want_c, dtype, f"lstm kernel c n={n} H={H}", seed)
    assert_close(h, want_h, dtype, f"lstm kernel h n={n} H={H}", seed)
    assert np.array_equal(gates, gates_before), "the LSTM kernel must not write its gates"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H", SIZES)
@pytest.mark.parametrize("with_b_hn", [False, True])
def test_gru_kernel(dtype, n, H, with_b_hn, rng, seed):
    gx = _saturating(rng, (n, 3 * H), dtype, 3.0)
    gh = _saturating(rng, (n, 3 * H), dtype, 3.0)
    b_hn = randn(rng, (H,), dtype) if with_b_hn else None
    h = randn(rng, (n, H), dtype)
    want = reference.gru_gates(gx, gh, b_hn, h.astype(np.float64))
    _engine._kernel_gru_step(gx, gh, b_hn, h)
    assert_close(h, want, dtype, f"gru kernel n={n} H={H} b_hn={with_b_hn}", seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H", SIZES)
@pytest.mark.parametrize("relu", [False, True])
def test_rnn_kernel(dtype, n, H, relu, rng, seed):
    pre = _saturating(rng, (n, H), dtype, 4.0)
    h = randn(rng, (n, H), dtype)
    want = reference.rnn_gates(pre, relu)
    _engine._kernel_rnn_step(pre, relu, h)
    assert_close(h, want, dtype, f"rnn kernel relu={relu} n={n} H={H}", seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activation_kernel(dtype, name, rng, seed):
    special = [0.0, -0.0, 1e-30, -1e-30, 9.0, -9.0, 17.0, -17.0, 20.0, -20.0, 40.0, -40.0, 88.0, -88.0, 90.0,
               -90.0, 100.0, -100.0, 700.0, -700.0, 1e30, -1e30, np.inf, -np.inf, np.nan]
    x = np.concatenate([randn(rng, 301, dtype, scale=12.0), np.array(special, dtype=dtype)]).astype(dtype)
    want = getattr(reference, name)(x)
    got = x.copy()
    _engine._kernel_activation(name, got)
    assert_close(got, want, dtype, f"{name} kernel", seed)
    finite = ~np.isnan(x)
    lo, hi = (0.0, 1.0) if name == "sigmoid" else (-1.0, 1.0)
    assert np.all((got[finite] >= lo) & (got[finite] <= hi)), f"{name} left [{lo}, {hi}] (seed={seed})"
    # Saturation is exact: torch's values at +-inf.
    ends = np.array([-np.inf, np.inf], dtype=dtype)
    _engine._kernel_activation(name, ends)
    assert ends.tolist() == ([0.0, 1.0] if name == "sigmoid" else [-1.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_kernel_2d_and_empty(dtype, rng, seed):
    x = randn(rng, (7, 5), dtype, scale=3.0)
    got = x.copy()
    _engine._kernel_activation("tanh", got)
    assert_close(got, np.tanh(x.astype(np.float64)), dtype, "tanh 2-D", seed)
    empty = np.empty(0, dtype=dtype)
    _engine._kernel_activation("sigmoid", empty)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_propagate_nan(dtype, rng):
    H = 5
    gates = randn(rng, (2, 4 * H), dtype)
    gates[0, 2 * H + 1] = np.nan  # g of row 0, unit 1
    c, h = randn(rng, (2, H), dtype), np.zeros((2, H), dtype)
    _engine._kernel_lstm_step(gates, c, h)
    assert np.isnan(c[0, 1]) and np.isnan(h[0, 1])
    assert np.isfinite(c[1]).all() and np.isfinite(h[1]).all() and np.isfinite(np.delete(h[0], 1)).all()

    pre = randn(rng, (1, H), dtype)
    pre[0, 3] = np.nan
    for relu in (False, True):
        out = np.zeros((1, H), dtype)
        _engine._kernel_rnn_step(pre, relu, out)
        assert np.isnan(out[0, 3]) and np.isfinite(np.delete(out[0], 3)).all(), f"relu={relu}"

    gx, gh, hh = randn(rng, (1, 3 * H), dtype), randn(rng, (1, 3 * H), dtype), randn(rng, (1, H), dtype)
    gh[0, 2 * H] = np.nan  # W_hn h of unit 0
    _engine._kernel_gru_step(gx, gh, None, hh)
    assert np.isnan(hh[0, 0]) and np.isfinite(hh[0, 1:]).all()


def test_kernel_entry_points_reject_bad_buffers():
    """The test entry points check buffers, so a wrong call raises instead of reading out of bounds."""
    c = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError):
        _engine._kernel_lstm_step(np.zeros((2, 11), np.float32), c, np.zeros((2, 3), np.float32))  # needs 2x12
    with pytest.raises((TypeError, ValueError), match="dtype|signature"):  # mixed float32/float64
        _engine._kernel_lstm_step(np.zeros((2, 12), np.float32), c.astype(np.float64), np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError):
        _engine._kernel_rnn_step(np.zeros((2, 3), np.int32), False, np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError):
        _engine._kernel_gru_step(np.zeros((2, 9)), np.zeros((2, 9)), np.zeros(2), np.zeros((2, 3)))  # b_hn too short
    with pytest.raises(ValueError):
        _engine._kernel_activation("relu6", np.zeros(3))

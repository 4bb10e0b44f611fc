"""The engine's C kernels against tests/reference.py, directly: the fused recurrent steps (dot products with packed
weights and the gate math), the dense kernel, the activations. A failure here is in src_c/, not in the time loop or
the weight layout. Every tier the CPU runs (the `isa` fixture); no torch needed."""
from __future__ import annotations

import numpy as np
import pytest

import reference
from conftest import assert_close, randn

import fastrnn
from fastrnn import _engine
from fastrnn.activations import ACTIVATIONS as ACTIVATION_DEFAULTS

DTYPES = [np.float32, np.float64]
# (n rows, H, K): one row (the streaming kernel), register blocks of every height, more rows than the kernel holds
# at once (48), unit tails (H not a multiple of a panel), K over several chunks (chunks of 64 k for LSTM).
SIZES = [(1, 1, 3), (1, 37, 70), (2, 17, 5), (3, 16, 16), (5, 33, 9), (7, 20, 130), (13, 40, 64), (50, 19, 21),
         (64, 8, 300)]


def _saturating(rng, shape, dtype, scale):
    """Gaussian data with some entries pushed deep into saturation (+-30, +-100)."""
    x = rng.standard_normal(shape) * scale
    mask = rng.random(shape) < 0.1
    x[mask] = rng.choice([-100.0, -30.0, 30.0, 100.0], size=int(mask.sum()))
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H,K", SIZES)
def test_lstm_step_kernel(isa, dtype, n, H, K, rng, seed):
    w = randn(rng, (4 * H, K), dtype, scale=1 / np.sqrt(K))
    v = randn(rng, (n, K), dtype)
    gates = _saturating(rng, (n, 4 * H), dtype, 2.0)
    c = randn(rng, (n, H), dtype, scale=3.0)
    pre = gates.astype(np.float64) + v.astype(np.float64) @ w.astype(np.float64).T
    want_c, want_h = reference.lstm_gates(pre, c.astype(np.float64))
    h = _engine._kernel_lstm_rec(w, v, gates, c)
    where = f"lstm isa={isa} n={n} H={H} K={K}"
    assert_close(c, want_c, dtype, where + " c", seed)
    assert_close(h, want_h, dtype, where + " h", seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H", [(1, 1), (1, 7), (3, 1), (5, 17), (2, 33), (4, 130)])
@pytest.mark.parametrize("scale", [1.0, 8.0])
def test_lstm_gate_math_alone(dtype, n, H, scale, rng, seed):
    """K = 0: the fused kernel is the gate math on its pre-activations, deep saturation included."""
    gates = _saturating(rng, (n, 4 * H), dtype, scale)
    c = randn(rng, (n, H), dtype, scale)
    want_c, want_h = reference.lstm_gates(gates, c.astype(np.float64))
    gates_before = gates.copy()
    h = _engine._kernel_lstm_rec(np.zeros((4 * H, 0), dtype), np.zeros((n, 0), dtype), gates, c)
    assert_close(c, want_c, dtype, f"lstm gates c n={n} H={H}", seed)
    assert_close(h, want_h, dtype, f"lstm gates h n={n} H={H}", seed)
    assert np.array_equal(gates, gates_before), "the LSTM kernel must not write its gates"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H,K", SIZES)
@pytest.mark.parametrize("with_b_hn", [False, True])
def test_gru_step_kernel(isa, dtype, n, H, K, with_b_hn, rng, seed):
    w = randn(rng, (3 * H, H), dtype, scale=2 / np.sqrt(H))
    h_prev = randn(rng, (n, H), dtype)
    gx = _saturating(rng, (n, 3 * H), dtype, 3.0)
    b_hn = randn(rng, (H,), dtype) if with_b_hn else None
    gh = h_prev.astype(np.float64) @ w.astype(np.float64).T
    want = reference.gru_gates(gx, gh, b_hn, h_prev.astype(np.float64))
    got = _engine._kernel_gru_rec(w, h_prev, gx, b_hn)
    assert_close(got, want, dtype, f"gru isa={isa} n={n} H={H} b_hn={with_b_hn}", seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H,K", SIZES)
@pytest.mark.parametrize("G", [1, 3, 4])
@pytest.mark.parametrize("act", ["identity", "tanh", "relu"])
@pytest.mark.parametrize("pre_rows", [None, 1, "n"])
def test_dense_kernel(isa, dtype, n, H, K, G, act, pre_rows, rng, seed):
    w = randn(rng, (G * H, K), dtype, scale=1 / np.sqrt(K))
    v = randn(rng, (n, K), dtype)
    pre = None if pre_rows is None else randn(rng, (n if pre_rows == "n" else 1, G * H), dtype)
    want = v.astype(np.float64) @ w.astype(np.float64).T + (0 if pre is None else pre.astype(np.float64))
    want = reference.activation(act)(want)
    got = _engine._kernel_dense(w, G, v, pre, (act, 0.0, 0.0))
    assert_close(got, want, dtype, f"dense isa={isa} G={G} n={n} H={H} K={K} act={act} pre={pre_rows}", seed)


# Every activation with ONNX's default parameters and with others; `step` and the thresholds at their edges.
ACTIVATIONS = [(name, *ACTIVATION_DEFAULTS[name]) for name in ACTIVATION_DEFAULTS] + [
    ("affine", -0.7, 0.3), ("leaky_relu", 0.2, 0.0), ("thresholded_relu", -0.5, 0.0), ("scaled_tanh", 1.7, 0.6),
    ("hard_sigmoid", 1 / 6, 0.5), ("elu", 0.3, 0.0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: f"{a[0]}({a[1]:g},{a[2]:g})")
@pytest.mark.parametrize("clip", [0.0, 2.5])
def test_every_activation(isa, dtype, act, clip, rng, seed):
    """Each activation (and the clip before it) on saturating, tiny and edge values, NaN kept; K = 0, so the
    kernel's output is the activation of its pre-activations alone."""
    edges = [0.0, -0.0, act[1], -act[1], 1e-30, -1e-30, 1e-6, -1e-6, 3.0, -3.0, 30.0, -30.0, 90.0, -90.0, 1e30,
             -1e30, np.inf, -np.inf, np.nan]
    pre = np.concatenate([_saturating(rng, 180, dtype, 4.0), np.array(edges, dtype=dtype)]).astype(dtype)[None]
    want = reference.activation(*act)(np.clip(pre, -clip, clip) if clip else pre)
    got = _engine._kernel_dense(np.zeros((pre.shape[1], 0), dtype), 1, np.zeros((1, 0), dtype), pre, act, clip)
    assert_close(got, want, dtype, f"{act} clip={clip} isa={isa}", seed)


LSTM_OPTIONS = [dict(), dict(peephole=True), dict(clip=1.5), dict(input_forget=True),
                dict(acts=(("hard_sigmoid", 0.2, 0.5), ("tanh", 0, 0), ("softsign", 0, 0)), peephole=True, clip=3.0),
                dict(acts=(("step", 0, 0), ("identity", 0, 0), ("identity", 0, 0)))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H,K", SIZES[::2])
@pytest.mark.parametrize("options", LSTM_OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_lstm_cell_options(isa, dtype, n, H, K, options, rng, seed):
    acts = tuple((a, 0.0, 0.0) if isinstance(a, str) else (a[0], float(a[1]), float(a[2]))
                 for a in options.get("acts", reference.DEFAULTS["LSTM"]))
    clip, input_forget = options.get("clip", 0.0), options.get("input_forget", False)
    standard = options == {}
    w = randn(rng, (4 * H, K), dtype, scale=1 / np.sqrt(K))
    v, gates = randn(rng, (n, K), dtype), _saturating(rng, (n, 4 * H), dtype, 2.0)
    c = randn(rng, (n, H), dtype, scale=3.0)
    peep = randn(rng, (3 * H,), dtype) if options.get("peephole") else None
    pre = gates.astype(np.float64) + v.astype(np.float64) @ w.astype(np.float64).T
    want_c, want_h = reference.lstm_gates(pre, c.astype(np.float64), acts, clip or None, peep, input_forget)
    h = _engine._kernel_lstm_rec(w, v, gates, c, (*acts, clip, input_forget, standard), peep)
    where = f"lstm {options} isa={isa} n={n} H={H} K={K}"
    assert_close(c, want_c, dtype, where + " c", seed)
    assert_close(h, want_h, dtype, where + " h", seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,H,K", SIZES[::2])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("acts,clip", [(("sigmoid", "tanh"), 0.0), (("hard_sigmoid", "elu"), 0.0),
                                       (("sigmoid", "tanh"), 1.0)])
def test_gru_cell_options(isa, dtype, n, H, K, reset_after, acts, clip, rng, seed):
    acts = tuple((a, *ACTIVATION_DEFAULTS[a]) for a in acts)
    standard = acts[0][0] == "sigmoid" and acts[1][0] == "tanh" and not clip
    w = randn(rng, (3 * H, H), dtype, scale=2 / np.sqrt(H))
    h_prev, gx = randn(rng, (n, H), dtype), _saturating(rng, (n, 3 * H), dtype, 3.0)
    cell = (*acts, acts[1], clip, False, standard)
    got = _engine._kernel_gru_rec(w, h_prev, gx, None, cell, reset_after)
    h64 = h_prev.astype(np.float64)
    if reset_after:
        want = reference.gru_gates(gx, h64 @ w.astype(np.float64).T, None, h64, acts, clip or None)
    else:
        want = reference.gru_gates_reset_before(gx, w, h64, acts, clip or None)
    assert_close(got, want, dtype, f"gru reset_after={reset_after} {acts} clip={clip} isa={isa} n={n} H={H}", seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_activation_kernel(isa, dtype, name, rng, seed):
    special = [0.0, -0.0, 1e-30, -1e-30, 9.0, -9.0, 17.0, -17.0, 20.0, -20.0, 40.0, -40.0, 88.0, -88.0, 90.0,
               -90.0, 100.0, -100.0, 700.0, -700.0, 1e30, -1e30, np.inf, -np.inf, np.nan]
    x = np.concatenate([randn(rng, 301, dtype, scale=12.0), np.array(special, dtype=dtype)]).astype(dtype)
    want = getattr(reference, name)(x)
    got = x.copy()
    _engine._kernel_activation(name, got)
    assert_close(got, want, dtype, f"{name} kernel isa={isa}", seed)
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
def test_kernels_propagate_nan(isa, dtype, rng):
    H, K = 21, 6
    gates = randn(rng, (2, 4 * H), dtype)
    gates[0, 2 * H + 1] = np.nan  # g of row 0, unit 1
    c = randn(rng, (2, H), dtype)
    h = _engine._kernel_lstm_rec(randn(rng, (4 * H, K), dtype), randn(rng, (2, K), dtype), gates, c)
    assert np.isnan(c[0, 1]) and np.isnan(h[0, 1])
    assert np.isfinite(c[1]).all() and np.isfinite(h[1]).all() and np.isfinite(np.delete(h[0], 1)).all()

    v = randn(rng, (1, K), dtype)
    v[0, 3] = np.nan  # poisons every unit of that row
    for act in ACTIVATIONS:
        out = _engine._kernel_dense(randn(rng, (H, K), dtype), 1, v, None, act)
        assert np.isnan(out).all(), act

    h_prev = randn(rng, (2, H), dtype)
    gx = randn(rng, (2, 3 * H), dtype)
    gx[1, 2 * H] = np.nan  # the candidate of row 1, unit 0
    got = _engine._kernel_gru_rec(randn(rng, (3 * H, H), dtype), h_prev, gx, None)
    assert np.isnan(got[1, 0]) and np.isfinite(got[1, 1:]).all() and np.isfinite(got[0]).all()


def test_kernel_entry_points_reject_bad_buffers():
    """The test entry points check shapes and dtypes, so a wrong call raises instead of reading out of bounds."""
    f32 = np.float32
    with pytest.raises(ValueError):
        _engine._kernel_lstm_rec(np.zeros((11, 2), f32), np.zeros((2, 2), f32), np.zeros((2, 12), f32),
                                 np.zeros((2, 3), f32))  # w needs 12 rows
    with pytest.raises((TypeError, ValueError), match="dtype|signature"):  # mixed float32/float64
        _engine._kernel_lstm_rec(np.zeros((12, 2), f32), np.zeros((2, 2)), np.zeros((2, 12), f32),
                                 np.zeros((2, 3), f32))
    with pytest.raises((TypeError, ValueError)):
        _engine._kernel_dense(np.zeros((3, 2), np.int32), 1, np.zeros((1, 2), np.int32), None, ("tanh", 0, 0))
    with pytest.raises(ValueError):
        _engine._kernel_gru_rec(np.zeros((9, 3)), np.zeros((2, 3)), np.zeros((2, 9)), np.zeros(2))  # b_hn too short
    with pytest.raises(ValueError):
        _engine._kernel_activation("relu6", np.zeros(3))


@pytest.mark.parametrize("fmt", ["float", "bfloat16", "int8"])
@pytest.mark.parametrize("H,K", [(1, 1), (64, 64), (256, 256), (300, 17)])
def test_panels_start_on_a_cache_line(fmt, H, K, rng):
    """The kernels load the panels 64 bytes at a time: each load must be one cache line, not two (numpy's large
    arrays start 16 bytes into a page; misaligned panels cost LSTM 256 B=1 a third of its time), in every format,
    for a packed matrix alone and for every matrix of a module."""
    packed = _engine.pack(4, H, K, randn(rng, (4 * H, K), np.float32), fmt)
    assert packed.panels.ctypes.data % 64 == 0, f"{fmt} H={H} K={K}: panels at {packed.panels.ctypes.data:#x}"
    precision = {"float": "float32"}.get(fmt, fmt)
    module = fastrnn.LSTM(K, H, num_layers=2, bidirectional=True, proj_size=H // 2, precision=precision)
    for layer in module._layers:
        for direction in layer.panels:
            for name, matrix in direction.items():
                assert matrix.panels.ctypes.data % 64 == 0, f"{fmt} {name}: panels at {matrix.panels.ctypes.data:#x}"


@pytest.mark.parametrize("fmt", ["float", "bfloat16"])
def test_large_panels_start_on_a_huge_page(fmt, rng):
    """A matrix of 2 MB or more is streamed from L3 every step: its panels start on a 2 MB boundary so that whole
    huge pages cover them (frnn_advise_huge_pages; fewer TLB misses), and the array is exactly the packed size."""
    H = K = 512 if fmt == "float" else 768  # 4 MB of float panels, 4.5 MB of bf16
    packed = _engine.pack(4, H, K, randn(rng, (4 * H, K), np.float32), fmt)
    assert packed.panels.nbytes >= 2 << 20
    assert packed.panels.ctypes.data % (2 << 20) == 0, f"{fmt}: panels at {packed.panels.ctypes.data:#x}"
    small = _engine.pack(4, 64, 64, randn(rng, (256, 64), np.float32), fmt)
    assert small.panels.ctypes.data % 64 == 0 and small.panels.nbytes < 2 << 20

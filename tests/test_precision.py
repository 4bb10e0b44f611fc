"""precision='bfloat16' and 'int8' (README "Precision"), checked three ways:

1. The roundings themselves: the engine's conversion of activations against tests/reference.py's round_bf16 and
   quantize_rows, bit for bit, specials included (ties, NaN, infinities, zero rows, subnormals).
2. The kernels on every tier this CPU runs, and one step of every kind of module, against the oracle that rounds
   every product's operands as the README states, at float32 tolerance: a kernel bug cannot hide inside the
   rounding error. (Whole sequences are not compared this way: a state that differs from the oracle's float64 by
   float32 noise can round the other way at any later step, and the recurrence carries that on.)
3. Whole sequences of every kind and option against torch float32 within the stated budget, and the engine's paths
   (blocks, threads, layouts, lengths, streams) against each other: bit for bit where the arithmetic is the same.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastrnn
import reference
from conftest import KINDS, assert_close, make_module, randn, state_shapes, tuned

from fastrnn import _engine

PRECISIONS = ["bfloat16", "int8"]
# Max abs error vs torch float32, relative to max(1, |torch|), that the tests hold every kind and option to (test
# weights up to +-1.5/sqrt(H), inputs N(0, 1), up to 25 steps; README "Precision" has the measured figures).
BUDGET = {"bfloat16": 4e-2, "int8": 1e-1}


def assert_within_budget(got, want, precision, what, seed):
    want = np.asarray(want, dtype=np.float64)
    err = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want))) if want.size else 0.0
    bound = BUDGET[precision] * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    assert err <= bound, f"{what} {precision}: max|err| vs float32 = {err:.3e} > budget {bound:.3e} (seed={seed})"


# ---- 1. the roundings ------------------------------------------------------------------------------------------

def _specials():
    """float32 values at every edge of bf16 rounding: exact ties (odd and even), just off them, NaN, infinities,
    zeros, subnormals, the largest float (which rounds up to infinity)."""
    bits = [0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0xBF808000, 0x7FC00000, 0x7F800001, 0xFF800000,
            0x7F800000, 0x00000000, 0x80000000, 0x00000001, 0x00008000, 0x007FFFFF, 0x7F7FFFFF, 0x3F7FFFFF]
    return np.array(bits, dtype=np.uint32).view(np.float32)


def test_bf16_conversion_is_round_to_nearest_even(isa, rng):
    # every tier converts with its own vectors (src_c/convert.h); each must match the definition bit for bit
    x = np.concatenate([_specials(), rng.standard_normal(301) * 10.0 ** rng.integers(-30, 30, 301)])
    x = np.ascontiguousarray(np.stack([x, x[::-1], x[5:].tolist() + [1.0] * 5]).astype(np.float32))
    got, scale = _engine._convert("bfloat16", x)
    want = reference.round_bf16(x)
    assert scale is None
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    assert np.array_equal(got[finite].astype(np.float64), want[finite])
    # ties go to the even neighbour: 1 + 2^-8 (tie between 1 and 1 + 2^-7) -> 1
    assert got[0, 0] == 1.0 and got[0, 1] == np.float32(1 + 2 ** -6)


@pytest.mark.parametrize("K", [1, 3, 4, 37, 256, 301])
def test_int8_conversion_is_symmetric_per_row(isa, K, rng):
    rows = [rng.standard_normal(K), np.zeros(K), rng.standard_normal(K) * 1e-42, rng.standard_normal(K) * 1e30,
            np.full(K, -2.5), rng.integers(-3, 4, K) * 0.5]
    nan_row, inf_row = rng.standard_normal(K), rng.standard_normal(K)
    nan_row[K // 2], inf_row[0] = np.nan, -np.inf
    x = np.ascontiguousarray(np.stack(rows + [nan_row, inf_row]).astype(np.float32))
    q, scale = _engine._convert("int8", x)
    want_q, want_scale = reference.quantize_rows(x)
    assert np.array_equal(q, want_q), f"K={K}: q differs in rows {np.unique(np.argwhere(q != want_q)[:, 0])}"
    assert np.array_equal(scale, want_scale, equal_nan=True)
    assert np.all(np.abs(q) <= 127) and np.all(q[1] == 0)
    assert np.isnan(scale[-1]) and np.isnan(scale[-2]), "a row with NaN or inf must make its products NaN"
    assert np.max(np.abs(q[0])) == 127, "the largest value of a row maps to +-127"


# ---- 2. kernels and single steps against the rounding oracle, at float32 tolerance ------------------------------

SIZES = [(1, 1, 3), (1, 37, 70), (2, 17, 5), (3, 16, 16), (5, 33, 9), (13, 40, 64), (50, 19, 21), (64, 8, 300)]


def _w(rng, shape):
    return randn(rng, shape, np.float32, scale=1 / np.sqrt(shape[1] or 1))


@pytest.fixture(params=["dot", "widened"])
def bf16_products(request):
    """Both ways a bf16 product of two or more rows can run on a tier with VDPBF16PS (the tuning field widen_bf16,
    chosen by the CPU's vendor by default; src_c/products.h); the tiers without it always widen."""
    with tuned(widen_bf16=request.param == "widened"):
        yield request.param


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("n,H,K", SIZES)
def test_lstm_kernel(isa, bf16_products, precision, n, H, K, rng, seed):
    w, v = _w(rng, (4 * H, K)), randn(rng, (n, K))
    gates, c = randn(rng, (n, 4 * H), scale=2.0), randn(rng, (n, H), scale=2.0)
    want_c, want_h = reference.lstm_gates(gates + reference.product(v, w, precision), c.astype(np.float64))
    h = _engine._kernel_lstm_rec(w, v, gates, c, format=precision)
    assert_close(c, want_c, np.float32, f"lstm {precision} isa={isa} n={n} H={H} K={K} c", seed)
    assert_close(h, want_h, np.float32, f"lstm {precision} isa={isa} n={n} H={H} K={K} h", seed)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_step_rows_the_same_bits_whatever_the_row_count(isa, bf16_products, precision, rng, seed):
    """A row's new c and h do not depend on how many rows from 4 on share the step (the products of 1-3 rows may
    take another instruction path, the same for every path of a call): on the amx tier a step of 4..15 rows sizes
    its tiles to n rows, from 16 on they are full, and a row's sums are the same."""
    H, K = 40, 64
    w, v = _w(rng, (4 * H, K)), randn(rng, (40, K))
    gates, c = randn(rng, (40, 4 * H), scale=2.0), randn(rng, (40, H), scale=2.0)
    c_all = c.copy()
    h_all = _engine._kernel_lstm_rec(w, v, gates, c_all, format=precision)
    for n in (4, 5, 8, 13, 16, 17, 33):
        c_n = c[:n].copy()
        h_n = _engine._kernel_lstm_rec(w, np.ascontiguousarray(v[:n]), np.ascontiguousarray(gates[:n]), c_n,
                                       format=precision)
        assert np.array_equal(h_n, h_all[:n]) and np.array_equal(c_n, c_all[:n]), \
            f"{precision} isa={isa}: rows of a {n}-row step differ from the same rows of a 40-row step (seed={seed})"


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("n,H,K", SIZES)
def test_gru_kernels(isa, bf16_products, precision, n, H, K, rng, seed):
    """Both GRUs: linear before reset (one kernel), and the reset before W_hn (two phases, each from given rows)."""
    where = f"gru {precision} isa={isa} n={n} H={H}"
    w, h_prev, gx, b_hn = _w(rng, (3 * H, H)), randn(rng, (n, H)), randn(rng, (n, 3 * H), scale=2.0), randn(rng, H)
    want = reference.gru_gates(gx, reference.product(h_prev, w, precision), b_hn, h_prev.astype(np.float64))
    assert_close(_engine._kernel_gru_rec(w, h_prev, gx, b_hn, format=precision), want, np.float32, where, seed)

    z, rh = _engine._kernel_gru_rz(np.ascontiguousarray(w[:2 * H]), h_prev, gx, format=precision)
    pre = gx[:, :2 * H] + reference.product(h_prev, w[:2 * H], precision)
    r_want, z_want = np.split(reference.sigmoid(pre), 2, axis=1)
    assert_close(z, z_want, np.float32, where + " z", seed)
    assert_close(rh, r_want * h_prev, np.float32, where + " r*h", seed)
    h = _engine._kernel_gru_n(np.ascontiguousarray(w[2 * H:]), rh, gx, z, h_prev, format=precision)
    cand = reference.tanh(gx[:, 2 * H:] + reference.product(rh, w[2 * H:], precision))
    assert_close(h, (1 - z.astype(np.float64)) * cand + z * h_prev.astype(np.float64), np.float32, where + " h", seed)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("n,H,K", SIZES)
@pytest.mark.parametrize("G,act", [(1, "identity"), (1, "tanh"), (3, "relu"), (4, "identity")])
def test_dense_kernel(isa, bf16_products, precision, n, H, K, G, act, rng, seed):
    w, v, pre = _w(rng, (G * H, K)), randn(rng, (n, K)), randn(rng, (1, G * H))
    want = reference.activation(act)(pre + reference.product(v, w, precision))
    got = _engine._kernel_dense(w, G, v, pre, (act, 0.0, 0.0), format=precision)
    assert_close(got, want, np.float32, f"dense {precision} isa={isa} G={G} n={n} H={H} K={K}", seed)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 100])
@pytest.mark.parametrize("G,H,K", [(4, 48, 70), (3, 33, 40), (1, 16, 1), (4, 7, 300)])
@pytest.mark.parametrize("bias", [True, False])
def test_projection_kernel(isa, bf16_products, precision, n, G, H, K, bias, rng, seed):
    """The input projection's call: no activation, a bias or none. On the amx tier its bf16 tiles start as the
    bias and are stored straight into the output, a tile with rows past n or units past H through a buffer (16 and
    17 rows, 33 and 100: whole and partial tiles; H = 48, 33, 7: whole and partial panels); against the oracle at
    float32 tolerance, and each row's values the same when fewer rows are in the call (a block's row count must not
    change a row's sums)."""
    w, v = _w(rng, (G * H, K)), randn(rng, (n, K))
    pre = randn(rng, (1, G * H)) if bias else None
    want = (pre if bias else 0.0) + reference.product(v, w, precision)
    got = _engine._kernel_dense(w, G, v, pre, None, format=precision)
    where = f"projection {precision} isa={isa} G={G} n={n} H={H} K={K} bias={bias}"
    assert_close(got, want, np.float32, where, seed)
    m = n // 2 + 1
    if m >= 2:  # one row takes another summation order on the tiers without tiles (panel_dot)
        fewer = _engine._kernel_dense(w, G, np.ascontiguousarray(v[:m]), pre, None, format=precision)
        assert np.array_equal(fewer, got[:m]), f"{where}: rows changed with {m} rows in the call (seed={seed})"


@pytest.mark.parametrize("n,K", [(2, 5), (7, 64), (50, 301)])
def test_widened_bf16_products_sum_as_the_dot_instruction(isa, n, K, rng, seed):
    """Widening a bf16 panel to float32 FMAs adds each pair's products in VDPBF16PS's order (the odd k, then the
    even one; each product exact), so on a tier with the instruction both ways give the same bits."""
    w, v, pre = _w(rng, (4 * 40, K)), randn(rng, (n, K)), randn(rng, (1, 4 * 40))
    with tuned(widen_bf16=0):
        dot = _engine._kernel_dense(w, 4, v, pre, ("identity", 0.0, 0.0), format="bfloat16")
    with tuned(widen_bf16=1):
        widened = _engine._kernel_dense(w, 4, v, pre, ("identity", 0.0, 0.0), format="bfloat16")
    assert np.array_equal(dot, widened), f"isa={isa} n={n} K={K} (seed={seed})"


@pytest.mark.parametrize("n,H,K", [(2, 16, 5), (3, 40, 64), (8, 256, 256), (17, 33, 301), (64, 8, 300)])
def test_widened_copy_of_small_bf16_matrices_gives_the_same_bits(isa, bf16_products, n, H, K, rng, seed):
    """A small bf16 matrix keeps its panels widened to float32 from packing (FRNN_WIDE_COPY_BYTES), which the
    products of 2+ rows read on the tiers that widen instead of widening each chunk at every step: the same values
    in the same order, so the same bits as without the copy, in the fused LSTM step and the dense kernel."""
    w, v = _w(rng, (4 * H, K)), randn(rng, (n, K))
    gates, c = randn(rng, (n, 4 * H), scale=2.0), randn(rng, (n, H), scale=2.0)
    assert _engine.pack(4, H, K, w, "bfloat16").wide is not None
    assert _engine.pack(4, H, K, w, "bfloat16", widen=False).wide is None
    c_copy, c_chunks = c.copy(), c.copy()
    h_copy = _engine._kernel_lstm_rec(w, v, gates, c_copy, format="bfloat16")
    h_chunks = _engine._kernel_lstm_rec(w, v, gates, c_chunks, format="bfloat16", widen=False)
    where = f"isa={isa} {bf16_products} n={n} H={H} K={K} (seed={seed})"
    assert np.array_equal(h_copy, h_chunks) and np.array_equal(c_copy, c_chunks), where
    pre = randn(rng, (1, 4 * H))
    dense = [_engine._kernel_dense(w, 4, v, pre, ("identity", 0.0, 0.0), format="bfloat16", widen=widen)
             for widen in (True, False)]
    assert np.array_equal(*dense), where


def test_wide_copy_only_for_small_bf16_matrices(rng):
    """The widened copy costs twice the bf16 panels: only matrices whose copy fits FRNN_WIDE_COPY_BYTES (1 MB) get
    one, never float or int8 matrices; a module's nbytes counts it."""
    small = _engine.pack(4, 256, 256, _w(rng, (1024, 256)), "bfloat16")    # 512 KB of panels -> a 1 MB copy
    large = _engine.pack(4, 256, 288, _w(rng, (1024, 288)), "bfloat16")    # 576 KB -> none
    assert small.wide is not None and small.wide.nbytes == 2 * small.panels.nbytes
    assert small.nbytes == 3 * small.panels.nbytes
    assert large.wide is None and large.nbytes == large.panels.nbytes
    for fmt in ("float", "int8"):
        assert _engine.pack(4, 16, 16, _w(rng, (64, 16)), fmt).wide is None


def test_kernels_keep_nan_and_zero_rows(isa, rng):
    """A NaN in a row's activations makes that row's products NaN (never a number), and only that row's; a row of
    zeros gives exactly the bias."""
    w, v, pre = _w(rng, (16, 9)), randn(rng, (3, 9)), randn(rng, (1, 16))
    v[1] = 0.0
    v[2, 4] = np.nan
    for precision in PRECISIONS:
        got = _engine._kernel_dense(w, 1, v, pre, ("identity", 0.0, 0.0), format=precision)
        assert np.all(np.isfinite(got[:2])) and np.all(np.isnan(got[2])), precision
        assert np.array_equal(got[1], pre[0]), precision


STEP_CASES = {
    "rnn_tanh": ("RNN", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}), "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {"proj_size": 7}), "lstm_peep_clip": ("LSTM", {"peepholes": True, "clip": 1.5}),
    "lstm_coupled_acts": ("LSTM", {"input_forget": True, "activations": ["hard_sigmoid", "softsign", "elu"]}),
    "gru": ("GRU", {}), "gru_reset_before": ("GRU", {"linear_before_reset": False}),
}


def _random_module(kind, options, precision, rng, I, H, **more):
    module = getattr(fastrnn, kind)(I, H, precision=precision, **options, **more)
    scale = 1.5 / np.sqrt(H)
    module.load_state_dict({name: rng.uniform(-scale, scale, value.shape).astype(np.float32)
                            for name, value in module.named_parameters()})
    return module


def _ambiguous_rows(values, precision):
    """Rows of values an engine computes itself (in float32) before a product rounds them, where float32 noise
    could decide the rounding: within 2^-19 (relative) of a bf16 tie, or of an int8 half-step."""
    values = np.asarray(values, dtype=np.float64)
    if precision == "bfloat16":
        step = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(values), 1e-38))) - 7)
        frac = np.abs(values) / step
    else:
        top = np.max(np.abs(values), axis=-1, keepdims=True)
        frac = np.abs(values) * 127 / np.where(top > 0, top, 1)
    return np.any(np.abs(frac - np.floor(frac) - 0.5) < 2.0 ** -19 * np.maximum(frac, 1), axis=-1)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", STEP_CASES)
@pytest.mark.parametrize("B", [1, 5])
def test_one_step_of_each_kind_matches_rounding_oracle(isa, precision, case, B, rng, seed):
    """One step from a random float32 state: every operand a product rounds is either the caller's (x, h) or, for
    a projection and the GRU with the reset before W_hn, computed in the step; rows where float32 noise could
    round those the other way are held to the budget, the rest to float32 tolerance."""
    kind, options = STEP_CASES[case]
    I, H = 11, 24
    module = _random_module(kind, options, precision, rng, I, H)
    P = options.get("proj_size", H)
    x, h0, c0 = randn(rng, (1, B, I)), randn(rng, (1, B, P), scale=0.7), randn(rng, (1, B, H))
    out, state = module(x, (h0, c0) if kind == "LSTM" else h0)
    params = {f"{k}": v for k, v in module.state_dict().items()}
    cfg = module.config
    want_out, _ = reference.forward(kind, params, x, (h0, c0) if kind == "LSTM" else h0, nonlinearity=cfg.nonlinearity,
                                    activations=cfg.gate_activations, clip=cfg.clip, input_forget=cfg.input_forget,
                                    linear_before_reset=cfg.linear_before_reset, precision=precision)
    strict = np.ones(B, bool)
    if case in ("lstm_proj", "gru_reset_before"):
        strict = ~_ambiguous_rows(_step_operand(case, params, x[0], h0[0], c0[0], precision), precision)
    where = f"{case} {precision} isa={isa} B={B}"
    assert_close(out[0][strict], want_out[0][strict], np.float32, where, seed)
    assert_within_budget(out, want_out, precision, where, seed)


def _step_operand(case, params, x, h, c, precision):
    """The operand a step computes before its last product, as the oracle computes it: an LSTM's cell output
    before W_hr, a GRU's r * h."""
    w = {name[:-3]: np.asarray(value, np.float64) for name, value in params.items()}
    product = lambda v, m: reference.product(v, m, precision)  # noqa: E731
    if case == "lstm_proj":
        pre = product(x, w["weight_ih"]) + w["bias_ih"] + product(h, w["weight_hh"]) + w["bias_hh"]
        return reference.lstm_gates(pre, c.astype(np.float64))[1]
    H = h.shape[-1]
    gx = product(x, w["weight_ih"]) + w["bias_ih"] + w["bias_hh"]
    r = reference.sigmoid(gx[:, :H] + product(h, w["weight_hh"][:H]))
    return r * h


# ---- 3. whole sequences: budget vs torch, paths vs each other ----------------------------------------------------

def _torch_pair(kind, precision, rng, **options):
    torch = pytest.importorskip("torch",
                                reason="torch float32 is the reference of the budget (pip install torch==2.13.0)")
    float_module = make_module(kind, rng, np.float32, **options)
    module = fastrnn.from_torch(_to_torch(torch, float_module), precision=precision)
    return torch, float_module, module


def _to_torch(torch, module):
    cfg = module.config
    name, kwargs = ("RNN", {"nonlinearity": cfg.nonlinearity}) if cfg.kind == "RNN" else (cfg.kind, {})
    if cfg.proj_size:
        kwargs["proj_size"] = cfg.proj_size
    t = getattr(torch.nn, name)(cfg.input_size, cfg.hidden_size, cfg.num_layers, bias=cfg.bias,
                                batch_first=module.batch_first, bidirectional=cfg.bidirectional, **kwargs)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in module.state_dict().items()})
    return t.eval()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers,bidirectional,batch_first", [(1, False, False), (2, True, True), (3, False, True)])
def test_sequences_within_budget_of_torch(precision, kind, layers, bidirectional, batch_first, rng, seed):
    torch, float_module, module = _torch_pair(kind, precision, rng, input_size=13, hidden_size=29, num_layers=layers,
                                              bidirectional=bidirectional, batch_first=batch_first)
    B, T = 4, 25
    x = randn(rng, (B, T, 13) if batch_first else (T, B, 13))
    lengths = rng.integers(1, T + 1, B)
    for use_lengths in (False, True):
        got, got_state = module(x, lengths=lengths if use_lengths else None)
        want, want_state = float_module(x, lengths=lengths if use_lengths else None)
        where = f"{kind} layers={layers} bi={bidirectional} bf={batch_first} lengths={use_lengths}"
        assert_within_budget(got, want, precision, where, seed)
        for g, w in zip(got_state if kind.startswith("LSTM") else [got_state],
                        want_state if kind.startswith("LSTM") else [want_state]):
            assert_within_budget(g, w, precision, where + " state", seed)
    # and the float module is torch's (the budget's reference is torch float32)
    with torch.no_grad():
        t_out = _to_torch(torch, float_module)(torch.from_numpy(x))[0].numpy()
    assert_close(float_module(x)[0], t_out, np.float32, "float32 module", seed)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_cells_and_streams_within_budget(precision, kind, rng, seed):
    float_module = make_module(kind, rng, np.float32, input_size=7, hidden_size=20, num_layers=2)
    module = float_module.config.build(precision=precision)
    module.load_state_dict(float_module.state_dict())
    x = randn(rng, (30, 2, 7))
    want = float_module(x)[0]
    stream = module.stream(batch_size=2)
    streamed = np.concatenate([stream(x[t:t + 3]) for t in range(0, 30, 3)])
    assert_within_budget(streamed, want, precision, f"{kind} stream", seed)
    assert np.array_equal(streamed, module.stream(batch_size=2)(x)), "a stream must not depend on how it is cut"
    cell_kind = "LSTM" if kind.startswith("LSTM") else "GRU" if kind == "GRU" else "RNN"
    cell = getattr(fastrnn, f"{cell_kind}Cell")(7, 20, precision=precision, **(
        {"nonlinearity": "relu"} if kind == "RNN_RELU" else {}))
    float_cell = getattr(fastrnn, f"{cell_kind}Cell")(7, 20, **({"nonlinearity": "relu"} if kind == "RNN_RELU" else {}))
    float_cell.load_state_dict(cell.state_dict())
    state = randn(rng, (2, 20)) if cell_kind != "LSTM" else (randn(rng, (2, 20)), randn(rng, (2, 20)))
    got, want = cell(x[0], state), float_cell(x[0], state)
    assert_within_budget(np.stack(got) if cell_kind == "LSTM" else got,
                         np.stack(want) if cell_kind == "LSTM" else want, precision, f"{kind} cell", seed)


@pytest.fixture(params=["1_block", "1_block_sweep", "step_blocks_2_split", "2_directions"])
def path(request):
    before = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1 if request.param.startswith("1") else 2)
    split = 0 if request.param == "step_blocks_2_split" else 1e30
    with tuned(block_rows=1, block_bytes=1 if request.param.startswith("step") else 1 << 40, split_min_step_flops=split,
               split_min_call_flops=split, split_chunks=3, sweep_chunks=3,
               sweep_min_bytes=0 if request.param.endswith("sweep") else 1e30,
               parallel_min_flops=0 if request.param == "2_directions" else 1e30):
        yield request.param
    fastrnn.set_num_threads(before)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_paths_agree_bit_for_bit(isa, path, precision, kind, rng, seed):
    """Blocks of input projection, threads and directions at once change which thread computes which unit, never a
    unit's arithmetic: with at least two rows per product (one row takes the one-row kernel), every path gives the
    bits of one thread over one block. Batch-major input, lengths and the final states included."""
    B, T, I, H = 3, 9, 10, 40
    module = _random_module(*(("RNN", {"nonlinearity": "relu"}) if kind == "RNN_RELU" else ("RNN", {})
                              if kind == "RNN_TANH" else ("LSTM", {"proj_size": 13}) if kind == "LSTMP"
                              else (kind, {})), precision, rng, I, H, num_layers=2, bidirectional=True)
    x = randn(rng, (T, B, I))
    lengths = np.array([T, T, T - 3])
    states = [randn(rng, s) for s in state_shapes(kind, 2, True, B, H, 13)]
    hx = tuple(states) if len(states) == 2 else states[0]
    got = module(x, hx, lengths=lengths)
    with tuned(block_bytes=1 << 40, split_min_step_flops=1e30, split_min_call_flops=1e30, parallel_min_flops=1e30,
               sweep_min_bytes=1e30):
        threads = fastrnn.get_num_threads()
        fastrnn.set_num_threads(1)
        want = module(x, hx, lengths=lengths)
        fastrnn.set_num_threads(threads)
    for g, w in zip(_flat(got), _flat(want)):
        assert np.array_equal(g, w), f"{precision} {kind} path={path} isa={isa} (seed={seed})"
    if path == "step_blocks_2_split" and precision == "bfloat16":
        return  # batch-major blocks of one step are one-row products, summed in another order than a block's
    module.batch_first = True
    got_bf = module(np.ascontiguousarray(x.transpose(1, 0, 2)), hx, lengths=lengths)
    assert np.array_equal(got_bf[0].transpose(1, 0, 2), want[0]), f"{precision} {kind} batch_first (seed={seed})"


def _flat(result):
    out, state = result
    return [out] + (list(state) if isinstance(state, tuple) else [state])


# ---- the module's contract ------------------------------------------------------------------------------------

@pytest.mark.parametrize("precision", PRECISIONS)
def test_state_dict_gives_back_the_float_weights(precision, rng, tmp_path):
    module = make_module("LSTMP", rng, np.float32, input_size=5, hidden_size=12, num_layers=2)
    weights = module.state_dict()
    reduced = fastrnn.LSTM(5, 12, 2, proj_size=6, precision=precision)
    reduced.load_state_dict(weights)
    x = randn(rng, (4, 2, 5))
    first = reduced(x)[0]
    for name, value in reduced.state_dict().items():
        assert np.array_equal(value, weights[name]), name
    clone = pickle.loads(pickle.dumps(reduced))
    assert clone.precision == precision and np.array_equal(clone(x)[0], first)
    np.savez(tmp_path / "w.npz", **weights)
    loaded = fastrnn.load(tmp_path / "w.npz", precision=precision)
    assert loaded.precision == precision and np.array_equal(loaded(x)[0], first)
    assert np.array_equal(loaded.state_dict()["weight_hr_l1"], weights["weight_hr_l1"])
    assert f"precision={precision!r}" in repr(reduced)


def test_precision_errors_name_the_problem():
    with pytest.raises(ValueError, match="precision.*'float16'"):
        fastrnn.LSTM(3, 4, precision="float16")
    with pytest.raises(ValueError, match="dtype=float64.*float32"):
        fastrnn.GRU(3, 4, dtype=np.float64, precision="int8")
    with pytest.raises(ValueError, match="callable activations"):
        fastrnn.RNN(3, 4, activations=[np.tanh], precision="bfloat16")
    assert fastrnn.LSTM(3, 4).precision == "float32"
    assert fastrnn.LSTM(3, 4, dtype=np.float64).precision == "float64"
    assert fastrnn.GRUCell(3, 4, precision="int8").precision == "int8"


def test_from_torch_float64_module_in_reduced_precision_computes_float32(rng):
    torch = pytest.importorskip("torch", reason="from_torch needs torch")
    m = torch.nn.GRU(4, 8).double()
    module = fastrnn.from_torch(m, precision="bfloat16")
    assert module.dtype == np.float32 and module.precision == "bfloat16"
    x = randn(rng, (5, 1, 4))
    with torch.no_grad():
        want = m(torch.from_numpy(x.astype(np.float64)))[0].numpy()
    assert_within_budget(module(x)[0], want, "bfloat16", "from_torch float64", None)

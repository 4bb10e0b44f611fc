"""`lengths=`: variable-length batches equal torch's pack_padded_sequence(enforce_sorted=False) -> module ->
pad_packed_sequence(total_length=T), and each row equals that row run alone."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from conftest import (KINDS, assert_close, case_id, make_module, make_pair, pairwise, randn, run_fastrnn, run_torch,
                      state_shapes)

torch = pytest.importorskip("torch")


def draw_lengths(rng, B, T, shape):
    if shape == "distinct_unsorted":
        lengths = rng.permutation(np.linspace(1, T, B).round().astype(int))
    elif shape == "all_full":
        lengths = np.full(B, T)
    elif shape == "all_one":
        lengths = np.ones(B, dtype=int)
    else:  # random, with ties, maybe no row of length T
        lengths = rng.integers(1, T + 1, size=B)
    return lengths


def check_lengths(kind, rng, seed, dtype, T, B, I, H, num_layers, bidirectional, batch_first, states, lengths,
                  bias=True, proj_size=None, label=""):
    if kind == "LSTMP" and proj_size is None:
        H = max(H, 2)
        proj_size = int(rng.integers(1, H))
    tmod, fmod = make_pair(kind, rng, dtype, input_size=I, hidden_size=H, num_layers=num_layers, bias=bias,
                           batch_first=batch_first, bidirectional=bidirectional, proj_size=proj_size)
    x = randn(rng, (B, T, I) if batch_first else (T, B, I), dtype)
    hx = [randn(rng, s, dtype) for s in state_shapes(kind, num_layers, bidirectional, B, H, proj_size)] if states \
        else None
    t_out, t_fin = run_torch(tmod, x, hx, kind, lengths, batch_first)
    out, finals = run_fastrnn(fmod, x, hx, kind, lengths=lengths)
    label = label or f"{kind} lengths={list(lengths)}"
    assert_close(out, t_out, dtype, f"{label} out", seed)
    for name, f, t in zip(("h_n", "c_n"), finals, t_fin):
        assert_close(f, t, dtype, f"{label} {name}", seed)
    # padding reads exactly 0
    steps = np.arange(T)
    pad = steps[None, :] >= np.asarray(lengths)[:, None]  # (B, T)
    out_bt = out if batch_first else out.transpose(1, 0, 2)
    assert np.all(out_bt[pad] == 0), f"{label}: padded outputs are not zero (seed={seed})"
    return fmod, x, hx, out, finals


GRID = pairwise({
    "kind": list(KINDS),
    "num_layers": [1, 2, 3],
    "bidirectional": [False, True],
    "batch_first": [False, True],
    "states": [False, True],
    "bias": [True, False],
    "lengths": ["random", "distinct_unsorted", "all_full", "all_one"],
    "dtype": [np.float32, np.float64],
}, seed=5)


@pytest.mark.parametrize("case", GRID, ids=[case_id(c) for c in GRID])
def test_lengths_match_torch_packed(case, rng, seed):
    case = dict(case)
    T, B, I, H = int(rng.integers(2, 25)), int(rng.integers(1, 9)), int(rng.integers(1, 12)), int(rng.integers(2, 20))
    lengths = draw_lengths(rng, B, T, case.pop("lengths"))
    check_lengths(case.pop("kind"), rng, seed, case.pop("dtype"), T, B, I, H, lengths=lengths, label=str(case),
                  **case)


def test_lengths_long_and_wide(rng, seed):
    """One case with T = 200 and a big batch, one with sizes of a few hundred."""
    check_lengths("LSTM", rng, seed, np.float32, T=200, B=16, I=8, H=24, num_layers=2, bidirectional=True,
                  batch_first=True, states=True, lengths=rng.integers(1, 201, size=16))
    check_lengths("GRU", rng, seed, np.float32, T=9, B=5, I=200, H=260, num_layers=1, bidirectional=True,
                  batch_first=False, states=False, lengths=rng.integers(1, 10, size=5))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), num_layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(), states=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       T=st.integers(1, 30), B=st.integers(1, 12), I=st.integers(1, 16), H=st.integers(1, 24),
       data_seed=st.integers(0, 2**32 - 1))
def test_lengths_random_configs(kind, num_layers, bidirectional, batch_first, states, dtype, T, B, I, H, data_seed):
    rng = np.random.default_rng(data_seed)
    check_lengths(kind, rng, data_seed, dtype, T, B, I, H, num_layers, bidirectional, batch_first, states,
                  rng.integers(1, T + 1, size=B))


@pytest.mark.parametrize("kind", KINDS)
def test_each_row_equals_that_row_run_alone(kind, rng, seed):
    """Row b of a padded batch with lengths equals row b cut to its length and run alone (no torch involved)."""
    T, B = int(rng.integers(5, 20)), int(rng.integers(2, 7))
    fmod = make_module(kind, rng, np.float64, input_size=4, hidden_size=6, num_layers=2, bidirectional=True,
                        batch_first=True)
    x = randn(rng, (B, T, 4), np.float64)
    hx = [randn(rng, s, np.float64) for s in state_shapes(kind, 2, True, B, 6)]
    lengths = rng.integers(1, T + 1, size=B)
    out, finals = run_fastrnn(fmod, x, hx, kind, lengths=lengths)
    for b in range(B):
        n = lengths[b]
        o, f = run_fastrnn(fmod, x[b:b + 1, :n], [s[:, b:b + 1] for s in hx], kind)
        assert_close(out[b:b + 1, :n], o, np.float64, f"row {b} alone (length {n})", seed)
        for g, w in zip(finals, f):
            assert_close(g[:, b:b + 1], w, np.float64, f"row {b} final state", seed)


@pytest.mark.parametrize("form", ["list", "int32", "uint8", "float_integral", "torch", "tuple"])
def test_lengths_accepts_integer_like_forms(form, rng, seed):
    fmod = make_module("GRU", rng, np.float32, input_size=3, hidden_size=4, bidirectional=True)
    x = randn(rng, (6, 3, 3))
    base = np.array([6, 2, 4])
    lengths = {"list": base.tolist(), "int32": base.astype(np.int32), "uint8": base.astype(np.uint8),
               "float_integral": base.astype(np.float64), "torch": torch.tensor(base),
               "tuple": tuple(int(v) for v in base)}[form]
    assert np.array_equal(fmod(x, lengths=lengths)[0], fmod(x, lengths=base.astype(np.int64))[0])


def test_full_lengths_equal_no_lengths(rng, seed):
    for kind in KINDS:
        fmod = make_module(kind, rng, np.float64, input_size=3, hidden_size=5, num_layers=2, bidirectional=True)
        x = randn(rng, (7, 4, 3), np.float64)
        a, fa = run_fastrnn(fmod, x, None, kind)
        b, fb = run_fastrnn(fmod, x, None, kind, lengths=[7] * 4)
        assert_close(b, a, np.float64, f"{kind} full lengths out", seed)
        for g, w in zip(fb, fa):
            assert_close(g, w, np.float64, f"{kind} full lengths state", seed)


@pytest.mark.parametrize("lengths,pattern", [
    ([5], r"lengths.*3 entries.*\(1,\)"),
    ([5, 5, 5, 5], r"lengths.*3 entries.*\(4,\)"),
    ([[5, 5, 5]], r"lengths.*3 entries.*\(1, 3\)"),
    ([5, 0, 3], r"lengths.*\[1, 5\].*\[5, 0, 3\]"),
    ([5, -1, 3], r"lengths.*\[1, 5\]"),
    ([6, 1, 1], r"lengths.*\[1, 5\].*\[6, 1, 1\]"),
    ([5.5, 1, 1], r"lengths.*integers"),
    ([np.nan, 1, 1], r"lengths.*integers"),
    ([np.inf, 1, 1], r"lengths.*integers"),
])
def test_bad_lengths(lengths, pattern):
    m = fastrnn.LSTM(3, 4)
    with pytest.raises(ValueError, match=pattern):
        m(np.ones((5, 3, 3)), lengths=lengths)


@pytest.mark.parametrize("lengths", [["a", "b", "c"], [True, True, False], "555", object()])
def test_non_numeric_lengths(lengths):
    with pytest.raises(TypeError, match="lengths"):
        fastrnn.GRU(3, 4)(np.ones((5, 3, 3)), lengths=lengths)


def test_lengths_with_unbatched_input():
    with pytest.raises(ValueError, match=r"lengths.*unbatched"):
        fastrnn.RNN(3, 4)(np.ones((5, 3)), lengths=[5])


def test_lengths_batch_first_counts_rows_not_steps():
    m = fastrnn.RNN(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"lengths.*2 entries"):
        m(np.ones((2, 5, 3)), lengths=[5, 5, 5, 5, 5])
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        m(np.ones((2, 5, 3)), lengths=[5, 6])

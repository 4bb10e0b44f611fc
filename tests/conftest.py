"""Shared test machinery: the ONE place for tolerances, fresh random seeds, and torch <-> fastrnn pairs.

Seeds: every test that takes the `seed` (or `rng`) fixture draws a fresh seed from os.urandom, and a failing
test prints it (report section "fastrnn seed"). Re-run one failure with that seed:
    FASTRNN_TEST_SEED=<seed> python -m pytest -q tests/test_parity.py::test_name
"""
from __future__ import annotations

import contextlib
import itertools
import os

import numpy as np
import pytest

# ---- tolerances: the rule of issue 2, nowhere else -------------------------------------------------------
# max |fastrnn - torch| <= TOL[dtype] * max(1, max |torch|)
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-10}


def tolerance(dtype, expected):
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size and np.all(np.isfinite(expected)) else 1.0
    return TOL[np.dtype(dtype)] * scale


def assert_close(actual, expected, dtype, what="", seed=None):
    """The issue's rule, with NaNs required in the same places. `what` and `seed` go into the message."""
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    where = f"{what} (seed={seed})" if seed is not None else what
    assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != expected {expected.shape}"
    a = actual.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), f"{where}: NaN at {np.argwhere(nan_a != nan_e)[:5].tolist()}"
    inf_e = np.isinf(expected)
    assert np.array_equal(a[inf_e], expected[inf_e]), f"{where}: infinities differ"
    finite = ~nan_e & ~inf_e
    diff = float(np.max(np.abs(a[finite] - expected[finite]))) if finite.any() else 0.0
    tol = tolerance(dtype, expected[finite])
    assert diff <= tol, f"{where}: max|diff| = {diff:.3e} > {tol:.3e} (dtype {np.dtype(dtype).name})"


def pytest_configure(config):
    # torch says so for every LSTM with proj_size; it is about torch's own backend, not about us.
    config.addinivalue_line("filterwarnings", "ignore:LSTM with projections is not supported with oneDNN")


# ---- seeds -----------------------------------------------------------------------------------------------
def _fresh_seed():
    forced = os.environ.get("FASTRNN_TEST_SEED")
    return int(forced) if forced else int.from_bytes(os.urandom(4), "little")


@pytest.fixture
def seed(request):
    value = _fresh_seed()
    request.node.user_properties.append(("fastrnn_seed", value))
    return value


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        seeds = [v for k, v in item.user_properties if k == "fastrnn_seed"]
        if seeds:
            report.sections.append(("fastrnn seed", f"FASTRNN_TEST_SEED={seeds[0]}"))


# ---- random data -----------------------------------------------------------------------------------------
def randn(rng, shape, dtype=np.float32, scale=1.0):
    """Gaussian data that is never all zeros (an empty shape aside)."""
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ---- modules, their oracles (tests/reference.py and torch) ------------------------------------------------
# Test cases of cell kind, as pytest labels: module_args maps each to fastrnn's vocabulary (fastrnn._kinds);
# "LSTMP" is an LSTM with a projection.
KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "LSTMP", "GRU")


def module_args(kind, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                bidirectional=False, proj_size=None):
    """(class name, kwargs) shared by torch.nn and fastrnn for a test case of `kind`."""
    kwargs = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, bias=bias,
                  batch_first=batch_first, bidirectional=bidirectional)
    if kind in ("RNN_TANH", "RNN_RELU"):
        kwargs["nonlinearity"] = "tanh" if kind == "RNN_TANH" else "relu"
        return "RNN", kwargs
    if kind == "LSTMP":
        kwargs["proj_size"] = proj_size if proj_size is not None else max(1, hidden_size // 2)
        return "LSTM", kwargs
    return kind, kwargs


def random_weights(module, rng, scale):
    """Weights for `module`'s parameter names, uniform in +-1.5 * scale: a bit beyond torch's init (scale =
    1/sqrt(H)), so gates leave the linear region."""
    return {name: rng.uniform(-1.5 * scale, 1.5 * scale, size=value.shape) for name, value in module.named_parameters()}


def make_module(kind, rng, dtype=np.float32, weight_scale=None, **options):
    """A fastrnn module of a test case with random weights drawn from `rng`. No torch needed."""
    import fastrnn

    name, kwargs = module_args(kind, **options)
    fmod = getattr(fastrnn, name)(**kwargs, dtype=dtype)
    scale = weight_scale if weight_scale is not None else 1.0 / np.sqrt(options["hidden_size"])
    fmod.load_state_dict(random_weights(fmod, rng, scale))
    return fmod


def make_pair(kind, rng, dtype=np.float32, weight_scale=None, **options):
    """A torch.nn module and a fastrnn module with the same random weights (drawn from `rng`); skips without torch."""
    torch = pytest.importorskip("torch", reason="torch is the oracle of this test (pip install torch==2.13.0)")
    fmod = make_module(kind, rng, dtype, weight_scale, **options)
    name, kwargs = module_args(kind, **options)
    torch.set_num_threads(1)  # torch is only the oracle here; its thread pool would fight fastrnn's threads
    tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    tmod = getattr(torch.nn, name)(**kwargs).to(tdtype).eval()
    tmod.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in fmod.state_dict().items()})
    return tmod, fmod


def state_shapes(kind, num_layers, bidirectional, batch, hidden_size, proj_size=None, unbatched=False):
    """The shapes torch wants for (h0,) or (h0, c0)."""
    D = 2 if bidirectional else 1
    H_out = hidden_size
    if kind == "LSTMP":
        H_out = proj_size if proj_size is not None else max(1, hidden_size // 2)
    lead = (num_layers * D,) if unbatched else (num_layers * D, batch)
    if kind in ("LSTM", "LSTMP"):
        return [lead + (H_out,), lead + (hidden_size,)]
    return [lead + (H_out,)]


def run_torch(tmod, x, states=None, kind="LSTM", lengths=None, batch_first=False):
    """torch's (out, [h_n] or [h_n, c_n]) as float64 numpy arrays; with `lengths`, through pack_padded_sequence
    (enforce_sorted=False) -> module -> pad_packed_sequence(total_length=T)."""
    import torch

    tdtype = next(tmod.parameters()).dtype
    tx = torch.as_tensor(np.asarray(x)).to(tdtype)
    T = tx.shape[1] if batch_first else tx.shape[0]
    if lengths is not None:
        tx = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.as_tensor(np.asarray(lengths), dtype=torch.int64),
                                                     batch_first=batch_first, enforce_sorted=False)
    with torch.no_grad():
        if states is None:
            out, hn = tmod(tx)
        else:
            ts = [torch.as_tensor(s).to(tdtype) for s in states]
            out, hn = tmod(tx, tuple(ts) if kind in ("LSTM", "LSTMP") else ts[0])
        if lengths is not None:
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    finals = list(hn) if isinstance(hn, tuple) else [hn]
    return out.double().numpy(), [f.double().numpy() for f in finals]


def run_reference(fmod, x, states=None, kind="LSTM", lengths=None):
    """What tests/reference.py says `fmod` computes: (out, [h_n] or [h_n, c_n]) as float64 arrays."""
    import reference

    cfg = fmod.config
    hx = None if states is None else (tuple(states) if cfg.kind == "LSTM" else states[0])
    params = fmod.state_dict()
    if cfg.cell:  # the oracle speaks the names of layer 0
        params = {f"{name}_l0": value for name, value in params.items()}
    out, hn = reference.forward(cfg.kind, params, x, hx, 1 if cfg.cell else cfg.num_layers, cfg.bidirectional,
                                getattr(fmod, "batch_first", False), lengths, cfg.nonlinearity,
                                cfg.gate_activations, cfg.clip, cfg.input_forget, cfg.linear_before_reset,
                                cfg.reverse)
    return out, list(hn) if isinstance(hn, tuple) else [hn]


def run_fastrnn(fmod, x, states=None, kind="LSTM", **kwargs):
    if states is None:
        out, hn = fmod(x, **kwargs)
    else:
        out, hn = fmod(x, tuple(states) if kind in ("LSTM", "LSTMP") else states[0], **kwargs)
    finals = list(hn) if isinstance(hn, tuple) else [hn]
    return out, finals


def compare_results(got, want, dtype, seed, label=""):
    out, finals = got
    t_out, t_finals = want
    assert isinstance(out, np.ndarray) and out.dtype == np.dtype(dtype), f"{label}: out is {type(out)} {out.dtype}"
    assert_close(out, t_out, dtype, f"{label} out", seed)
    assert len(finals) == len(t_finals), f"{label}: {len(finals)} final states, the oracle has {len(t_finals)}"
    for name, f, t in zip(("h_n", "c_n"), finals, t_finals):
        assert isinstance(f, np.ndarray) and f.dtype == np.dtype(dtype), f"{label}: {name} is {type(f)}"
        assert_close(f, t, dtype, f"{label} {name}", seed)


# ---- engine switches: kernel tiers and tuning thresholds --------------------------------------------------
def _tiers():
    from fastrnn import _engine

    return _engine.supported_tiers()


@pytest.fixture(params=_tiers())
def isa(request):
    """Every kernel tier this CPU runs (the others are not collected: see test_dispatch for why they skip)."""
    from fastrnn import _engine

    before = _engine.isa()
    _engine.set_isa(request.param)
    yield request.param
    _engine.set_isa(before)


@contextlib.contextmanager
def tuned(**values):
    """The engine's tuning thresholds set to `values` inside the block (fastrnn._engine.set_tuning)."""
    from fastrnn import _engine

    old = _engine.set_tuning(**values)
    try:
        yield
    finally:
        _engine.set_tuning(**old)


# ---- covering designs ------------------------------------------------------------------------------------
def pairwise(factors, seed=0):
    """A small list of dicts covering every pair of values of every two factors (greedy; deterministic).

    factors: {name: [values]}. Far fewer cases than the cartesian product, every 2-way interaction kept.
    """
    names = list(factors)
    uncovered = {(a, i, b, j)
                 for a, b in itertools.combinations(range(len(names)), 2)
                 for i in range(len(factors[names[a]])) for j in range(len(factors[names[b]]))}
    local = np.random.default_rng(seed)
    cases = []
    while uncovered:
        best, best_gain = None, -1
        for _ in range(60):
            # Start from an uncovered pair so every candidate covers at least one.
            a, i, b, j = sorted(uncovered)[local.integers(len(uncovered))]
            pick = [int(local.integers(len(factors[n]))) for n in names]
            pick[a], pick[b] = i, j
            gain = sum((x, pick[x], y, pick[y]) in uncovered
                       for x, y in itertools.combinations(range(len(names)), 2))
            if gain > best_gain:
                best, best_gain = pick, gain
        for x, y in itertools.combinations(range(len(names)), 2):
            uncovered.discard((x, best[x], y, best[y]))
        cases.append({n: factors[n][k] for n, k in zip(names, best)})
    return cases


def case_id(case):
    parts = []
    for key, value in case.items():
        if isinstance(value, bool):
            parts.append(key if value else f"no_{key}")
        elif isinstance(value, type) or isinstance(value, np.dtype):
            parts.append(np.dtype(value).name)
        else:
            parts.append(f"{key}={value}")
    return "-".join(parts)

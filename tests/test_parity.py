"""fastrnn against torch itself: out and every final state, for every kind and option, over a pairwise covering
grid plus hypothesis-drawn random configurations; cells; state_dict layout; streaming in chunks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from conftest import (KINDS, assert_close, case_id, compare_results, make_module, make_pair, module_args, pairwise, randn,
                      run_fastrnn, run_torch, state_shapes)

torch = pytest.importorskip("torch")

# Size profiles: (T range, B range, I range, H range), inclusive; drawn per run from the test's fresh seed.
SIZES = {
    "ones": ((1, 1), (1, 1), (1, 1), (1, 1)),       # smallest legal everything (LSTMP gets H=2 to project to 1)
    "small": ((2, 12), (1, 16), (1, 24), (2, 24)),
    "long": ((150, 200), (1, 16), (2, 16), (8, 32)),  # T up to 200
    "wide": ((2, 8), (2, 5), (100, 300), (150, 300)),  # sizes of a few hundred
    "batch": ((5, 30), (16, 16), (3, 40), (3, 48)),
}


def draw_sizes(rng, profile):
    return [int(rng.integers(lo, hi + 1)) for lo, hi in SIZES[profile]]


def check_module(kind, rng, seed, dtype, T, B, I, H, num_layers=1, bidirectional=False, batch_first=False,
                 bias=True, unbatched=False, states=False, proj_size=None, input_scale=1.0, label=""):
    if kind == "LSTMP" and proj_size is None:
        H = max(H, 2)
        proj_size = int(rng.integers(1, H))
    tmod, fmod = make_pair(kind, rng, dtype, input_size=I, hidden_size=H, num_layers=num_layers, bias=bias,
                           batch_first=batch_first, bidirectional=bidirectional, proj_size=proj_size)
    shape = (T, I) if unbatched else ((B, T, I) if batch_first else (T, B, I))
    x = randn(rng, shape, dtype, input_scale)
    hx = None
    if states:
        hx = [randn(rng, s, dtype) for s in state_shapes(kind, num_layers, bidirectional, B, H, proj_size, unbatched)]
    want = run_torch(tmod, x, hx, kind)
    x_before = x.copy()
    got = run_fastrnn(fmod, x, hx, kind)
    compare_results(got, want, dtype, seed, label or f"{kind} T={T} B={B} I={I} H={H} proj={proj_size}")
    assert np.array_equal(x, x_before), "the input was modified"


GRID = pairwise({
    "kind": list(KINDS),
    "size": list(SIZES),
    "num_layers": [1, 2, 3],
    "bidirectional": [False, True],
    "batch_first": [False, True],
    "bias": [True, False],
    "unbatched": [False, True],
    "states": [False, True],
    "dtype": [np.float32, np.float64],
}, seed=2)


@pytest.mark.parametrize("case", GRID, ids=[case_id(c) for c in GRID])
def test_module_parity_grid(case, rng, seed):
    case = dict(case)
    T, B, I, H = draw_sizes(rng, case.pop("size"))
    if case["num_layers"] == 3 and T * H > 2000:
        T = max(1, 2000 // H)  # keep 3-layer wide/long cases quick; "long" keeps T=200 for 1-2 layers
    check_module(case.pop("kind"), rng, seed, case.pop("dtype"), T, B, I, H, label=str(case), **case)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_module_parity_every_kind_all_options(kind, dtype, rng, seed):
    """Every kind with every option switched on at once (the hardest single configuration)."""
    check_module(kind, rng, seed, dtype, T=17, B=5, I=7, H=12, num_layers=3, bidirectional=True,
                 batch_first=True, bias=True, states=True)


def test_module_parity_saturating_inputs(rng, seed):
    for kind in KINDS:
        check_module(kind, rng, seed, np.float32, T=30, B=3, I=6, H=10, num_layers=2, bidirectional=True,
                     states=True, input_scale=30.0, label=f"{kind} saturating")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), num_layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(), bias=st.booleans(), unbatched=st.booleans(), states=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), T=st.integers(1, 40), B=st.integers(1, 16),
       I=st.integers(1, 64), H=st.integers(1, 64), input_scale=st.sampled_from([0.1, 1.0, 5.0]),
       data_seed=st.integers(0, 2**32 - 1))
def test_module_parity_random_configs(kind, num_layers, bidirectional, batch_first, bias, unbatched, states, dtype,
                                      T, B, I, H, input_scale, data_seed):
    rng = np.random.default_rng(data_seed)  # hypothesis prints data_seed with the falsifying example
    check_module(kind, rng, data_seed, dtype, T, B, I, H, num_layers=num_layers, bidirectional=bidirectional,
                 batch_first=batch_first, bias=bias, unbatched=unbatched, states=states, input_scale=input_scale)


# ---- state_dict layout -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_layers,bidirectional,bias", [(1, False, True), (2, True, False), (3, True, True)])
def test_state_dict_names_and_shapes_match_torch(kind, num_layers, bidirectional, bias):
    name, kwargs = module_args(kind, 5, 6, num_layers, bias, False, bidirectional, proj_size=4)
    tsd = getattr(torch.nn, name)(**kwargs).state_dict()
    fmod = getattr(fastrnn, name)(**kwargs)
    fsd = fmod.state_dict()
    assert list(fsd) == list(tsd)
    for key in tsd:
        assert fsd[key].shape == tuple(tsd[key].shape), key
        assert fsd[key].dtype == np.float32, key
        # fresh modules use torch's init: U(-1/sqrt(H), 1/sqrt(H)), not zeros
        assert 0 < np.abs(fsd[key]).max() <= 1 / np.sqrt(6) + 1e-7, key


# ---- cells -------------------------------------------------------------------------------------------------

CELL_GRID = pairwise({
    "kind": ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"],
    "bias": [True, False],
    "unbatched": [False, True],
    "states": [False, True],
    "dtype": [np.float32, np.float64],
}, seed=3)

def _cell_case(case):
    return pytest.param(case, id=case_id(case))


@pytest.mark.parametrize("case", [_cell_case(c) for c in CELL_GRID])
def test_cell_parity(case, rng, seed):
    kind, dtype, unbatched = case["kind"], case["dtype"], case["unbatched"]
    B, I, H = int(rng.integers(1, 9)), int(rng.integers(1, 30)), int(rng.integers(1, 30))
    name = {"RNN_TANH": "RNNCell", "RNN_RELU": "RNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}[kind]
    kwargs = {"nonlinearity": "relu" if kind == "RNN_RELU" else "tanh"} if name == "RNNCell" else {}
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tcell = getattr(torch.nn, name)(I, H, bias=case["bias"], **kwargs).to(tdtype)
    fcell = getattr(fastrnn, name)(I, H, bias=case["bias"], dtype=dtype, **kwargs)
    fcell.load_state_dict(tcell.state_dict())
    lead = () if unbatched else (B,)
    x = randn(rng, lead + (I,), dtype)
    states = [randn(rng, lead + (H,), dtype) for _ in range(2 if kind == "LSTM" else 1)] if case["states"] else None
    with torch.no_grad():
        tx = torch.from_numpy(x)
        ts = None if states is None else [torch.from_numpy(s) for s in states]
        if kind == "LSTM":
            want = [t.double().numpy() for t in tcell(tx, None if ts is None else tuple(ts))]
            got = list(fcell(x, None if states is None else tuple(states)))
        else:
            want = [tcell(tx, None if ts is None else ts[0]).double().numpy()]
            got = [fcell(x, None if states is None else states[0])]
    for what, g, w in zip(("h1", "c1"), got, want):
        assert g.dtype == np.dtype(dtype)
        assert_close(g, w, dtype, f"{name} {what} {case}", seed)


def test_cell_matches_one_step_of_the_module(rng, seed):
    """A cell with a layer's weights equals a T=1 run of the module."""
    for kind in ("RNN_TANH", "LSTM", "GRU"):
        tmod, fmod = make_pair(kind, rng, np.float64, input_size=4, hidden_size=6)
        name = {"RNN_TANH": "RNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}[kind]
        cell = getattr(fastrnn, name)(4, 6, dtype=np.float64)
        cell.load_state_dict({k[: -len("_l0")]: v for k, v in fmod.state_dict().items()})
        x = randn(rng, (3, 4), np.float64)
        out, _ = fmod(x[None])
        h1 = cell(x)
        h1 = h1[0] if kind == "LSTM" else h1
        assert_close(h1, out[0], np.float64, f"{name} vs 1-step {kind}", seed)


# ---- streaming -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_stream_in_chunks_equals_whole(kind, batch_first, rng, seed):
    """A unidirectional sequence fed in random chunks, carrying the state, equals the whole sequence."""
    T, B, I, H, L = int(rng.integers(8, 40)), int(rng.integers(1, 6)), 5, 8, int(rng.integers(1, 4))
    fmod = make_module(kind, rng, np.float64, input_size=I, hidden_size=H, num_layers=L, batch_first=batch_first)
    x = randn(rng, (B, T, I) if batch_first else (T, B, I), np.float64)
    whole_out, whole_state = fmod(x)
    cuts = np.sort(rng.choice(np.arange(1, T), size=min(T - 1, 4), replace=False))
    outs, state = [], None
    for piece in np.split(x, cuts, axis=1 if batch_first else 0):
        o, state = fmod(piece, state)
        outs.append(o)
    assert_close(np.concatenate(outs, axis=1 if batch_first else 0), whole_out, np.float64, "chunked out", seed)
    state = list(state) if isinstance(state, tuple) else [state]
    whole_state = list(whole_state) if isinstance(whole_state, tuple) else [whole_state]
    assert len(state) == len(whole_state)
    for a, b in zip(state, whole_state):
        assert_close(a, b, np.float64, "chunked state", seed)

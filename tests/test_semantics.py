"""Cells beyond torch's (README "Custom gates"): named and callable activations, clip, peepholes, coupled gates,
both GRU variants, reverse layers, with every module option, against the numpy oracle (tests/reference.py, written
from ONNX's formulas). No torch needed."""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from conftest import assert_close, case_id, pairwise, randn, run_reference, tuned
from fastrnn import _engine

LSTM_OPTIONS = [{}, {"peepholes": True}, {"clip": 1.5}, {"input_forget": True},
                {"activations": (("hard_sigmoid", 0.2, 0.5), "tanh", "tanh"), "peepholes": True, "clip": 3.0},
                {"activations": ("step", "identity", "identity")}, {"activations": ("softsign", "elu", "softplus")},
                {"reverse": True, "peepholes": True}]
GRU_OPTIONS = [{}, {"linear_before_reset": False}, {"clip": 0.8}, {"activations": ("hard_sigmoid", "relu")},
               {"linear_before_reset": False, "activations": (("hard_sigmoid", 0.3, 0.4), ("scaled_tanh", 1.5, 0.7))},
               {"reverse": True, "linear_before_reset": False}]
RNN_OPTIONS = [{}, {"activations": ("relu",)}, {"activations": (("thresholded_relu", 0.2),)}, {"clip": 0.5},
               {"activations": ("softplus",), "reverse": True}, {"activations": (("affine", 0.5, -0.1),)}]
OPTIONS = [("LSTM", o) for o in LSTM_OPTIONS] + [("GRU", o) for o in GRU_OPTIONS] + [("RNN", o) for o in RNN_OPTIONS]

GRID = pairwise({
    "cell": list(range(len(OPTIONS))),
    "num_layers": [1, 2],
    "bidirectional": [False, True],
    "batch_first": [False, True],
    "lengths": [False, True],
    "dtype": [np.float32, np.float64],
    "threads": ["1", "2_split", "2_directions"],
    "block": ["steps", "whole"],
}, seed=5)


def _module(kind, options, rng, dtype, bidirectional=False, **kwargs):
    if bidirectional and options.get("reverse"):
        options = {k: v for k, v in options.items() if k != "reverse"}
    module = getattr(fastrnn, kind)(6, 13, dtype=dtype, bidirectional=bidirectional, **kwargs, **options)
    scale = 1.5 / np.sqrt(13)
    module.load_state_dict({name: rng.uniform(-scale, scale, value.shape) for name, value in module.named_parameters()})
    return module


@pytest.mark.parametrize("case", GRID, ids=[case_id(c) for c in GRID])
def test_options_match_oracle(case, rng, seed):
    kind, options = OPTIONS[case["cell"]]
    dtype, bidir, bf = case["dtype"], case["bidirectional"], case["batch_first"]
    module = _module(kind, options, rng, dtype, bidir, num_layers=case["num_layers"], batch_first=bf)
    T, B = 9, 4
    x = randn(rng, (B, T, 6) if bf else (T, B, 6), dtype, scale=2.0)
    lengths = rng.integers(1, T + 1, size=B) if case["lengths"] else None
    threads = 1 if case["threads"] == "1" else 2
    before = fastrnn.get_num_threads()
    fastrnn.set_num_threads(threads)
    split = 0 if case["threads"] == "2_split" else 1e30
    try:
        with tuned(parallel_min_flops=0 if case["threads"] == "2_directions" else 1e30, split_min_step_flops=split,
                   split_min_call_flops=split, block_rows=1, block_bytes=1 if case["block"] == "steps" else 1 << 40):
            out, states = module(x, lengths=lengths)
    finally:
        fastrnn.set_num_threads(before)
    want_out, want_states = run_reference(module, x, kind=kind, lengths=lengths)
    where = f"{kind} {options} {case}"
    assert_close(out, want_out, dtype, where + " out", seed)
    for got, want in zip(states if isinstance(states, tuple) else (states,), want_states):
        assert_close(got, want, dtype, where + " state", seed)


@pytest.mark.parametrize("kind,options", OPTIONS, ids=[f"{k}-{case_id(o) or 'defaults'}" for k, o in OPTIONS])
def test_every_tier(isa, kind, options, rng, seed):
    module = _module(kind, options, rng, np.float32, num_layers=2)
    x = randn(rng, (7, 5, 6), scale=2.0)
    out, _ = module(x)
    assert_close(out, run_reference(module, x, kind=kind)[0], np.float32, f"{kind} {options} isa={isa}", seed)


def hard_sigmoid_keras3(x):
    return np.clip(x / 6 + 0.5, 0, 1)


@pytest.mark.parametrize("kind,activations", [("LSTM", (hard_sigmoid_keras3, "tanh", np.tanh)),
                                              ("GRU", (np.tanh, hard_sigmoid_keras3)), ("RNN", (np.sin,))])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_callable_activations(kind, activations, bidirectional, dtype, rng, seed):
    """Python callables run on the numpy path (fastrnn._slow): same results, every option."""
    extra = {"peepholes": True, "clip": 2.0} if kind == "LSTM" else {"linear_before_reset": False} if kind == "GRU" \
        else {}
    module = _module(kind, {"activations": activations, **extra}, rng, dtype, bidirectional, num_layers=2)
    assert module.config.slow
    x = randn(rng, (8, 3, 6), dtype, scale=2.0)
    lengths = [8, 2, 5]
    out, _ = module(x, lengths=lengths)
    assert_close(out, run_reference(module, x, kind=kind, lengths=lengths)[0], dtype, f"{kind} callables", seed)


def test_named_and_callable_agree(rng, seed):
    """A callable that computes what a named activation does gives the kernels' result (to rounding)."""
    named = _module("LSTM", {"activations": (("hard_sigmoid", 1 / 6, 0.5), "tanh", "tanh")}, rng, np.float64)
    slow = fastrnn.LSTM(6, 13, dtype=np.float64, activations=(hard_sigmoid_keras3, np.tanh, np.tanh))
    slow.load_state_dict(named.state_dict())
    x = randn(rng, (10, 2, 6), np.float64, scale=3.0)
    assert_close(slow(x)[0], named(x)[0], np.float64, "named vs callable", seed)


@pytest.mark.parametrize("kind,options", [("LSTM", {"peepholes": True, "clip": 2.0}),
                                          ("GRU", {"linear_before_reset": False}),
                                          ("LSTM", {"activations": (np.tanh, "sigmoid", "tanh")})])
def test_streams_and_cells(kind, options, rng, seed):
    module = _module(kind, options, rng, np.float32, num_layers=2)
    x = randn(rng, (9, 2, 6))
    whole = module(x)[0]
    stream = module.stream(2)
    pieces = np.concatenate([stream(x[:4]), stream(x[4:5]), stream(x[5:])])
    assert_close(pieces, whole, np.float32, f"{kind} {options} stream", seed)
    cell = getattr(fastrnn, f"{kind}Cell")(6, 13, **{k: v for k, v in options.items() if k != "reverse"})
    cell.load_state_dict({k[:-3]: v for k, v in module.state_dict().items() if k.endswith("_l0")})
    state = None
    for t in range(9):
        state = cell(x[t], state)
    h = state[0] if isinstance(state, tuple) else state
    want = run_reference(cell, x, kind=kind)[1][0][0]
    assert_close(h, want, np.float32, f"{kind}Cell {options}", seed)


def test_lecture_lstm():
    """The classic lecture LSTM: step-function gates, linear cell input and output (torch cannot express it)."""
    lstm = fastrnn.LSTM(4, 1, bias=False, activations=("step", "identity", "identity"))
    w = np.array([[0, 100, 0, -10], [0, 100, 0, 10], [1, 0, 0, 0], [0, 0, 100, -10]], np.float32)  # i, f, g, o
    lstm.load_state_dict({"weight_ih_l0": w, "weight_hh_l0": np.zeros((4, 1))})
    x = np.array([[1, 0, 0, 1], [3, 1, 0, 1], [2, 0, 0, 1], [4, 1, 0, 1], [2, 0, 0, 1], [1, 0, 1, 1], [3, -1, 0, 1],
                  [6, 1, 0, 1], [1, 0, 1, 1]], np.float32)
    out, _ = lstm(x[:, None])
    assert out[:, 0, 0].tolist() == [0, 0, 0, 0, 0, 7, 0, 0, 6]


def test_peepholes_round_trip_and_discovery(rng):
    module = _module("LSTM", {"peepholes": True}, rng, np.float32, True, num_layers=2)
    sd = module.state_dict()
    assert "weight_p_l1_reverse" in sd and sd["weight_p_l0"].shape == (39,)
    loaded = fastrnn.load(sd)
    assert loaded.config.peepholes and loaded.config == module.config
    x = randn(rng, (5, 2, 6))
    assert np.array_equal(loaded(x)[0], module(x)[0])


@pytest.mark.parametrize("kwargs,message", [
    (dict(kind="GRU", peepholes=True), "peepholes"),
    (dict(kind="LSTM", linear_before_reset=False), "linear_before_reset"),
    (dict(kind="LSTM", activations=("tanh", "tanh")), "3 activation slots"),
    (dict(kind="GRU", activations=("swish", "tanh")), "unknown activation 'swish'"),
    (dict(kind="LSTM", activations=("sigmoid", ("tanh", "x"), "tanh")), "name, alpha, beta"),
    (dict(kind="LSTM", clip=-1.0), "clip: expected a number > 0"),
    (dict(kind="LSTM", reverse=True, bidirectional=True), "reverse"),
    (dict(kind="RNN", nonlinearity="relu", activations=("tanh",)), "not both"),
])
def test_option_errors(kwargs, message):
    kind = kwargs.pop("kind")
    with pytest.raises((ValueError, TypeError), match=message):
        getattr(fastrnn, kind)(3, 4, **kwargs)


def test_reverse_cannot_stream():
    with pytest.raises(ValueError, match="reverse module cannot stream"):
        fastrnn.GRU(3, 4, reverse=True).stream()


def test_onnx_names_and_repr():
    gru = fastrnn.GRU(3, 4, activations=("HardSigmoid", ("LeakyRelu", 0.2)), linear_before_reset=False)
    assert gru.config.gate_activations[0] == (("hard_sigmoid", 0.2, 0.5), ("leaky_relu", 0.2, 0.0))
    assert repr(gru) == "GRU(3, 4, activations=('hard_sigmoid', ('leaky_relu', 0.2, 0.0)), linear_before_reset=False)"
    assert fastrnn.LSTM(3, 4, activations=("sigmoid", "tanh", "tanh")).config.standard
    assert _engine.ACTIVATION_CODES.keys() == fastrnn.activations.ACTIVATIONS.keys()

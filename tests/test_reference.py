"""tests/reference.py against torch itself, in float64 (1e-10), so the oracle the engine is held to is right."""
from __future__ import annotations

import numpy as np
import pytest

import reference
from conftest import KINDS, assert_close, case_id, make_pair, module_args, pairwise, randn, state_shapes

torch = pytest.importorskip("torch")


GRID = pairwise({
    "kind": list(KINDS),
    "num_layers": [1, 2, 3],
    "bidirectional": [False, True],
    "batch_first": [False, True],
    "bias": [False, True],
    "unbatched": [False, True],
    "states": [False, True],
    "lengths": [False, True],
}, seed=11)


def _params(tmod):
    return {k: v.double().numpy() for k, v in tmod.state_dict().items()}


@pytest.mark.parametrize("case", GRID, ids=[case_id(c) for c in GRID])
def test_reference_matches_torch(case, rng, seed):
    kind, L, bi, bf = case["kind"], case["num_layers"], case["bidirectional"], case["batch_first"]
    unbatched = case["unbatched"]
    use_lengths = case["lengths"] and not unbatched
    T, B, I, H = int(rng.integers(1, 9)), int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(2, 8))
    tmod, _ = make_pair(kind, rng, np.float64, input_size=I, hidden_size=H, num_layers=L, bias=case["bias"],
                        batch_first=bf, bidirectional=bi)
    shape = (T, I) if unbatched else ((B, T, I) if bf else (T, B, I))
    x = randn(rng, shape, np.float64)
    states = None
    if case["states"]:
        states = [randn(rng, s, np.float64) for s in state_shapes(kind, L, bi, B, H, unbatched=unbatched)]
    lengths = rng.integers(1, T + 1, size=B) if use_lengths else None

    name, kwargs = module_args(kind, I, H)  # fastrnn's vocabulary: kind and nonlinearity
    lstm = name == "LSTM"
    hx = None if states is None else (tuple(states) if lstm else states[0])
    out, finals = reference.forward(name, _params(tmod), x, hx, L, bi, bf, lengths, kwargs.get("nonlinearity", "tanh"))
    finals = list(finals) if isinstance(finals, tuple) else [finals]

    tx = torch.from_numpy(x)
    thx = None if hx is None else (tuple(map(torch.from_numpy, hx)) if lstm
                                   else torch.from_numpy(hx))
    with torch.no_grad():
        if lengths is None:
            t_out, t_fin = tmod(tx, thx)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.as_tensor(lengths), batch_first=bf,
                                                             enforce_sorted=False)
            t_packed, t_fin = tmod(packed, thx)
            t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_packed, batch_first=bf, total_length=T)
    t_fin = list(t_fin) if isinstance(t_fin, tuple) else [t_fin]
    assert_close(out, t_out.numpy(), np.float64, f"reference out {case}", seed)
    for name, f, t in zip(("h_n", "c_n"), finals, t_fin):
        assert_close(f, t.numpy(), np.float64, f"reference {name} {case}", seed)


@pytest.mark.parametrize("kind", ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
@pytest.mark.parametrize("bias", [False, True])
def test_reference_cells_match_torch(kind, bias, rng, seed):
    B, I, H = int(rng.integers(1, 6)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    name = {"RNN_TANH": "RNNCell", "RNN_RELU": "RNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}[kind]
    kwargs = {"nonlinearity": "relu" if kind == "RNN_RELU" else "tanh"} if name == "RNNCell" else {}
    cell = getattr(torch.nn, name)(I, H, bias=bias, **kwargs).double()
    p = {k: v.numpy() for k, v in cell.state_dict().items()}
    x, h, c = randn(rng, (B, I), np.float64), randn(rng, (B, H), np.float64), randn(rng, (B, H), np.float64)
    args = (p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
    with torch.no_grad():
        if kind == "LSTM":
            th, tc = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
            rh, rc = reference.lstm_cell(x, h, c, *args)
            assert_close(rc, tc.numpy(), np.float64, "reference LSTMCell c", seed)
        elif kind == "GRU":
            th, rh = cell(torch.from_numpy(x), torch.from_numpy(h)), reference.gru_cell(x, h, *args)
        else:
            th = cell(torch.from_numpy(x), torch.from_numpy(h))
            rh = reference.rnn_cell(x, h, *args, use_relu=kind == "RNN_RELU")
    assert_close(rh, th.numpy(), np.float64, f"reference {name} h", seed)


def test_reference_activations_match_torch(rng, seed):
    x = np.concatenate([randn(rng, 200, np.float64, scale=20.0), [0.0, -0.0, 1e-300, -1e-300, 50.0, -50.0, 800.0,
                                                                  -800.0, np.inf, -np.inf, np.nan]])
    tx = torch.from_numpy(x)
    assert_close(reference.sigmoid(x), torch.sigmoid(tx).numpy(), np.float64, "sigmoid", seed)
    assert_close(reference.tanh(x), torch.tanh(tx).numpy(), np.float64, "tanh", seed)
    assert_close(reference.relu(x), torch.relu(tx).numpy(), np.float64, "relu", seed)

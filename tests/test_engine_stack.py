"""The engine's Stack (what module.stream() runs on): step-major through every layer in one GIL-free call.

Checked against the numpy oracle (tests/reference.py) over whole sequences (every kind, dtype, several batch sizes so both the one-row and the
multi-row panel kernels run), for its contract with the Python wrapper (run() returns False without
touching anything when the arrays need converting; sizes are checked), and for its state arrays.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close, make_module, randn, run_reference, state_shapes

from fastrnn import _engine

STACK_KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "LSTMP", "GRU")


def _load_state(stack, kind, states):
    stack.h[...] = states[0]
    if kind.startswith("LSTM"):
        stack.c[...] = states[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", STACK_KINDS)
@pytest.mark.parametrize("B", [1, 2, 7, 20])
def test_stack_matches_oracle(kind, B, dtype, rng, seed):
    T, L, H = 6, 3, 19
    fmod = make_module(kind, rng, dtype, input_size=5, hidden_size=H, num_layers=L)
    x = randn(rng, (T, B, 5), dtype)
    states = [randn(rng, s, dtype) for s in state_shapes(kind, L, False, B, H)]
    want_out, want_states = run_reference(fmod, x, states, kind)
    stack = _engine.Stack(list(fmod._layers), B)
    _load_state(stack, kind, states)
    out = np.empty(want_out.shape, dtype)
    assert stack.run(x, out) is True
    where = f"{kind} B={B}"
    assert_close(out, want_out, dtype, where + " out", seed)
    assert_close(stack.h, want_states[0], dtype, where + " h", seed)
    if kind.startswith("LSTM"):
        assert_close(stack.c, want_states[1], dtype, where + " c", seed)


def test_run_declines_arrays_it_cannot_use_as_they_are(rng):
    fmod = make_module("GRU", rng, np.float32, input_size=4, hidden_size=6, num_layers=2)
    stack = _engine.Stack(list(fmod._layers), 2)
    out = np.empty((3, 2, 6), np.float32)
    before = stack.h.copy()
    x = randn(rng, (3, 2, 4))
    readonly = out.copy()
    readonly.flags.writeable = False
    strided = np.empty((3, 2, 12), np.float32)[:, :, ::2]
    for bad_x, bad_out in [(x.astype(np.float64), out), (np.asfortranarray(x), out), (x.tolist(), out),
                           (x, readonly), (x, out.astype(np.float64)), (x, strided)]:
        assert stack.run(bad_x, bad_out) is False
    assert np.array_equal(stack.h, before)
    with pytest.raises(ValueError, match="Stack.run"):
        stack.run(randn(rng, (3, 2, 5)), out)
    with pytest.raises(ValueError, match="Stack.run"):
        stack.run(x, np.empty((3, 2, 5), np.float32))
    assert stack.run(x[:0], out[:0]) is True  # no steps: nothing to do


def test_state_arrays_are_the_state(rng):
    fmod = make_module("LSTM", rng, np.float64, input_size=3, hidden_size=5, num_layers=2)
    stack = _engine.Stack(list(fmod._layers), 1)
    assert stack.h.shape == (2, 1, 5) and stack.c.shape == (2, 1, 5)
    x = randn(rng, (4, 1, 3), np.float64)
    out1 = np.empty((4, 1, 5))
    stack.run(x, out1)
    stack.h[...] = 0
    stack.c[...] = 0
    out2 = np.empty((4, 1, 5))
    stack.run(x, out2)
    assert np.array_equal(out1, out2)
    assert _engine.Stack(list(make_module("GRU", rng, np.float32, input_size=3, hidden_size=5)._layers), 1).c is None


def test_stack_refuses_bad_layer_lists(rng):
    bidir = make_module("LSTM", rng, np.float32, input_size=3, hidden_size=5, bidirectional=True)
    with pytest.raises(ValueError, match="unidirectional"):
        _engine.Stack(list(bidir._layers), 1)
    a = make_module("LSTM", rng, np.float32, input_size=3, hidden_size=5)
    b = make_module("GRU", rng, np.float32, input_size=5, hidden_size=5)
    with pytest.raises(ValueError, match="share kind"):
        _engine.Stack([a._layers[0], b._layers[0]], 1)
    with pytest.raises(ValueError):
        _engine.Stack([], 1)
    with pytest.raises(ValueError):
        _engine.Stack(list(a._layers), 0)
    with pytest.raises(TypeError, match="Layer"):
        _engine.Stack([object()], 1)

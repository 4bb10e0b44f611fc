"""module.stream(): stateful stepping. Checked three ways: against the numpy oracle (tests/reference.py) on the
whole sequence, bitwise
against itself under any split of the sequence into chunks, and against the module's own call."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
from conftest import assert_close, make_module, randn, run_reference

STREAM_KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "LSTMP", "GRU")


@pytest.mark.parametrize("kind", STREAM_KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_matches_oracle_whole_sequence(kind, batch_first, dtype, rng, seed):
    B, T = 3, 23
    fmod = make_module(kind, rng, dtype, input_size=5, hidden_size=9, num_layers=2, batch_first=batch_first)
    x = randn(rng, (B, T, 5) if batch_first else (T, B, 5), dtype)
    t_out, t_finals = run_reference(fmod, x, kind=kind)
    stream = fmod.stream(batch_size=B)
    cuts = sorted(rng.choice(np.arange(1, T), size=4, replace=False))
    pieces = np.split(x, cuts, axis=1 if batch_first else 0)
    out = np.concatenate([stream(p) for p in pieces], axis=1 if batch_first else 0)
    assert out.dtype == np.dtype(dtype)
    assert_close(out, t_out, dtype, f"{kind} stream out", seed)
    state = stream.state if isinstance(stream.state, tuple) else (stream.state,)
    for got, want in zip(state, t_finals):
        assert_close(got, want, dtype, f"{kind} stream state", seed)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(STREAM_KINDS), layers=st.integers(1, 3), batch=st.integers(1, 4),
       cuts=st.lists(st.integers(1, 29), max_size=8), seed=st.integers(0, 2**32 - 1))
def test_any_split_is_bitwise_identical(kind, layers, batch, cuts, seed):
    rng = np.random.default_rng(seed)
    fmod = _fastrnn_module(kind, 6, 11, layers)
    x = randn(rng, (30, batch, 6))
    whole = fmod.stream(batch)(x)
    stream = fmod.stream(batch)
    pieces = np.split(x, sorted(set(cuts)), axis=0)
    split = np.concatenate([stream(p) for p in pieces], axis=0)
    assert np.array_equal(whole, split), f"seed={seed} cuts={sorted(set(cuts))}"
    ref_stream = fmod.stream(batch)
    ref_stream(x)
    for a, b in zip(_as_tuple(stream.state), _as_tuple(ref_stream.state)):
        assert np.array_equal(a, b), f"state differs, seed={seed}"


def _fastrnn_module(kind, input_size, hidden_size, layers):
    if kind.startswith("RNN"):
        return fastrnn.RNN(input_size, hidden_size, layers, nonlinearity="tanh" if kind == "RNN_TANH" else "relu")
    if kind == "LSTMP":
        return fastrnn.LSTM(input_size, hidden_size, layers, proj_size=3)
    return getattr(fastrnn, kind)(input_size, hidden_size, layers)


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def test_stream_agrees_with_module_call(rng):
    fmod = fastrnn.GRU(4, 8, num_layers=2)
    x = randn(rng, (40, 2, 4))
    out, h_n = fmod(x)
    stream = fmod.stream(2)
    got = np.concatenate([stream(x[:13]), stream(x[13:])])
    # Same math; the products of a block of steps and of a chunk's steps may group their sums differently (one
    # row is summed in another order than several): equal to float32 rounding.
    assert_close(got, out.astype(np.float64), np.float32, "stream vs call")
    assert_close(stream.state, h_n.astype(np.float64), np.float32, "stream state vs h_n")


def test_unbatched_chunks_and_initial_state(rng, seed):
    fmod = make_module("LSTM", rng, np.float32, input_size=3, hidden_size=5, num_layers=2)
    h0, c0 = randn(rng, (2, 1, 5)), randn(rng, (2, 1, 5))
    x = randn(rng, (12, 3))
    t_out, (t_h, t_c) = run_reference(fmod, x, [h0[:, 0], c0[:, 0]], "LSTM")
    stream = fmod.stream(1, initial=(h0, c0))
    out = np.concatenate([stream(x[:5]), stream(x[5:])])
    assert out.shape == (12, 5)
    assert_close(out, t_out, np.float32, "unbatched out", seed)
    h, c = stream.state
    assert_close(h[:, 0], t_h, np.float32, "h", seed)
    assert_close(c[:, 0], t_c, np.float32, "c", seed)


def test_out_buffer_is_written_and_returned(rng):
    fmod = fastrnn.LSTM(4, 6, batch_first=True)
    x = randn(rng, (2, 7, 4))
    expected = fmod.stream(2)(x)
    buf = np.full((2, 7, 6), np.nan, dtype=np.float32)
    result = fmod.stream(2)(x, out=buf)
    assert result is buf
    assert np.array_equal(buf, expected)


@pytest.mark.parametrize("bad", [np.empty((2, 7, 5), np.float32), np.empty((2, 7, 6), np.float64), [[0.0]]])
def test_out_buffer_errors(bad, rng):
    fmod = fastrnn.LSTM(4, 6, batch_first=True)
    with pytest.raises(ValueError, match="out: expected"):
        fmod.stream(2)(randn(rng, (2, 7, 4)), out=bad)


def test_reset_all_and_some_rows(rng):
    fmod = fastrnn.GRU(3, 4)
    x = randn(rng, (6, 3, 3))
    fresh = fmod.stream(3)(x)
    stream = fmod.stream(3)
    stream(x)
    stream.reset()
    assert np.array_equal(stream(x), fresh)
    stream.reset(rows=[1])
    again = stream(x)
    assert np.array_equal(again[:, 1], fresh[:, 1])
    assert not np.array_equal(again[:, 0], fresh[:, 0])
    with pytest.raises(ValueError, match="rows"):
        stream.reset(rows=[3])


def test_bidirectional_cannot_stream():
    with pytest.raises(ValueError, match="bidirectional"):
        fastrnn.LSTM(3, 4, bidirectional=True).stream()


@pytest.mark.parametrize("chunk_shape", [(5, 2, 4), (5, 3), (5,), (2, 5, 3, 1)])
def test_chunk_shape_errors(chunk_shape):
    stream = fastrnn.RNN(3, 4).stream(2)
    with pytest.raises(ValueError, match=r"chunk: expected shape \(T_chunk, 2, 3\)"):
        stream(np.ones(chunk_shape, np.float32))


def test_stream_argument_errors():
    with pytest.raises(ValueError, match="batch_size"):
        fastrnn.GRU(3, 4).stream(0)
    with pytest.raises(ValueError, match=r"initial: expected shape \(1, 2, 4\)"):
        fastrnn.GRU(3, 4).stream(2, initial=np.zeros((1, 3, 4)))
    with pytest.raises(TypeError, match="initial"):
        fastrnn.LSTM(3, 4).stream(2, initial=np.zeros((1, 2, 4)))
    with pytest.raises(TypeError, match="chunk"):
        fastrnn.GRU(3, 4).stream(1)(np.array([["a", "b", "c"]]))


@pytest.mark.parametrize("kind", ["RNN_TANH", "LSTM", "GRU"])
def test_cell_stream_matches_torch_cell_loop(kind, rng, seed):
    torch = pytest.importorskip("torch")
    name = {"RNN_TANH": "RNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}[kind]
    tcell = getattr(torch.nn, name)(4, 6)
    fcell = getattr(fastrnn, name)(4, 6)
    fcell.load_state_dict(tcell.state_dict())
    x = randn(rng, (9, 2, 4))
    stream = fcell.stream(2)
    state = None
    with torch.no_grad():
        for t in range(9):
            state = tcell(torch.from_numpy(x[t]), state)
            got = stream(x[t])
            want = state[0] if kind == "LSTM" else state
            assert_close(got, want.numpy(), np.float32, f"{name} step {t}", seed)
    if kind == "LSTM":
        assert_close(stream.state[1], state[1].numpy(), np.float32, "c", seed)
    with pytest.raises(ValueError, match=r"chunk: expected one frame of shape \(2, 4\)"):
        stream(x[:2])


def test_two_streams_in_two_threads_match_serial(rng):
    fmod = fastrnn.LSTM(32, 64, num_layers=2)
    xs = [randn(rng, (200, 2, 32)) for _ in range(2)]
    serial = [fmod.stream(2)(x) for x in xs]
    results = [None, None]

    def work(i):
        stream = fmod.stream(2)
        results[i] = np.concatenate([stream(xs[i][t:t + 10]) for t in range(0, 200, 10)])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i in range(2):
        assert np.array_equal(results[i], serial[i])

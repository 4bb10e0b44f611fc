"""Absurd sizes are refused at once, before anything is allocated or looped over, with the argument, what was asked
and what it needs (fastrnn._memory): constructors, RNNConfig, load, calls, streams, cells; and the engine's own size
products never wrap around. What fits is not refused: the counts are lower bounds, checked against real modules."""
from __future__ import annotations

import math
import os
import re
import signal
import time

import numpy as np
import pytest

import fastrnn
from fastrnn import _engine, _memory
from fastrnn.config import MAX_LAYERS, RNNConfig

from conftest import tuned

TB = 1 << 40


@pytest.fixture
def deadline():
    """Fail (rather than hang the suite) if the test body runs longer than 20 s; the refusals below take
    microseconds, and before the guards some of them ran for minutes in Python loops."""
    def expire(signum, frame):
        raise TimeoutError("still running after 20 s: the size was not refused up front")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 20)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def refused(error, pattern, make):
    """`make()` raises `error` matching `pattern` within a second; returns the message."""
    start = time.perf_counter()
    with pytest.raises(error, match=pattern) as info:
        make()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"refused after {elapsed:.2f} s: {info.value}"
    return str(info.value)


MEMORY = r"needs at least [\d.]+ [KMGTPEZY]B .*more than this machine's memory \([\d.]+ [KMGT]?B\)"


@pytest.mark.parametrize("make", [
    lambda: fastrnn.RNN(10, 10, num_layers=10**9),
    lambda: fastrnn.LSTM(10, 10, num_layers=MAX_LAYERS + 1),
    lambda: fastrnn.GRU(10, 10, num_layers=10**12, bidirectional=True),
], ids=["RNN", "LSTM", "GRU"])
def test_too_many_layers(make, deadline):
    message = refused(ValueError, r"num_layers: expected at most 65536, got \d+", make)
    assert str(MAX_LAYERS) in message


@pytest.mark.parametrize("make,named", [
    (lambda: fastrnn.LSTM(10, 10**12), r"hidden_size=1000000000000\b"),
    (lambda: fastrnn.RNN(10**15, 10), r"input_size=1000000000000000\b"),
    (lambda: fastrnn.GRU(3, 2**20, num_layers=4, bidirectional=True, dtype=np.float64), r"hidden_size=1048576\b"),
    (lambda: fastrnn.LSTM(10, 2**30, proj_size=2**29), r"proj_size=536870912\b"),
    (lambda: fastrnn.LSTM(2**25, 2**20, num_layers=2), r"num_layers=2\b"),
    (lambda: fastrnn.LSTMCell(10, 10**12), r"LSTMCell\(input_size=10, hidden_size=1000000000000\b"),
    (lambda: fastrnn.RNNCell(10**13, 4, nonlinearity="relu"), r"input_size=10000000000000\b"),
    (lambda: fastrnn.GRUCell(7, 3 * 10**9), r"hidden_size=3000000000\b"),
], ids=["LSTM hidden", "RNN input", "GRU float64", "LSTM proj", "LSTM input", "LSTMCell", "RNNCell", "GRUCell"])
def test_weights_larger_than_memory(make, named, deadline):
    message = refused(ValueError, MEMORY, make)
    assert re.search(named, message), message
    assert "weights" in message and ("float64" if "float64" in message else "float32") in message


def test_config_checks_its_sizes():
    with pytest.raises(TypeError, match=r"hidden_size: expected an int >= 1, got float 4.0"):
        RNNConfig("LSTM", False, 3, 4.0)
    with pytest.raises(ValueError, match=r"input_size: expected an int >= 1, got 0"):
        RNNConfig("GRU", False, 0, 4)
    with pytest.raises(ValueError, match=r"num_layers: expected at most 65536, got 70000"):
        RNNConfig("RNN", False, 3, 4, 70000)
    with pytest.raises(ValueError, match=r"proj_size: must be smaller than hidden_size \(4\), got 4"):
        RNNConfig("LSTM", False, 3, 4, proj_size=4)
    with pytest.raises(ValueError, match=r"proj_size: only an LSTM \(not a cell\) has a projection, got 2 for GRU"):
        RNNConfig("GRU", False, 3, 4, proj_size=2)
    assert RNNConfig("LSTM", False, np.int64(3), 4).input_size == 3
    with pytest.raises(ValueError, match=MEMORY):
        RNNConfig("LSTM", False, 10, 10**12).check_memory()


@pytest.mark.parametrize("config", [
    RNNConfig("LSTM", False, 5, 37, 3, True, 11),
    RNNConfig("GRU", False, 64, 16, 2, False, linear_before_reset=False),
    RNNConfig("RNN", False, 1, 1, 4, True, bias=False),
    RNNConfig("LSTM", True, 9, 20, peepholes=True),
    RNNConfig("GRU", True, 3, 130),
], ids=str)
@pytest.mark.parametrize("dtype,precision", [(np.float32, None), (np.float64, None), (np.float32, "bfloat16"),
                                             (np.float32, "int8")], ids=["float32", "float64", "bfloat16", "int8"])
def test_weight_bytes_is_a_lower_bound(config, dtype, precision):
    """What the check counts (without the bookkeeping per layer) is at most what a built module holds in arrays:
    the engine's panels (of the precision's format, int8's scales and sums), biases and peepholes plus the
    module's torch-named vectors, and for bfloat16 / int8 the float32 weights it keeps for state_dict."""
    module = config.build(dtype=dtype, precision=precision)
    held = sum(a.nbytes for layer in module._layers for a in layer.arrays)
    kept = {id(v): v for v in list(module._biases.values()) + list((module._pending or {}).values())}
    assert (module._pending is not None) == (precision is not None)
    held += sum(v.nbytes for v in kept.values())
    layers = 1 if config.cell else config.num_layers
    counted = config.weight_bytes(dtype, precision) - (2 if config.bidirectional else 1) * layers * 2048
    assert 0 < counted <= held, (counted, held)
    # and close to it: the engine's summed bias (and GRU's b_hn) is all that is not counted, and the 64 bytes a
    # panel of a tiny matrix (an RNN's 1 x 1) takes at least
    slack = (4 * config.hidden_size + 16) * np.dtype(dtype).itemsize * 2 * layers
    assert held - counted <= slack + 3 * 64 * 2 * layers, (counted, held)


def test_reduced_weights_are_counted_in_their_format():
    """int8 panels take a quarter of float32's (plus a scale and a sum per row), bfloat16 half; both modules keep
    the float32 weights too, so they need more than a float32 module, and the refusal says so."""
    config = RNNConfig("LSTM", False, 256, 512, 2)
    f32, bf16, i8 = (config.weight_bytes(np.float32, p) for p in (None, "bfloat16", "int8"))
    matrices = 4 * 512 * (256 + 512 + 512 + 512) * 4  # both layers' float32 matrices, unpadded
    scales_and_sums = 4 * (4 * 512) * 8  # four matrices of 4 * 512 rows
    assert bf16 == f32 + matrices // 2 and i8 == f32 + matrices // 4 + scales_and_sums
    with pytest.raises(ValueError, match=r"needs at least .* for its int8 weights \(and their float32 copy\)"):
        fastrnn.LSTM(10, 10**6, precision="int8")


def test_the_bound_is_this_machine_memory(monkeypatch):
    """A module one byte over the machine's memory is refused; one that fits is built."""
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 1 << 20 <= _memory.machine_memory() <= ram  # the RAM, or a cgroup's limit below it
    config = RNNConfig("LSTM", False, 8, 16, 2)
    needed = config.weight_bytes(np.float32)
    monkeypatch.setattr(_memory, "machine_memory", lambda: needed - 1)
    with pytest.raises(ValueError, match=r"LSTM\(input_size=8, hidden_size=16, num_layers=2.*needs at least"):
        fastrnn.LSTM(8, 16, num_layers=2)
    monkeypatch.setattr(_memory, "machine_memory", lambda: needed)
    assert fastrnn.LSTM(8, 16, num_layers=2).config == config


def test_describe():
    assert _memory.describe(1000) == "1000 bytes"
    assert _memory.describe(1536) == "1.5 KB"
    assert _memory.describe(3 * TB) == "3.0 TB"
    assert _memory.describe(10**30) == "827180.6 YB"


# ---- calls: outputs and work buffers, counted before anything is allocated -------------------------------------

def huge(shape, dtype=np.float32):
    """An array of any shape that costs nothing: one zero, broadcast (stride 0)."""
    return np.broadcast_to(np.zeros((1,) * len(shape), dtype), shape)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [False, True])
def test_call_whose_output_would_not_fit(batch_first, lengths, deadline):
    module = fastrnn.LSTM(1, 4096, batch_first=batch_first)
    shape = (1000, 10**5, 1) if batch_first else (10**5, 1000, 1)
    kwargs = {"lengths": np.full(1000, 10**5)} if lengths else {}
    message = refused(MemoryError, r"input of shape \(.*\): " + MEMORY, lambda: module(huge(shape), **kwargs))
    assert str(shape) in message and "LSTM(1, 4096" in message


def test_unbatched_call_whose_output_would_not_fit(deadline):
    module = fastrnn.GRU(2, 2048, num_layers=3, bidirectional=True)
    refused(MemoryError, r"input of shape \(10000000000, 2\): " + MEMORY, lambda: module(huge((10**10, 2))))


def test_cell_call_whose_output_would_not_fit(deadline):
    cell = fastrnn.LSTMCell(1, 4096)
    refused(MemoryError, r"input of shape \(1000000000, 1\): " + MEMORY, lambda: cell(huge((10**9, 1))))


def test_stream_batch_size_that_would_not_fit(deadline):
    module = fastrnn.LSTM(10, 10, num_layers=2)
    message = refused(ValueError, r"batch_size=10000000000000: " + MEMORY, lambda: module.stream(batch_size=10**13))
    assert "stream of LSTM(input_size=10, hidden_size=10, num_layers=2" in message
    refused(ValueError, r"batch_size=10000000000000: " + MEMORY, lambda: fastrnn.GRUCell(3, 5).stream(10**13))


def test_stream_chunk_whose_output_would_not_fit(deadline, rng):
    stream = fastrnn.GRU(1, 512).stream(batch_size=1000)
    refused(MemoryError, r"chunk of shape \(1000000, 1000, 1\): needs at least 1.9 TB for its output",
            lambda: stream(huge((10**6, 1000, 1))))
    x = rng.standard_normal((3, 1000, 1)).astype(np.float32)  # still usable, and a refused shape is not remembered
    assert stream(x).shape == (3, 1000, 512)
    with pytest.raises(MemoryError):
        stream(huge((10**6, 1000, 1)))


# ---- weights that claim huge shapes -------------------------------------------------------------------------

def test_find_rnns_and_load_refuse_claimed_huge_shapes(deadline):
    shapes = {"rnn.weight_ih_l0": (4 * 10**12, 10), "rnn.weight_hh_l0": (4 * 10**12, 10**12)}
    (found,) = fastrnn.find_rnns(shapes)
    assert found.config is None and re.search(r"rnn.weight_ih_l0: LSTM\(input_size=10, hidden_size=10+\b.*"
                                              + MEMORY, found.problem), found.problem
    arrays = {"gru.weight_ih_l0": huge((3 * 2**20, 2**20)), "gru.weight_hh_l0": huge((3 * 2**20, 2**20))}
    refused(fastrnn.LoadError, r"state_dict: gru.weight_ih_l0: GRU\(input_size=1048576, hidden_size=1048576\b.*"
            + MEMORY, lambda: fastrnn.load(arrays))


def test_load_counts_the_precision_asked_for(monkeypatch):
    """fastrnn.load counts a file's weights in the dtype and precision asked for (a LoadError naming the key when
    they would not fit); find_rnns, which cannot know them, in the one that needs least: an RNN with one hidden
    unit pads its float32 panels sixteenfold, so its int8 weights fit where its float32 ones do not."""
    rng = np.random.default_rng(0)
    arrays = {"rnn.weight_ih_l0": rng.standard_normal((1, 4000)).astype(np.float32),
              "rnn.weight_hh_l0": np.ones((1, 1), np.float32)}
    config = RNNConfig("RNN", False, 4000, 1, bias=False)
    f32, i8 = config.weight_bytes(np.float32), config.weight_bytes(np.float32, "int8")
    assert i8 < f32
    monkeypatch.setattr(_memory, "machine_memory", lambda: (i8 + f32) // 2)
    (found,) = fastrnn.find_rnns(arrays)
    assert found.problem is None and found.config == config
    assert fastrnn.load(arrays, precision="int8").precision == "int8"
    with pytest.raises(fastrnn.LoadError, match=r"rnn.weight_ih_l0: RNN\(input_size=4000.*float32 weights, more than"):
        fastrnn.load(arrays)
    with pytest.raises(fastrnn.LoadError, match=r"float64 weights, more than"):
        fastrnn.load(arrays, dtype=np.float64, precision="float64")


# ---- the engine: no size product wraps around --------------------------------------------------------------

@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_engine_size_products_are_checked(precision, rng):
    """The engine's entry points take sizes from their callers: a product that would wrap is an OverflowError, not a
    small count that passes the buffer checks (int8: the scratch also holds the converted rows)."""
    module = fastrnn.LSTM(3, 5, precision=precision)
    module(np.zeros((1, 1, 3), np.float32))
    layer = module._layers[0]
    x, h, c = np.zeros((4, 3), np.float32), np.zeros((1, 4, 5), np.float32), np.zeros((1, 4, 5), np.float32)
    out, scratch = np.zeros((4, 5), np.float32), np.zeros(layer.scratch_size(1, 4), np.float32)
    for T, B in ((2**62, 4), (4, 2**62), (2**31, 2**33)):
        with pytest.raises(OverflowError, match="more than any buffer can hold"):
            layer.forward(x, T, B, False, h, c, out, scratch)
    with pytest.raises(ValueError, match="negative size"):
        layer.forward(x, -1, 4, False, h, c, out, scratch)
    with pytest.raises(OverflowError):
        layer.scratch_size(2, 2**62)
    for format in ("float", "bfloat16", "int8"):
        with pytest.raises(OverflowError):
            _engine.pack(4, 2**61, 2, np.zeros((4, 2), np.float32), format)
        with pytest.raises(OverflowError):
            _engine.pack(1, 2**31, 2**31, np.zeros((4, 2), np.float32), format)
    with pytest.raises(OverflowError):
        _engine.Stack([layer], 2**62)
    with pytest.raises(ValueError, match="'scratch': holds"):  # a scratch one item short of what it counts
        layer.forward(x, 1, 4, False, h, c, out, scratch[:-1])
    layer.forward(x, 1, 4, False, h, c, out, scratch)  # the same buffers, true sizes: runs


def test_run_layers_checks_its_arguments(rng):
    """run_layers (a module's call, engine/calls.pxi) takes sizes and buffers from its caller: products that would
    wrap, states or input too small, layers that do not chain, and non-layers are refused, naming what is wrong."""
    module = fastrnn.LSTM(3, 5, num_layers=2)
    layers = module._layers
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    h, c = np.zeros((2, 4, 5), np.float32), np.zeros((2, 4, 5), np.float32)
    out = _engine.run_layers(layers, x, 2, 4, False, h, c, None, [])
    assert out.shape == (2, 4, 5) and np.array_equal(out, module(x)[0])
    for T, B in ((2**62, 4), (4, 2**62), (2**31, 2**33)):
        with pytest.raises(OverflowError, match="more than any buffer can hold"):
            _engine.run_layers(layers, x, T, B, False, h, c, None, [])
    with pytest.raises(ValueError, match="'h': holds 20 items, needs 40"):
        _engine.run_layers(layers, x, 2, 4, False, h[:1], c, None, [])
    with pytest.raises(ValueError, match="'c': holds"):
        _engine.run_layers(layers, x, 2, 4, False, h, c[:1], None, [])
    with pytest.raises(ValueError, match="'x': holds"):
        _engine.run_layers(layers, x[:1], 2, 4, False, h, c, None, [])
    with pytest.raises(ValueError, match=r"layers\[1\] takes 3 inputs, layers\[0\] gives 5"):
        _engine.run_layers([layers[0], layers[0]], x, 2, 4, False, h, c, None, [])
    with pytest.raises(ValueError, match=r"layers\[1\] differs"):
        _engine.run_layers([layers[0], fastrnn.GRU(5, 5)._layers[0]], x, 2, 4, False, h, c, None, [])
    with pytest.raises(TypeError, match=r"layers\[0\] must be a Layer"):
        _engine.run_layers(["layer"], x, 2, 4, False, h, c, None, [])
    with pytest.raises(ValueError, match="active: expected 2 entries"):
        _engine.run_layers(layers, x, 2, 4, False, h, c, np.array([4], np.intp), [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_projection_blocks_follow_block_bytes_and_block_rows(dtype):
    """A direction projects blocks of timesteps of at most block_bytes of gate rows, or enough steps for block_rows
    rows when that is more, never more than T: pinned through the scratch each call needs, which grows with the
    block (the first block size whose scratch equals the call's is the block the call uses)."""
    module = fastrnn.LSTM(8, 64, dtype=dtype)  # 256 gate rows
    module(np.zeros((1, 1, 8), dtype))
    layer = module._layers[0]
    row = 256 * np.dtype(dtype).itemsize

    def block(T, B):
        size = layer.scratch_size(T, B)
        return next(steps for steps in range(1, T + 1) if layer.scratch_size(steps, B) == size)

    for block_bytes, block_rows in ((1 << 19, 128), (1, 128), (1 << 19, 1), (1, 1)):
        with tuned(block_bytes=block_bytes, block_rows=block_rows):
            for T, B in ((1000, 1), (50, 1), (100, 3), (100, 64), (20, 256)):
                want = max(1, min(T, int(max(block_bytes / (B * row), math.ceil(block_rows / B)))))
                where = f"{dtype.__name__} block_bytes={block_bytes} block_rows={block_rows} T={T} B={B}"
                assert block(T, B) == want, where


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_set_tuning_refuses_values_that_are_no_size(value):
    """Tuning thresholds become sizes and counts in the engine: NaN, infinity and negatives are refused, naming the
    field, and nothing changes (not even the fields named before the bad one)."""
    before = _engine.tuning()
    with pytest.raises(ValueError, match=r"set_tuning: block_rows must be a finite number >= 0, got"):
        _engine.set_tuning(block_bytes=1024, block_rows=value)
    assert _engine.tuning() == before
    with pytest.raises(ValueError, match="unknown threshold 'block_row'"):
        _engine.set_tuning(block_row=1)


def test_config_counts_the_engines_wide_copies():
    """fastrnn.config (imported by file readers, which must not load the engine) keeps its own copy of the engine's
    bound for widened bf16 copies, counted by weight_bytes: the two agree."""
    from fastrnn import config
    assert config.WIDE_COPY_BYTES == _engine.WIDE_COPY_BYTES

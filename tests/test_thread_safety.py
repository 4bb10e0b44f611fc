"""What the README promises about threads, under stress: 8 Python threads share one module, each with its own calls
(batch sizes, lengths, sequence lengths), or each with its own stream of it, with 1 and 2 fastrnn threads (the
engine's worker then contended for by every caller); results bitwise equal to the same calls made one at a time.
Also: the thread budget changed while calls run; weights loaded while calls run (each call sees one set of weights
whole, and a load is never undone by a call packing the weights before it); a module's first calls at once.

The engine is deterministic whatever its thread count (each unit's arithmetic is the same on any thread), so every
comparison is exact. Python's switch interval is shortened so the threads interleave between bytecodes far more
often than by default."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import fastrnn
from conftest import make_module, randn, tuned

THREADS = 8


@pytest.fixture(autouse=True)
def interleave():
    """Thread switches every microsecond (default 5 ms), and the thread budget restored afterwards."""
    interval, budget = sys.getswitchinterval(), fastrnn.get_num_threads()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)
    fastrnn.set_num_threads(budget)


def run_threads(work, count=THREADS):
    """work(i) in `count` threads started together; returns their results, re-raising the first error."""
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)

    def target(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test's thread)
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def same(got, want, what):
    """Bitwise equality of (out, states) results."""
    got, want = _flat(got), _flat(want)
    assert len(got) == len(want), what
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True), (
            f"{what}: array {i} differs (max |diff| {np.max(np.abs(a.astype(float) - b)):.3g})")


def _flat(result):
    out, states = result
    return [out] + (list(states) if isinstance(states, tuple) else [states])


def calls(rng, module, count):
    """`count` different calls: batch sizes 1..9, sequence lengths 1..40, variable lengths in half of them."""
    made = []
    for _ in range(count):
        T, B = int(rng.integers(1, 41)), int(rng.integers(1, 10))
        shape = (B, T, module.input_size) if module.batch_first else (T, B, module.input_size)
        lengths = rng.integers(1, T + 1, size=B) if rng.random() < 0.5 else None
        made.append((randn(rng, shape, module.dtype), lengths))
    return made


MODULES = {
    "LSTM bidirectional": dict(kind="LSTM", input_size=12, hidden_size=40, num_layers=2, bidirectional=True),
    "GRU batch_first": dict(kind="GRU", input_size=7, hidden_size=70, num_layers=2, batch_first=True),
    "LSTMP": dict(kind="LSTMP", input_size=9, hidden_size=33, proj_size=17),
}


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def budget(request):
    """fastrnn's thread budget; with 2, the engine's worker joins every call it can (no minimum work), so the
    concurrent callers contend for it: one leads a team, the others run alone."""
    fastrnn.set_num_threads(request.param)
    with tuned(parallel_min_flops=0, split_min_step_flops=0, split_min_call_flops=0):
        yield request.param


@pytest.mark.parametrize("name", MODULES)
def test_threads_share_one_module(name, budget, rng):
    options = dict(MODULES[name])
    module = make_module(options.pop("kind"), rng, np.float32, **options)
    _share(module, name, rng)


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_threads_share_one_reduced_module(precision, budget, rng):
    """bfloat16 / int8 weights: each call converts its rows into its own scratch, never into the shared weights."""
    module = fastrnn.LSTM(12, 40, num_layers=2, bidirectional=True, precision=precision)
    module.load_state_dict(make_module("LSTM", rng, input_size=12, hidden_size=40, num_layers=2,
                                       bidirectional=True).state_dict())
    _share(module, f"LSTM {precision}", rng)


def _share(module, name, rng):
    work = [calls(rng, module, 6) for _ in range(THREADS)]
    serial = [[module(x, lengths=n) for x, n in mine] for mine in work]
    for round_ in range(3):
        parallel = run_threads(lambda i: [module(x, lengths=n) for x, n in work[i]])
        for i in range(THREADS):
            for j, (got, want) in enumerate(zip(parallel[i], serial[i])):
                same(got, want, f"{name}, round {round_}, thread {i}, call {j}")


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell"])
def test_threads_share_one_cell(name, budget, rng):
    cell = getattr(fastrnn, name)(6, 50)
    cell.load_state_dict({k: randn(rng, v.shape, scale=0.3) for k, v in cell.state_dict().items()})
    work = [[(randn(rng, (int(rng.integers(1, 9)), 6)), randn(rng, (50,))) for _ in range(10)]
            for _ in range(THREADS)]

    def step(x, h):
        h = np.broadcast_to(h, (len(x), 50))
        return cell(x, (h, h) if name == "LSTMCell" else h)

    serial = [[step(x, h) for x, h in mine] for mine in work]
    for i, mine in enumerate(run_threads(lambda i: [step(x, h) for x, h in work[i]])):
        for j, (got, want) in enumerate(zip(mine, serial[i])):
            assert np.array_equal(np.asarray(got), np.asarray(want)), f"{name}: thread {i}, call {j}"


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH", "LSTMP"])
def test_threads_each_own_a_stream(kind, budget, rng):
    """Each thread streams its own sequence through its own stream of one shared module, in chunks of its own
    sizes; a stream gives bitwise the same whatever the chunks, so each must equal its sequence run in one call."""
    module = make_module(kind, rng, np.float64 if kind == "GRU" else np.float32, input_size=10, hidden_size=48,
                         num_layers=2)
    batches = [int(rng.integers(1, 5)) for _ in range(THREADS)]
    sequences = [randn(rng, (int(rng.integers(20, 60)), B, 10), module.dtype) for B in batches]
    streams = [module.stream(B) for B in batches]
    serial = [(stream(x), stream.state) for stream, x in zip(streams, sequences)]

    def stream_in_chunks(i):
        stream, x, t, out = module.stream(batches[i]), sequences[i], 0, []
        chunks = np.random.default_rng(i)
        while t < len(x):
            size = int(chunks.integers(1, 8))
            out.append(stream(x[t:t + size]))
            t += size
        return np.concatenate(out), stream.state

    for i, got in enumerate(run_threads(stream_in_chunks)):
        same(got, serial[i], f"{kind}: thread {i}'s stream against its serial run")


def test_thread_budget_changed_while_calls_run(rng):
    """set_num_threads from one thread while seven others call the module: the budget is read once per call and
    the results do not depend on it."""
    module = make_module("LSTM", rng, np.float32, input_size=12, hidden_size=64, num_layers=2, bidirectional=True)
    work = [calls(rng, module, 5) for _ in range(THREADS - 1)]
    fastrnn.set_num_threads(1)
    serial = [[module(x, lengths=n) for x, n in mine] for mine in work]
    done = threading.Event()

    def job(i):
        if i == THREADS - 1:
            n = 0
            while not done.is_set():
                fastrnn.set_num_threads(1 + n % 2)
                n += 1
            return n
        try:
            return [module(x, lengths=n) for _ in range(3) for x, n in work[i]]
        finally:
            if i == 0:
                done.set()

    with tuned(parallel_min_flops=0, split_min_step_flops=0, split_min_call_flops=0):
        results = run_threads(job)
    assert results[-1] >= 2, "the budget never changed while calls ran"
    for i in range(THREADS - 1):
        for j, got in enumerate(results[i]):
            same(got, serial[i][j % len(work[i])], f"thread {i}, call {j}")


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("first", ["random", "loaded"])
def test_first_calls_at_once(first, precision, rng):
    """The weights are packed into the engine on first use (and, without load_state_dict, drawn at random then):
    8 threads calling a new module at once all see one set of weights, the one it keeps (an int8 module also
    keeps the float32 weights it packed: its state_dict is the one its calls ran)."""
    for attempt in range(5):
        module = fastrnn.GRU(16, 96, num_layers=3, precision=precision)
        if first == "loaded":
            module.load_state_dict(make_module("GRU", rng, input_size=16, hidden_size=96, num_layers=3).state_dict())
        x = randn(rng, (5, 2, 16))
        results = run_threads(lambda i: module(x))
        want = module(x)
        for i, got in enumerate(results):
            same(got, want, f"attempt {attempt}, thread {i}")
        again = fastrnn.GRU(16, 96, num_layers=3, precision=precision)
        again.load_state_dict(module.state_dict())
        same(again(x), want, f"attempt {attempt}: a module given the state_dict")


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_a_load_during_the_first_pack_is_not_undone(precision, rng):
    """A call packing the weights it found (on first use) while another thread loads new ones: the load waits for
    the pack, and the module then runs what was loaded last. Interleaved by hand: the call's packing of layer 0 is
    held until the load has finished or waited 0.5 s for it. A bfloat16 / int8 module keeps the float32 weights it
    packs (for state_dict): the pack must not put the old ones back either."""
    weights = [make_module("GRU", rng, np.float32, input_size=5, hidden_size=20, num_layers=2).state_dict()
               for _ in range(2)]
    x = randn(rng, (4, 2, 5))
    expected = []
    for sd in weights:
        reference = fastrnn.GRU(5, 20, num_layers=2, precision=precision)
        reference.load_state_dict(sd)
        expected.append(reference(x))
    module = fastrnn.GRU(5, 20, num_layers=2, precision=precision)
    module.load_state_dict(weights[0])
    packing, loaded = threading.Event(), threading.Event()
    pack_layer = module._pack_layer

    def held_pack(layer, get):
        if threading.current_thread() is caller:
            packing.set()
            loaded.wait(0.5)
        return pack_layer(layer, get)

    module._pack_layer = held_pack
    caller = threading.Thread(target=lambda: module(x))
    caller.start()
    assert packing.wait(10)
    module.load_state_dict(weights[1])
    loaded.set()
    caller.join()
    same(module(x), expected[1], "after the load")
    assert all(np.array_equal(module.state_dict()[k], weights[1][k]) for k in weights[1])


def test_load_while_calls_run(rng):
    """One thread loads two sets of weights in turn while seven call the module: every call sees one set whole, and
    after each load the loader's own call sees what it loaded (a call packing the old weights must not put them
    back)."""
    module = make_module("LSTM", rng, np.float32, input_size=8, hidden_size=64, num_layers=2)
    weights = [module.state_dict(), make_module("LSTM", rng, np.float32, input_size=8, hidden_size=64,
                                                 num_layers=2).state_dict()]
    x = randn(rng, (6, 3, 8))
    expected = []
    for sd in weights:
        module.load_state_dict(sd)
        expected.append(module(x))
    done = threading.Event()

    def job(i):
        seen = []
        if i == 0:
            try:
                for n in range(60):
                    module.load_state_dict(weights[n % 2])
                    same(module(x), expected[n % 2], f"the loader's call after load {n}")
                    got = module.state_dict()
                    assert all(np.array_equal(got[k], weights[n % 2][k]) for k in got), f"state_dict after load {n}"
            finally:
                done.set()
            return seen
        while not done.is_set():
            out = module(x)
            seen.append(next(k for k in (0, 1, None) if k is None or np.array_equal(out[0], expected[k][0])))
            assert seen[-1] is not None, f"thread {i}: a call saw neither set of weights whole"
            same(out, expected[seen[-1]], f"thread {i}")
        return seen

    results = run_threads(job)
    assert any(results[1:]), "no call ran while the weights were being loaded"

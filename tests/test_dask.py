"""fastrnn.dask on a real LocalCluster (2 worker processes, 1 thread each): the results one process gives, the
model loaded once per worker, one thread per task, errors naming the sequence.

Expected values come from direct module calls in this process: on the batches fastrnn.dask promises (sorted by
length, batch_size per call, lengths=) they must agree bitwise; on other batchings and against torch, to the
tolerance of conftest.assert_close.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("dask", reason="fastrnn.dask needs dask: pip install 'fastrnn[dask]'")
pytest.importorskip("distributed", reason="the cluster tests need distributed: pip install 'fastrnn[dask]'")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import fastrnn  # noqa: E402
import fastrnn.dask  # noqa: E402
from conftest import assert_close, make_pair, randn, run_torch  # noqa: E402

I = 6  # input_size of every test model


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            yield c


@pytest.fixture
def one_thread():
    """The workers' thread count in this process, for bitwise comparisons; restored afterwards."""
    before = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1)
    yield
    fastrnn.set_num_threads(before)


def sequences(rng, n, max_len=40):
    return [randn(rng, (int(t), I)) for t in rng.integers(1, max_len + 1, size=n)]


def split(seqs, rng, npartitions):
    """seqs cut at random points into npartitions lists (some may be empty), and the bag made of them."""
    cuts = np.sort(rng.integers(0, len(seqs) + 1, size=npartitions - 1))
    parts = [seqs[a:b] for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(seqs)])]
    return parts, db.from_delayed([dask.delayed(list)(p) for p in parts])


def expected(module, parts, batch_size, output):
    """What run() promises, computed here with module calls: per partition, sequences sorted by decreasing
    length (ties in order), batch_size per call, padded to the batch's longest, run with lengths=."""
    D = module.num_directions
    results = []
    for part in parts:
        lengths = [len(s) for s in part]
        order = sorted(range(len(part)), key=lambda i: -lengths[i])
        found = {}
        for start in range(0, len(part), batch_size):
            rows = order[start:start + batch_size]
            x = np.zeros((lengths[rows[0]], len(rows), I), np.float32)
            for b, i in enumerate(rows):
                x[:lengths[i], b] = part[i]
            if module.batch_first:
                x = np.ascontiguousarray(x.transpose(1, 0, 2))
            out, state = module(x, lengths=[lengths[i] for i in rows])
            if module.batch_first:
                out = out.transpose(1, 0, 2)
            h, c = state if isinstance(state, tuple) else (state, None)
            for b, i in enumerate(rows):
                if output == "sequence":
                    found[i] = out[:lengths[i], b]
                elif output == "last":
                    found[i] = np.concatenate(list(h[-D:, b]))
                else:
                    found[i] = h[:, b] if c is None else (h[:, b], c[:, b])
        results += [found[i] for i in range(len(part))]
    return results


def assert_equal_results(got, want, what):
    assert len(got) == len(want), f"{what}: {len(got)} results, expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        for a, b in zip(g, w) if isinstance(w, tuple) else [(g, w)]:
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), f"{what}: result {k} differs"


CASES = [  # kind, options: every kind, bidirectional, proj_size, batch_first, several layers
    ("LSTM", dict(num_layers=2)),
    ("LSTMP", dict(bidirectional=True, batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("RNN_TANH", dict(batch_first=True)),
    ("RNN_RELU", dict(bidirectional=True)),
]


@pytest.mark.parametrize("kind,options", CASES, ids=[c[0] + "-" + "-".join(c[1]) for c in CASES])
def test_run_equals_module_calls_on_the_same_batches(client, one_thread, rng, seed, kind, options):
    _, module = make_pair(kind, rng, input_size=I, hidden_size=10, **options)
    seqs = sequences(rng, int(rng.integers(20, 60)))
    parts, bag = split(seqs, rng, int(rng.integers(1, 6)))
    batch_size = int(rng.integers(1, 12))
    for output in ("sequence", "last", "state"):
        got = fastrnn.dask.run(module, bag, batch_size=batch_size, output=output).compute()
        assert_equal_results(got, expected(module, parts, batch_size, output), f"{output} (seed={seed})")


def test_last_is_the_final_step_of_each_direction(client, rng, seed):
    """'last' = [forward h after step T_i - 1, reverse h after step 0], read off the output sequence."""
    _, module = make_pair("LSTMP", rng, input_size=I, hidden_size=12, num_layers=2, bidirectional=True)
    bag = db.from_sequence(seqs := sequences(rng, 30), npartitions=3)
    outs, lasts = dask.compute(fastrnn.dask.run(module, bag), fastrnn.dask.run(module, bag, output="last"))
    P = module.proj_size
    for k, (out, last) in enumerate(zip(outs, lasts)):
        assert out.shape == (len(seqs[k]), 2 * P) and last.shape == (2 * P,)
        assert np.array_equal(last, np.concatenate([out[-1, :P], out[0, P:]])), f"sequence {k} (seed={seed})"


def test_any_partitioning_agrees_with_torch(client, rng, seed):
    tmod, module = make_pair("LSTMP", rng, input_size=I, hidden_size=12, num_layers=2, bidirectional=True)
    seqs = sequences(rng, 40, max_len=60)
    want = [run_torch(tmod, s) for s in seqs]  # one unbatched torch call per sequence
    for npartitions, batch_size in ((1, 64), (7, 5), (40, 1)):
        bag = db.from_sequence(seqs, npartitions=npartitions)
        outs, states = dask.compute(fastrnn.dask.run(module, bag, batch_size=batch_size),
                                    fastrnn.dask.run(module, bag, batch_size=batch_size, output="state"))
        for k, (out, (h, c), (t_out, (t_h, t_c))) in enumerate(zip(outs, states, want)):
            what = f"{npartitions} partitions, batch_size {batch_size}, sequence {k}"
            assert_close(out, t_out, np.float32, what + " out", seed)
            assert_close(h, t_h, np.float32, what + " h_n", seed)
            assert_close(c, t_c, np.float32, what + " c_n", seed)


@pytest.mark.parametrize("lengths_as", ["numpy", "dask", "none"])
def test_run_array(client, one_thread, rng, seed, lengths_as):
    tmod, module = make_pair("GRU", rng, input_size=I, hidden_size=8, bidirectional=True)
    N, T = 23, 30
    x = randn(rng, (N, T, I))
    lengths = rng.integers(1, T + 1, size=N) if lengths_as != "none" else np.full(N, T)
    given = {"numpy": lengths, "dask": da.from_array(lengths, chunks=5), "none": None}[lengths_as]
    chunks = (9, 4, 10)
    dx = da.from_array(x, chunks=(chunks, T, I))
    y, last, h_n = dask.compute(*(fastrnn.dask.run_array(module, dx, lengths=given, batch_size=3, output=output)
                                  for output in ("sequence", "last", "state")))
    # Bitwise: the blocks' rows through the same batches, by the bag's rule.
    parts = np.split(np.arange(N), np.cumsum(chunks)[:-1])
    seqs = [[x[i, :lengths[i]] for i in rows] for rows in parts]
    want = expected(module, seqs, 3, "sequence")
    for i in range(N):
        assert np.array_equal(y[i, :lengths[i]], want[i]), f"row {i} (seed={seed})"
        assert not y[i, lengths[i]:].any(), f"row {i}: nonzero past its length (seed={seed})"
    assert np.array_equal(last, np.stack(expected(module, seqs, 3, "last"))), f"seed={seed}"
    assert np.array_equal(h_n, np.stack(expected(module, seqs, 3, "state"))), f"seed={seed}"
    # And what one call on all of x gives, to rounding.
    out, h = module(x.transpose(1, 0, 2), lengths=lengths)
    assert_close(y, out.transpose(1, 0, 2), np.float32, "out vs one module call", seed)
    assert_close(h_n, h.transpose(1, 0, 2), np.float32, "h_n vs one module call", seed)


def test_run_array_lstm_state_is_a_pair(client, rng, seed):
    _, module = make_pair("LSTM", rng, input_size=I, hidden_size=8, num_layers=2)
    x, lengths = randn(rng, (10, 12, I)), rng.integers(1, 13, size=10)
    h_n, c_n = dask.compute(*fastrnn.dask.run_array(module, da.from_array(x, chunks=4), lengths=lengths,
                                                     output="state"))
    _, (h, c) = module(x.transpose(1, 0, 2), lengths=lengths)
    assert_close(h_n, h.transpose(1, 0, 2), np.float32, "h_n", seed)
    assert_close(c_n, c.transpose(1, 0, 2), np.float32, "c_n", seed)


def test_model_file_is_loaded_once_per_worker(client, one_thread, rng, tmp_path):
    import torch

    tmod, _ = make_pair("GRU", rng, input_size=I, hidden_size=8, num_layers=2)
    path = tmp_path / "model.pt"
    torch.save({"epoch": 3, "model": {("encoder.rnn." + k): v for k, v in tmod.state_dict().items()}}, path)
    seqs = sequences(rng, 60)
    parts, bag = split(seqs, rng, 8)
    client.run(fastrnn.dask.clear_cache)
    for _ in range(2):  # two computations, 8 tasks each
        got = fastrnn.dask.run(path, bag, batch_size=4, prefix="encoder.rnn").compute()
        assert_equal_results(got, expected(fastrnn.load(path, prefix="encoder.rnn"), parts, 4, "sequence"), "path")
    info = client.run(fastrnn.dask.cache_info)  # per worker: {'loads': n, 'models': [content keys]}
    assert all((i["loads"], len(i["models"])) in ((0, 0), (1, 1)) for i in info.values()), info
    assert sum(i["loads"] for i in info.values()) >= 1, info
    # A file that changes after the graph was made is refused on the worker, not silently used.
    late = fastrnn.dask.run(path, bag, prefix="encoder.rnn")
    client.run(fastrnn.dask.clear_cache)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="this worker's file differs"):
        late.compute()


def test_threads_per_task_pinned(client, rng):
    """fastrnn's budget in each worker process is the task's threads: `threads=` or the worker's (1)."""
    _, module = make_pair("GRU", rng, input_size=I, hidden_size=8)
    bag = db.from_sequence(sequences(rng, 8), npartitions=4)
    # 3: no worker's default (the CPUs it may use, here 2 or fewer); None: the workers' OMP_NUM_THREADS, which the
    # nanny sets to 1
    for threads, want in ((3, 3), (None, 1)):
        fastrnn.dask.run(module, bag, threads=threads).compute()
        assert set(client.run(fastrnn.get_num_threads).values()) == {want}


def test_blas_and_openmp_pools_pinned(client, rng):
    """With threadpoolctl (the dask extra installs it), every BLAS and OpenMP pool of a worker process (numpy's
    BLAS at least: fastrnn uses none) is pinned too."""
    pytest.importorskip("threadpoolctl", reason="the pools are pinned through threadpoolctl: pip install fastrnn[dask]")
    _, module = make_pair("GRU", rng, input_size=I, hidden_size=8)
    bag = db.from_sequence(sequences(rng, 8), npartitions=4)

    def pool_threads():
        from threadpoolctl import threadpool_info
        return sorted({pool["num_threads"] for pool in threadpool_info()})

    for threads, want in ((2, 2), (None, 1)):
        fastrnn.dask.run(module, bag, threads=threads).compute()
        assert all(found == [want] for found in client.run(pool_threads).values())


def test_pinning_without_threadpoolctl(monkeypatch):
    """Without threadpoolctl a task still pins fastrnn's budget (and leaves the other pools alone)."""
    from fastrnn import _dask_tasks

    before = fastrnn.get_num_threads()
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # `import threadpoolctl` raises ImportError
    monkeypatch.setattr(_dask_tasks, "_pinned_threads", None)
    try:
        _dask_tasks._pin_threads(3)
        assert fastrnn.get_num_threads() == 3
    finally:
        fastrnn.set_num_threads(before)


def test_a_large_module_enters_the_graph_once(client, rng):
    _, module = make_pair("LSTM", rng, input_size=64, hidden_size=256)
    module(np.zeros((2, 1, 64), np.float32))  # packed: the engine's buffers must not be pickled
    weights = sum(v.nbytes for _, v in module.named_parameters())
    assert weights < len(pickle.dumps(module)) < weights + 10_000
    bag = db.from_sequence([randn(rng, (5, 64)) for _ in range(8)], npartitions=8)
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1MB"}):
        with pytest.warns(UserWarning, match="large graph"):  # the naive recipe ships the module in the graph
            bag.map(lambda s: module(s[:, None])[0]).compute()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fastrnn.dask.run(module, bag).compute()


def test_bad_sequence_fails_with_its_index(client, rng):
    _, module = make_pair("GRU", rng, input_size=I, hidden_size=8)
    seqs = sequences(rng, 12)
    seqs[7] = randn(rng, (5, I + 1))
    bag = db.from_sequence(seqs, npartitions=3)  # partitions of 4: sequence 7 is item 3 of partition 1
    with pytest.raises(ValueError) as local:
        module(seqs[7])
    with pytest.raises(ValueError) as remote:
        fastrnn.dask.run(module, bag).compute()
    assert str(remote.value) == str(local.value).replace("input", "sequence 3 of partition 1", 1)
    with dask.config.set(scheduler="sync"), pytest.raises(ValueError) as in_process:
        fastrnn.dask.run(module, bag).compute()
    assert str(in_process.value) == str(remote.value)

    seqs[7] = np.zeros((0, I), np.float32)
    with pytest.raises(ValueError, match=r"sequence 3 of partition 1: the sequence length must be at least 1, "
                                         r"got shape \(0, 6\)"):
        fastrnn.dask.run(module, db.from_sequence(seqs, npartitions=3)).compute()


def test_nan_is_computed_through(client, one_thread, rng):
    _, module = make_pair("LSTM", rng, input_size=I, hidden_size=8)
    seqs = sequences(rng, 10)
    seqs[4] = randn(rng, (12, I))
    seqs[4][3, 2] = np.nan
    got = fastrnn.dask.run(module, db.from_sequence(seqs, npartitions=1), batch_size=16).compute()
    assert_equal_results(got, expected(module, [seqs], 16, "sequence"), "NaN")
    assert np.isnan(got[4][3:]).all() and not np.isnan(got[4][:3]).any()


def test_run_array_refuses_bad_lengths_naming_the_row(client, rng):
    _, module = make_pair("RNN_TANH", rng, input_size=I, hidden_size=8)
    x = da.from_array(randn(rng, (10, 7, I)), chunks=4)
    bad = np.full(10, 7)
    bad[6] = 0
    with pytest.raises(ValueError, match=r"lengths\[6\]: expected an integer in \[1, 7\]"):
        fastrnn.dask.run_array(module, x, lengths=bad)  # numpy lengths: refused at once
    with pytest.raises(ValueError, match=r"lengths\[6\]: expected an integer in \[1, 7\]"):
        fastrnn.dask.run_array(module, x, lengths=da.from_array(bad, chunks=3)).compute()  # in the task


def test_arguments_refused_before_anything_runs(rng, tmp_path):
    _, module = make_pair("GRU", rng, input_size=I, hidden_size=8)
    bag = db.from_sequence([randn(rng, (3, I))])
    with pytest.raises(ValueError, match="output: expected one of 'sequence', 'last', 'state', got 'all'"):
        fastrnn.dask.run(module, bag, output="all")
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1, got 0"):
        fastrnn.dask.run(module, bag, batch_size=0)
    with pytest.raises(ValueError, match="threads: expected an int >= 1, got 1.5"):
        fastrnn.dask.run(module, bag, threads=1.5)
    with pytest.raises(TypeError, match="prefix: fastrnn.load keywords apply to a model given by path"):
        fastrnn.dask.run(module, bag, prefix="rnn")
    with pytest.raises(TypeError, match="model: expected an RNN, LSTM or GRU module .* got GRUCell"):
        fastrnn.dask.run(fastrnn.GRUCell(I, 8), bag)
    with pytest.raises(TypeError, match="seqs: expected a dask.bag.Bag"):
        fastrnn.dask.run(module, [randn(rng, (3, I))])
    with pytest.raises(ValueError, match=r"x: expected shape \(N, T, input_size=6\), got \(4, 3, 5\)"):
        fastrnn.dask.run_array(module, da.zeros((4, 3, 5)))
    path = tmp_path / "m.npz"
    np.savez(path, **module.state_dict())
    with pytest.raises(TypeError, match="fastrnn.load: got an unexpected keyword argument 'prefx'"):
        fastrnn.dask.run(path, bag, prefx="rnn")


def test_workers_import_this_fastrnn(client):
    assert set(client.run(lambda: __import__("fastrnn").__file__).values()) == {fastrnn.__file__}


def test_import_fastrnn_does_not_import_dask():
    code = "import sys, fastrnn; print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"

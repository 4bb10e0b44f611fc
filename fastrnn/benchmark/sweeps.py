"""Engine tuning sweeps, `fastrnn bench --sweep NAME`: fastrnn alone, timed on both sides of one threshold of
fastrnn._engine.tuning() over the sizes where the choice changes, so the threshold can be read off the table.

    split         one direction's steps split across 2 threads or not     -> split_min_step_flops, split_min_call_flops
    chunks        chunks per split phase                                  -> split_chunks
    block         timesteps of input projection computed at once          -> block_bytes
    gemm          fastrnn's packed-panel product vs scipy's BLAS sgemm on the input projections of the default
                  suite (whether fastrnn needs a BLAS at all; needs scipy and threadpoolctl: the bench extra)
"""
from __future__ import annotations

import numpy as np

from fastrnn._kinds import NUM_GATES
from fastrnn.benchmark import cases, timing
from fastrnn.benchmark.peers import Runner

NEVER, ALWAYS = 1e30, 0.0
REPEAT = 7


def _module(kind, H, I=None, **tuning):
    """A fastrnn module built with these tuning values (packed_* are read when its layers are built)."""
    from fastrnn import _engine

    case = cases.case(kind, I or H, H)
    old = _engine.set_tuning(**tuning)
    try:
        module = case.model.build()
        module.load_state_dict(cases.random_state_dict(case))
        module(np.zeros((1, 1, I or H), np.float32))  # the engine's layers are built now, under these values
    finally:
        _engine.set_tuning(**old)
    return module


def _median_us(variants, x):
    """{name: median us per call} for {name: callable(x)} timed in interleaved rounds."""
    engines = [timing.LocalEngine(Runner(name, call), x) for name, call in variants.items()]
    samples, _ = timing.time_rounds(engines, REPEAT)
    return {name: float(np.median(values)) for name, values in samples.items()}


def _print_table(title, columns, rows):
    print(f"## {title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def split_sweep(threads):
    import fastrnn
    from fastrnn import _engine

    fastrnn.set_num_threads(max(2, threads))
    table = []
    for kind, H in (("LSTM", 128), ("LSTM", 192), ("LSTM", 256), ("LSTM", 384), ("LSTM", 512), ("GRU", 256)):
        module = _module(kind, H)
        for T in (1, 100):
            x = np.random.default_rng(0).standard_normal((T, 1, H)).astype(np.float32)
            res = {}
            for label, value in (("split", ALWAYS), ("one thread", NEVER)):
                old = _engine.set_tuning(split_min_step_flops=value, split_min_call_flops=value)
                try:
                    res.update(_median_us({label: lambda x: module(x)[0]}, x))
                finally:
                    _engine.set_tuning(**old)
            flops = 2 * NUM_GATES[kind] * H * H
            table.append([f"{kind} {H} T{T}", f"{flops:.1e}", f"{res['split'] / T:.1f}",
                          f"{res['one thread'] / T:.1f}"])
    _print_table("us per step at B=1, split across 2 threads or not", ["case", "flops/step", "split", "one thread"],
                 table)


def chunks_sweep(threads):
    import fastrnn
    from fastrnn import _engine

    fastrnn.set_num_threads(max(2, threads))
    table, counts = [], (2, 4, 8, 16)
    for kind, H, B, T in (("LSTM", 256, 1, 100), ("LSTM", 1024, 1, 20), ("GRU", 512, 1, 100), ("LSTM", 512, 64, 10)):
        module = _module(kind, H)
        x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)
        cells = []
        for chunks in counts:
            old = _engine.set_tuning(split_chunks=chunks, split_min_step_flops=ALWAYS, split_min_call_flops=ALWAYS)
            try:
                cells.append(f"{_median_us({'split': lambda x: module(x)[0]}, x)['split'] / T:.1f}")
            finally:
                _engine.set_tuning(**old)
        table.append([f"{kind} {H} B{B} T{T}", *cells])
    _print_table("us per step, steps split across 2 threads, by chunks per phase",
                 ["case", *[f"{c} chunks" for c in counts]], table)


def block_sweep(threads):
    from fastrnn import _engine

    sizes = (64 << 10, 256 << 10, 1 << 20, 2 << 20, 8 << 20, 1 << 40)
    table = []
    for kind, H, B, T in (("LSTM", 256, 1, 400), ("LSTM", 512, 64, 50), ("GRU", 256, 16, 200), ("LSTM", 1024, 1, 100)):
        module = _module(kind, H)
        x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)
        cells = []
        for size in sizes:
            old = _engine.set_tuning(block_bytes=size)
            try:
                cells.append(f"{_median_us({'b': lambda x: module(x)[0]}, x)['b'] / T:.1f}")
            finally:
                _engine.set_tuning(**old)
        table.append([f"{kind} {H} B{B} T{T}", *cells])
    _print_table(f"us per step by block_bytes ({threads} thread(s))",
                 ["case", *[("whole T" if s >= 1 << 40 else f"{s >> 10} KB") for s in sizes]], table)


def gemm_sweep(threads):
    try:
        from scipy.linalg import blas
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise ValueError(f"--sweep gemm times scipy's BLAS sgemm, which needs scipy and threadpoolctl "
                         f"(pip install \"fastrnn[bench]\"): {exc}") from None

    from fastrnn import _engine

    table = []
    with threadpool_limits(threads, user_api="blas"):
        for case in cases.default_suite():
            m = case.model
            if case.stream:
                continue
            rows = min(case.batch * case.seq_len, max(1, (2 << 20) // (case.batch * NUM_GATES[m.kind] * m.hidden_size
                                                                      * 4)) * case.batch)
            G, H, K = NUM_GATES[m.kind], m.hidden_size, m.input_size
            rng = np.random.default_rng(0)
            x = rng.standard_normal((rows, K)).astype(np.float32)
            w = rng.standard_normal((G * H, K)).astype(np.float32)
            flops = 2 * rows * G * H * K
            panels = _engine.pack(G, H, K, w)
            ours = _median_us({"ours": lambda x: _engine._dense_packed(panels, x)}, x)["ours"]
            theirs = _median_us({"sgemm": lambda x: blas.sgemm(1.0, x, w, trans_b=True)}, x)["sgemm"]
            table.append([f"{case.label}: {rows} x {K} @ {K} x {G * H}", f"{flops / ours / 1e3:.0f}",
                          f"{flops / theirs / 1e3:.0f}"])
    _print_table(f"GFLOP/s of one block's input projection, {threads} thread(s), kernels {_engine.isa()}",
                 ["projection (rows x K @ K x N)", "fastrnn panels", "BLAS sgemm"], table)


SWEEPS = {"split": split_sweep, "chunks": chunks_sweep, "block": block_sweep, "gemm": gemm_sweep}


def run(name, threads):
    import fastrnn
    from fastrnn.benchmark import report

    fastrnn.set_num_threads(threads)
    info = report.machine_info(threads, isolated=False)
    print(f"fastrnn bench --sweep {name}  {info['date']}\nCPU: {info['cpu']} ({' '.join(info['cpu_flags'])}); "
          f"kernels {info['fastrnn_isa']}; threads {threads}\n")
    SWEEPS[name](threads)
    return 0

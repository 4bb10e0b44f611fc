"""Engine tuning sweeps, `fastrnn bench --sweep NAME`: fastrnn alone, timed with both sides of one threshold of
fastrnn._engine.tuning() over the sizes where the choice changes, so the threshold can be read off the table.

    rows          panels vs BLAS in the time loop, over batch rows        -> packed_max_rows
    packed-bytes  panels vs BLAS gemv at one row, over W_hh size          -> packed_max_bytes
    split         one direction's steps split across 2 threads or not     -> split_min_step_flops, split_min_call_flops
    skip-padded   ragged input projection vs one gemm, over used fraction -> skip_padded_fraction
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


def rows_sweep(threads):
    T, counts = 50, (1, 2, 4, 8, 16, 24, 32, 48, 64)
    table = []
    for kind, H in (("LSTM", 64), ("LSTM", 256), ("LSTM", 512), ("GRU", 256)):
        panels = _module(kind, H, packed_max_rows=1 << 20)
        blas = _module(kind, H, packed_max_rows=1)
        cells = []
        for B in counts:
            x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)
            res = _median_us({"panels": lambda x: panels(x)[0], "blas": lambda x: blas(x)[0]}, x)
            cells.append(f"{res['panels'] / T:.1f} / {res['blas'] / T:.1f}")
        table.append([f"{kind} {H}", *cells])
    _print_table(f"us per step, panels / BLAS beyond one row (T={T}, {threads} thread(s))",
                 ["model", *[f"B{B}" for B in counts]], table)


def packed_bytes_sweep(threads):
    T, table = 50, []
    for kind in ("LSTM", "GRU"):
        for H in (256, 512, 768, 1024, 1536):
            panels = _module(kind, H, packed_max_bytes=NEVER)
            blas = _module(kind, H, packed_max_bytes=ALWAYS)
            x = np.random.default_rng(0).standard_normal((T, 1, H)).astype(np.float32)
            res = _median_us({"panels": lambda x: panels(x)[0], "blas": lambda x: blas(x)[0]}, x)
            mb = NUM_GATES[kind] * H * H * 4 / 2**20
            table.append([f"{kind} {H} ({mb:.1f} MB)", f"{res['panels'] / T:.1f}", f"{res['blas'] / T:.1f}"])
    _print_table(f"us per step at B=1 (T={T}, {threads} thread(s))", ["W_hh", "panels", "BLAS gemv"], table)


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


def skip_padded_sweep(threads):
    from fastrnn import _engine

    B, T, H, I = 32, 400, 256, 80
    module = _module("LSTM", H, I)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    table = []
    for used in (0.2, 0.4, 0.6, 0.8, 0.85, 0.9, 1.0):
        lengths = np.clip(np.round(rng.uniform(2 * used - 1, 1, B) * T), 1, T).astype(int) if used < 1 else [T] * B
        res = {}
        for label, value in (("skip padded", 1.0), ("one gemm", -1.0)):
            old = _engine.set_tuning(skip_padded_fraction=value)
            try:
                res.update(_median_us({label: lambda x: module(x, lengths=lengths)[0]}, x))
            finally:
                _engine.set_tuning(**old)
        table.append([f"{np.sum(lengths) / (B * T):.2f}", f"{res['skip padded'] / 1e3:.1f}",
                      f"{res['one gemm'] / 1e3:.1f}"])
    _print_table(f"ms per call, LSTM I{I} H{H} B{B} T{T} with lengths ({threads} thread(s))",
                 ["used fraction", "skip padded", "one gemm"], table)


SWEEPS = {"rows": rows_sweep, "packed-bytes": packed_bytes_sweep, "split": split_sweep,
          "skip-padded": skip_padded_sweep}


def run(name, threads):
    import fastrnn
    from fastrnn.benchmark import report

    fastrnn.set_num_threads(threads)
    info = report.machine_info(threads, isolated=False)
    print(f"fastrnn bench --sweep {name}  {info['date']}\nCPU: {info['cpu']} ({' '.join(info['cpu_flags'])}); "
          f"kernels {info['fastrnn_isa']}; threads {threads}\n")
    SWEEPS[name](threads)
    return 0

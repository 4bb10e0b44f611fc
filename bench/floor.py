"""The floor for each `fastrnn bench` config on this machine, and how far each engine is from it.

    fastrnn bench --json results.json
    python bench/floor.py results.json            # markdown table; without a file: the floors alone

Per timestep an RNN must at least (a) read its recurrent weights (W_hh, and W_hr with a projection: a step
cannot start before the previous one ends, so they are read once per step), plus its input weights W_ih once
per call (one gemm over all timesteps, so 1/T of them per step), and (b) do 2 flops per multiply-add of every
weight with every batch row. The floor per step is max(bytes / bandwidth, flops / gemm peak), where:
  bandwidth = the best measured rate of reading a buffer the size of the model's weights (so it is the L2, L3
              or DRAM rate as the model fits), by scipy's BLAS gemv and by a numpy sum, whichever is faster;
  gemm peak = the best measured scipy sgemm/dgemm rate on 1024^3.
Both are measured with the thread count of the results file (default: all cores). Gate math, the nonlinearities
and call overheads are not counted: the floor is a bound no engine can beat, not a target.
"""
import json
import os
import sys
import time

import numpy as np
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fastrnn._kinds import NUM_GATES  # noqa: E402
from fastrnn.benchmark.cases import Case, default_suite  # noqa: E402


def weight_counts(case):
    """(recurrent weights, input weights, projection weights) as element counts, all layers and directions."""
    m = case.model
    D = 2 if m.bidirectional else 1
    H, P = m.hidden_size, m.out_size
    G = NUM_GATES[m.kind] * H
    recurrent = inputs = proj = 0
    for layer in range(m.num_layers):
        width = m.input_size if layer == 0 else D * P
        inputs += D * G * width
        recurrent += D * G * P
        proj += D * P * H if m.proj_size else 0
    return recurrent, inputs, proj


def _best_seconds(fn, min_time=0.2, rounds=5):
    fn()
    best = float("inf")
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_time / rounds:
            fn()
            calls += 1
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def read_bandwidth(nbytes, dtype):
    """Bytes per second reading a buffer of nbytes (the faster of BLAS gemv and a numpy sum)."""
    dtype = np.dtype(dtype)
    n = max(64, int(np.sqrt(nbytes / dtype.itemsize)))
    a = np.asfortranarray(np.random.default_rng(0).standard_normal((n, n)).astype(dtype))
    x = np.ones(n, dtype=dtype)
    gemv = blas.sgemv if dtype == np.float32 else blas.dgemv
    flat = a.reshape(-1, order="F")
    seconds = min(_best_seconds(lambda: gemv(1.0, a, x)), _best_seconds(lambda: flat.sum()))
    return a.nbytes / seconds


def gemm_peak(dtype):
    dtype = np.dtype(dtype)
    a = np.asfortranarray(np.random.default_rng(0).standard_normal((1024, 1024)).astype(dtype))
    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    return 2 * 1024 ** 3 / _best_seconds(lambda: gemm(1.0, a, a), min_time=1.0)


def floor_rows(configs, threads):
    with threadpool_limits(limits=threads, user_api="blas"):
        peaks = {dtype: gemm_peak(dtype) for dtype in {c.dtype for c in configs}}
        rows = []
        for config in configs:
            itemsize = np.dtype(config.dtype).itemsize
            recurrent, inputs, proj = weight_counts(config)
            T = config.steps_per_call
            step_bytes = (recurrent + proj + inputs / T) * itemsize
            flops = 2 * config.batch * (recurrent + inputs + proj)
            total = (recurrent + inputs + proj) * itemsize
            bandwidth = read_bandwidth(total, config.dtype)
            floor = max(step_bytes / bandwidth, flops / peaks[config.dtype]) * 1e6
            rows.append(dict(label=config.label, weights_mb=total / 1e6, step_bytes=step_bytes, flops=flops,
                             bandwidth=bandwidth, peak=peaks[config.dtype], floor_us=floor))
    return rows


def main(argv):
    results = json.load(open(argv[1])) if len(argv) > 1 else None
    if results:
        configs = [Case.from_dict(row["config"]) for row in results["rows"]]
        threads = results["machine"]["threads"]
        engines = results["engines"]
    else:
        configs, threads, engines = default_suite(), os.cpu_count() or 1, []
    floors = floor_rows(configs, threads)
    print(f"threads {threads}; gemm peak "
          + ", ".join(f"{d}: {p / 1e9:.0f} GFLOP/s" for d, p in sorted({(c.dtype, f['peak']) for c, f in zip(configs, floors)})))
    header = ["config", "weights MB", "KB read/step", "MFLOP/step", "bandwidth GB/s", "floor us/step",
              *[f"{e} us/step (x floor)" for e in engines]]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for index, floor in enumerate(floors):
        cells = [floor["label"], f"{floor['weights_mb']:.2f}", f"{floor['step_bytes'] / 1e3:.1f}",
                 f"{floor['flops'] / 1e6:.3f}", f"{floor['bandwidth'] / 1e9:.0f}", f"{floor['floor_us']:.2f}"]
        for engine in engines:
            entry = results["rows"][index]["engines"].get(engine, {})
            if "us_per_step_median" in entry:
                us = entry["us_per_step_median"]
                cells.append(f"{us:.2f} ({us / floor['floor_us']:.1f}x)")
            else:
                cells.append("n/a")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv)

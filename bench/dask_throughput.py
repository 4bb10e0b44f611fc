"""Throughput of fastrnn.dask.run on a LocalCluster, against the naive recipe; not part of the test run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/dask_throughput.py [--sequences 20000] [--repeats 3]

Workload (issue 14): sequences of 80 features, lengths log-normal (median 200, sigma 1) clipped to 20..2000,
through LSTM(80, 256, num_layers=2); each sequence scored to its final hidden state (output='last': the
results stay small, so the figures are compute, not transfer). The sequences are made inside the tasks,
partition by partition, from fixed seeds, as a real job would read them from files: the graph holds no data.

Timed, each on its own LocalCluster(n_workers=W, threads_per_worker=1, processes=True), the only one running,
after an untimed small run, in interleaved rounds:
- data:      the same bag, only making the sequences (what every figure below includes);
- run:       fastrnn.dask.run(model, seqs, batch_size=16, output="last"), W = 1 and 2;
- naive:     seqs.map(lambda x: model(x[:, None])[1][0][-1, 0]) on 2 workers: one batch-1 call per sequence,
             the module in the task graph, fastrnn's default threads; on the first --naive-partitions
             partitions only (it is slow), and checked against run's results for the same sequences.
Figures are sequences per second, the median over --repeats runs; the last line turns them into float32
GFLOP/s per worker and sets them against one core's sgemm peak (bench/floor.py), the bound on run / naive.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

INPUT, HIDDEN, LAYERS = 80, 256, 2


def draw_lengths(rng, count):
    return np.clip(np.exp(rng.normal(np.log(200), 1.0, size=count)), 20, 2000).astype(int)


def make_partition(index, count, seed):
    """The `count` sequences of partition `index`, the same on every machine."""
    rng = np.random.default_rng([seed, index])
    return [rng.standard_normal((t, INPUT), dtype=np.float32) for t in draw_lengths(rng, count)]


def make_bag(partitions, per_partition, seed):
    import dask.bag as db

    return db.from_sequence(list(partitions), npartitions=len(partitions)).map(
        make_partition, per_partition, seed).flatten()


def cluster(workers):
    from dask.distributed import Client, LocalCluster

    local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return local, Client(local, set_as_default=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=20000)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--naive-partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()

    import fastrnn
    import fastrnn.dask

    per_partition = -(-args.sequences // args.partitions)
    total = per_partition * args.partitions
    naive_total = per_partition * args.naive_partitions
    model = fastrnn.LSTM(INPUT, HIDDEN, num_layers=LAYERS)
    bag = make_bag(range(args.partitions), per_partition, args.seed)
    naive_bag = make_bag(range(args.naive_partitions), per_partition, args.seed)
    steps, naive_steps = (sum(int(draw_lengths(np.random.default_rng([args.seed, p]), per_partition).sum())
                              for p in range(count)) for count in (args.partitions, args.naive_partitions))
    print(f"{total} sequences, {steps} steps (mean length {steps / total:.0f}), {args.partitions} partitions; "
          f"LSTM({INPUT}, {HIDDEN}, num_layers={LAYERS}); batch_size {args.batch_size}; "
          f"median of {args.repeats}")

    small_bag = make_bag(range(2), 8, args.seed)  # the warm-up: one partition per worker

    def data(seqs):
        return seqs.map(lambda s: s[-1, 0]).compute()

    def scored(seqs):
        return fastrnn.dask.run(model, seqs, batch_size=args.batch_size, output="last").compute()

    def naive_scored(seqs):
        return seqs.map(lambda x: model(x[:, None])[1][0][-1, 0]).compute()

    # Each measured on its own cluster, started for that measurement and closed after it: clusters left running
    # beside it (their schedulers, nannies and idle workers) took ~25% from a 2-worker run on this 2-core machine
    # (171 against 220 sequences/s), which leaves no core for them; a user runs one. The naive recipe's workers
    # thus never inherit run()'s thread pinning either. Setups alternate round by round, so load from other work
    # on the machine falls on all of them alike.
    setups = [("data only, 2 workers", 2, data, bag, total),
              ("fastrnn.dask.run, 1 worker", 1, scored, bag, total),
              ("fastrnn.dask.run, 2 workers", 2, scored, bag, total),
              ("naive bag.map, 2 workers", 2, naive_scored, naive_bag, naive_total)]
    times = {name: [] for name, *_ in setups}
    results = {}
    for repeat in range(args.repeats):
        for name, workers, work, seqs, _ in setups:
            local, client = cluster(workers)
            try:
                with client.as_current():
                    work(small_bag)  # untimed: imports, the model reaching every worker
                    time.sleep(1)  # the warm-up's idle threads stop spinning
                    start = time.perf_counter()
                    results[name] = work(seqs)
                    times[name].append(time.perf_counter() - start)
            finally:
                client.close()
                local.close()
            print(f"round {repeat}: {name} {times[name][-1]:.1f} s, load average "
                  f"{open('/proc/loadavg').read().split()[0]}", flush=True)
    rates = {}
    for name, _, _, _, count in setups:
        seconds = statistics.median(times[name])
        rates[name] = count / seconds
        print(f"{name:<30} {seconds:8.2f} s  {rates[name]:9.1f} sequences/s  (runs: "
              f"{', '.join(f'{t:.1f}' for t in times[name])} s)")
    one, two, naive = (rates[name] for name, *_ in setups[1:])
    lasts, naive_lasts = results[setups[2][0]], results[setups[3][0]]
    error = max(float(np.max(np.abs(a - b))) for a, b in zip(naive_lasts, lasts[:naive_total]))
    print(f"2 workers / 1 worker: {two / one:.2f}x; run / naive (2 workers each): {two / naive:.1f}x; "
          f"max |run - naive| on the naive's {naive_total} sequences: {error:.1e}")
    print_compute_bound(one, two, naive, steps / total, naive_steps / naive_total)


def print_compute_bound(one, two, naive, mean_steps, naive_mean_steps):
    """What the figures mean in float32 arithmetic per worker (a worker is a core here): every step multiplies
    every weight once (2 flops), so a recipe's rate is bounded by one core's multiply-add peak, measured here as
    the single-threaded sgemm rate (bench/floor.py). run / naive cannot exceed peak / naive's rate."""
    from threadpoolctl import threadpool_limits

    from floor import gemm_peak

    per_step = 2 * sum(4 * HIDDEN * (inputs + HIDDEN) for inputs in [INPUT] + [HIDDEN] * (LAYERS - 1))
    with threadpool_limits(limits=1, user_api="blas"):
        peak = gemm_peak(np.float32)
    run1, run2 = (rate * mean_steps * per_step / workers / 1e9 for rate, workers in ((one, 1), (two, 2)))
    slow = naive * naive_mean_steps * per_step / 2 / 1e9
    print(f"float32 GFLOP/s per worker: run {run1:.0f} (1 worker), {run2:.0f} (2 workers); naive {slow:.0f}; "
          f"one core's sgemm peak {peak / 1e9:.0f}: run / naive is at most {peak / 1e9 / slow:.1f}x on this CPU")


if __name__ == "__main__":
    main()

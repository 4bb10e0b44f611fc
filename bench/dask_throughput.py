"""Throughput of fastrnn.dask.run on a LocalCluster, against the naive recipe; not part of the test run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/dask_throughput.py [--sequences 20000] [--repeats 3]

Workload (issue 14): sequences of 80 features, lengths log-normal (median 200, sigma 1) clipped to 20..2000,
through LSTM(80, 256, num_layers=2); each sequence scored to its final hidden state (output='last': the
results stay small, so the figures are compute, not transfer). The sequences are made inside the tasks,
partition by partition, from fixed seeds, as a real job would read them from files: the graph holds no data.

Timed, each on a fresh LocalCluster(n_workers=W, threads_per_worker=1, processes=True) after one untimed run:
- data:      the same bag, only making the sequences (what every figure below includes);
- run:       fastrnn.dask.run(model, seqs, batch_size=64, output="last"), W = 1 and 2;
- naive:     seqs.map(lambda x: model(x[:, None])[1][0][-1, 0]) on 2 workers: one batch-1 call per sequence,
             the module in the task graph, fastrnn's default threads; on the first --naive-partitions
             partitions only (it is slow), and checked against run's results for the same sequences.
Figures are sequences per second, the median over --repeats runs.
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


def timed(compute, repeats):
    compute()  # untimed: imports, the model reaching every worker
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = compute()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def on_cluster(workers, work):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            return work()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=20000)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--naive-partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
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
    steps = sum(int(draw_lengths(np.random.default_rng([args.seed, p]), per_partition).sum())
                for p in range(args.partitions))
    print(f"{total} sequences, {steps} steps (mean length {steps / total:.0f}), {args.partitions} partitions; "
          f"LSTM({INPUT}, {HIDDEN}, num_layers={LAYERS}); batch_size {args.batch_size}; "
          f"median of {args.repeats}")

    def report(name, seconds, count):
        print(f"{name:<28} {seconds:8.2f} s  {count / seconds:9.1f} sequences/s", flush=True)
        return count / seconds

    data = on_cluster(2, lambda: timed(lambda: bag.map(lambda s: s[-1, 0]).compute(), args.repeats))[0]
    report("data only, 2 workers", data, total)
    rates, lasts = {}, None
    for workers in (1, 2):
        seconds, lasts = on_cluster(workers, lambda: timed(
            lambda: fastrnn.dask.run(model, bag, batch_size=args.batch_size, output="last").compute(),
            args.repeats))
        rates[workers] = report(f"fastrnn.dask.run, {workers} worker(s)", seconds, total)
    seconds, naive = on_cluster(2, lambda: timed(
        lambda: naive_bag.map(lambda x: model(x[:, None])[1][0][-1, 0]).compute(), args.repeats))
    rates["naive"] = report("naive bag.map, 2 workers", seconds, naive_total)
    error = max(float(np.max(np.abs(a - b))) for a, b in zip(naive, lasts[:naive_total]))
    print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x; run / naive (2 workers): "
          f"{rates[2] / rates['naive']:.1f}x; max |run - naive| on the naive's {naive_total} sequences: {error:.1e}")


if __name__ == "__main__":
    main()

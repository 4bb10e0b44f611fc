"""Packed (variable-length) batch vs the same padded batch run whole, for a skewed length distribution.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/packed_lengths.py [--threads N]

With `lengths=`, finished rows drop out of the per-step matrix work (rows are sorted by length once per call),
so the work is proportional to sum(lengths) instead of B * T. Also timed: torch's packed path, same batch.
Timed by fastrnn's benchmark harness (fastrnn.benchmark.timing): interleaved rounds, medians.
"""
from __future__ import annotations

import argparse

import numpy as np

import fastrnn
from fastrnn.benchmark import timing
from fastrnn.benchmark.peers import Runner


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="LSTM", choices=["LSTM", "GRU", "RNN"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=400)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--input-size", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    B, T = args.batch, args.seq_len
    # Skewed: most rows short, a few long (log-normal, as utterance lengths tend to be), one full length.
    lengths = np.clip(rng.lognormal(np.log(T / 6), 0.8, size=B).astype(int), 1, T)
    lengths[0] = T
    x = rng.standard_normal((T, B, args.input_size)).astype(np.float32)
    fastrnn.set_num_threads(args.threads)
    module = getattr(fastrnn, args.kind)(args.input_size, args.hidden_size)

    runners = [Runner("fastrnn padded (no lengths)", lambda x: module(x)[0]),
               Runner("fastrnn packed (lengths=)", lambda x: module(x, lengths=lengths)[0])]
    try:
        import torch
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        torch.set_num_threads(args.threads)
        tmod = getattr(torch.nn, args.kind)(args.input_size, args.hidden_size)
        tmod.load_state_dict({k: torch.from_numpy(v) for k, v in module.state_dict().items()})

        def torch_packed(x):
            with torch.no_grad():
                packed = pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths), enforce_sorted=False)
                out, _ = tmod(packed)
                return pad_packed_sequence(out, total_length=T)[0].numpy()

        runners.append(Runner("torch packed", torch_packed))
    except ImportError:
        print("torch not installed: torch row skipped")

    engines = [timing.LocalEngine(runner, x) for runner in runners]
    samples, _ = timing.time_rounds(engines, args.rounds, idle_seconds=timing.IDLE_SECONDS if args.threads > 1 else 0)
    print(f"{args.kind} I={args.input_size} H={args.hidden_size} B={B} T={T} threads={args.threads}; "
          f"lengths sum {lengths.sum()} of {B * T} padded steps ({lengths.sum() / (B * T):.0%}), "
          f"median {int(np.median(lengths))}, max {lengths.max()}")
    base = np.median(samples["fastrnn padded (no lengths)"])
    for name, us in samples.items():
        med = np.median(us)
        print(f"  {name:30s} {med / 1e3:9.2f} ms   x{base / med:5.2f} vs padded")


if __name__ == "__main__":
    main()

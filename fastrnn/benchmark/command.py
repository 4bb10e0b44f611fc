"""`fastrnn bench`: which cases to time (the default suite, one case from the shape flags, or a model file), the
run, and what is printed and written. fastrnn/cli.py only parses the arguments."""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from fastrnn.benchmark import cases, peers, report
from fastrnn.benchmark.run import bench_case

SHAPE_FLAGS = ("kind", "input_size", "hidden_size", "layers", "bidirectional", "proj_size", "batch", "seq_len",
               "stream", "dtype")
REDUCED_PRECISIONS = ("bfloat16", "int8")


class UsageError(Exception):
    """A bad combination of options: the command line reports it in one line."""


def bench_cases(args, load_module):
    """[(Case, weights)] for the arguments; load_module(file, prefix, **kw) -> (module, path, prefix)."""
    chosen = {flag for flag in SHAPE_FLAGS if getattr(args, flag) not in (None, False)}
    run = dict(batch=args.batch or 1, seq_len=args.seq_len or 100, stream=args.stream, dtype=args.dtype or "float32",
               precision=args.precision)
    if args.precision is not None and run["dtype"] != "float32":
        raise UsageError(f"--precision {args.precision}: the precisions apply to float32 models; drop --dtype "
                         f"{run['dtype']}")
    if args.model is not None:
        if args.suite is not None:
            raise UsageError(f"--model takes the config from the file; drop --suite {args.suite}")
        shape_only = chosen - {"batch", "seq_len", "stream", "dtype"}
        if shape_only:
            raise UsageError(f"--model takes the shape from the file; drop --{sorted(shape_only)[0].replace('_', '-')}")
        module, path, prefix = load_module(None if args.model == "" else args.model, args.prefix,
                                           dtype=np.dtype(run["dtype"]))
        group = f"{path.name}" + (f" [{prefix}]" if prefix else "")
        return [(cases.Case(module.config, group=group, **run), {"file": str(path), "prefix": prefix})]
    if args.suite is not None and chosen:
        raise UsageError(f"--suite {args.suite} has its own configs; drop --{sorted(chosen)[0].replace('_', '-')}")
    if not chosen:
        suite = cases.precision_suite if args.suite == "precision" else cases.default_suite
        return [(case, {"seed": 0}) for case in suite(args.precision)]
    hidden = args.hidden_size or 256
    kind = (args.kind or "lstm").upper()
    if args.proj_size and kind != "LSTM":
        raise UsageError(f"--proj-size: only lstm has a projection, not {kind.lower()}")
    if (args.proj_size or 0) >= hidden:
        raise UsageError(f"--proj-size must be smaller than --hidden-size ({hidden}), got {args.proj_size}")
    case = cases.case(kind, args.input_size or hidden, hidden, num_layers=args.layers or 1,
                      bidirectional=args.bidirectional, proj_size=args.proj_size or 0, group="from the command line",
                      **run)
    return [(case, {"seed": 0})]


def bench(args, load_module):
    if args.stream and args.bidirectional:
        raise UsageError("--stream: a bidirectional RNN cannot run one step at a time")
    todo = bench_cases(args, load_module)
    engines = ["fastrnn", *(args.peers if args.peers is not None else peers.default_peers(args.precision))]
    threads = args.threads or os.cpu_count() or 1
    isolated = not args.in_process
    progress = report.Progress(total=len(todo) * args.repeat)
    rows = []
    try:
        for case, weights in todo:
            progress.set_label(case.label)
            rows.append(bench_case(case, weights, engines, threads, args.repeat, progress, isolated))
    finally:
        progress.close()
    info = report.machine_info(threads, isolated)
    print(report.header(info))
    print()
    print(report.format_table(rows, engines))
    print()
    errors = ("err = each engine's max abs diff vs torch (float32) on a fresh input" if report.reduced(rows) else
              "max abs diff = fastrnn's output vs torch's on a fresh input")
    print(f"ratio = best peer's us/call / fastrnn's (above 1: fastrnn is faster); {errors}.")
    for line in report.notes(rows, engines):
        print(f"- {line}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "engines": engines, "repeat": args.repeat, "rows": rows}, f, indent=1)
        print(f"raw timings: {args.json}")
    if args.plot:
        try:
            report.plot(rows, engines, args.plot, info)
        except ImportError:
            print("--plot: matplotlib is not installed (pip install matplotlib); no chart written", file=sys.stderr)
        else:
            print(f"chart: {args.plot}")
    return 0

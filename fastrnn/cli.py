"""The `fastrnn` command line: `bench` (against torch, ONNX Runtime, OpenVINO), `info` and `run` on model files.

Exit codes: 0 success, 2 usage error (argparse), 1 a bad file or input (one line on stderr; the traceback
only with --debug). torch, onnxruntime and openvino are imported only by `bench`, and only for its peers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from fastrnn import _kinds

DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = DATA / "example.pt"
EXAMPLE_PREFIX = "encoder.lstm"
EXAMPLE_INPUT = DATA / "example_input.npy"
KINDS = tuple(kind.lower() for kind in _kinds.KINDS)
PRECISIONS = ("float32", "bfloat16", "int8")


class CLIError(Exception):
    """A bad file, input or combination of options: reported in one line, exit status 1."""


def _loading():
    try:
        from fastrnn import loading
    except ImportError as exc:
        raise CLIError(f"reading model files needs fastrnn.loading, which this build lacks ({exc})") from None
    return loading


def _model_path(file, prefix):
    """The file to read and its prefix: the bundled example when no file is given."""
    if file is None:
        print(f"(no FILE given: using the bundled example {EXAMPLE}, prefix {EXAMPLE_PREFIX!r})", file=sys.stderr)
        return EXAMPLE, prefix if prefix is not None else EXAMPLE_PREFIX
    path = Path(file)
    if not path.exists():
        raise CLIError(f"{file}: no such file")
    return path, prefix


def _load_module(file, prefix, **kwargs):
    loading = _loading()
    path, prefix = _model_path(file, prefix)
    try:
        return loading.load(str(path), prefix=prefix, **kwargs), path, prefix
    except loading.LoadError as exc:
        raise CLIError(f"{path}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- bench

def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


_positive = _int_at_least(1)


def _peer_list(text):
    from fastrnn.benchmark.peers import ALL_PEERS

    if text.strip().lower() == "none":
        return []
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer {unknown[0]!r}; choose from {', '.join(ALL_PEERS)} or none")
    return list(dict.fromkeys(names))


def cmd_bench(args):
    from fastrnn.benchmark import command

    if args.sweep:
        from fastrnn.benchmark import sweeps

        return sweeps.run(args.sweep, args.threads or 1)
    try:
        return command.bench(args, _load_module)
    except command.UsageError as exc:
        raise CLIError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- info

def _summarize_array(array):
    return {"shape": list(array.shape), "dtype": str(array.dtype)}


def cmd_info(args):
    loading = _loading()
    path, prefix = _model_path(args.file, args.prefix)
    try:
        state_dict = loading.load_state_dict(str(path))
    except loading.LoadError as exc:
        raise CLIError(f"{path}: {exc}") from exc
    report = {"file": str(path), "format": state_dict.format, "checkpoint_entry": getattr(state_dict, "source", ""),
              "num_keys": len(state_dict)}
    report.update(_describe(loading, state_dict, prefix, path))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    entry = f", state_dict from entry {report['checkpoint_entry']}" if report["checkpoint_entry"] else ""
    print(f"{report['file']}: {report['format']}, {report['num_keys']} arrays{entry}")
    if not report["rnns"]:
        print("no RNN/LSTM/GRU weights found")
    for rnn in report["rnns"]:
        name = rnn["prefix"] or "(no prefix)"
        print(f"  {name}: {rnn['module']}  ({rnn['parameters']:,} parameters, {', '.join(rnn['dtypes'])})")
    others = report["other_keys"]
    if others:
        print(f"  other keys: {len(others)} ({sum(o['numel'] for o in others):,} values)")
        for other in others[:20]:
            print(f"    {other['key']}: {tuple(other['shape'])} {other['dtype']}")
        if len(others) > 20:
            print(f"    ... and {len(others) - 20} more")
    return 0


def _describe(loading, state_dict, prefix, path):
    """Every RNN the loader discovers in the file (its own discovery and prefix rule, so info and load agree) and
    the other keys."""
    groups = loading.find_rnns(str(path))
    used = {key for group in groups for key in group.keys}
    if prefix is not None:
        by_prefix = {group.prefix: group for group in groups}
        try:
            groups = [by_prefix[loading.resolve_prefix(by_prefix, prefix, "", {})]]
        except loading.LoadError as exc:
            raise CLIError(str(exc).lstrip(": ")) from None
    rnns = []
    for group in groups:
        entry = {"prefix": group.prefix.rstrip("."), "keys": list(group.keys),
                 "parameters": int(sum(state_dict[k].size for k in group.keys)),
                 "dtypes": sorted({str(state_dict[k].dtype) for k in group.keys})}
        if group.config is None:
            entry.update(module=f"unusable: {group.problem}", config=None)
        else:
            convention = "".join(f", {name}={getattr(group, name)!r}" for name in ("batch_first", "merge_mode")
                                 if getattr(group, name))  # what an ONNX node or a Keras layer says
            entry.update(module=str(group.config) + convention, config=group.config.as_dict(),
                         batch_first=group.batch_first, merge_mode=group.merge_mode)
        rnns.append(entry)
    others = [{"key": k, **_summarize_array(v), "numel": int(v.size)} for k, v in state_dict.items() if k not in used]
    return {"rnns": rnns, "other_keys": others}


# ---------------------------------------------------------------------------------------------- run

def _load_array(path, what):
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CLIError(f"{what} {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise CLIError(f"{what} {path}: not a .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise CLIError(f"{what} {path}: an .npz archive; expected a single .npy array (np.save)")
    return array


def cmd_run(args):
    # --batch-first forces it; otherwise the file's convention (ONNX layout, Keras), torch files' default False
    module, path, _ = _load_module(args.file, args.prefix, batch_first=True if args.batch_first else None,
                                   precision=args.precision)
    input_path = args.input
    if input_path is None:
        if args.file is not None:
            raise CLIError("--input is required with a FILE (a .npy array)")
        input_path = EXAMPLE_INPUT
    x = _load_array(input_path, "--input")
    lengths = None if args.lengths is None else _load_array(args.lengths, "--lengths")
    cell = module.config.cell
    if cell and lengths is not None:
        raise CLIError(f"--lengths: {module!r} is a cell, which takes one timestep and no lengths")
    try:
        if cell:
            out = states = module(x)
        else:
            out, states = module(x, lengths=lengths)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--input {input_path}: {exc} (model: {module!r})") from None
    h_n, c_n = states if isinstance(states, tuple) else (states, None)
    out = h_n if cell else out
    if args.output:
        np.save(args.output, out)
    if args.state_out:
        np.savez(args.state_out, h_n=h_n, **({} if c_n is None else {"c_n": c_n}))
    print(f"{module!r}: input {x.shape} {x.dtype} -> output {out.shape} {out.dtype}, h_n {h_n.shape}"
          + ("" if c_n is None else f", c_n {c_n.shape}"))
    print(f"saved: output -> {args.output}" if args.output else "output not saved (pass --output y.npy)")
    if args.state_out:
        print(f"saved: final states -> {args.state_out}")
    return 0


# ---------------------------------------------------------------------------------------------- main

def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser = argparse.ArgumentParser(
        prog="fastrnn", parents=[common],
        description="fastrnn: run PyTorch RNN/LSTM/GRU models on CPU from numpy. Commands: bench, info, run.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{bench,info,run}")
    sub.required = True

    bench = sub.add_parser("bench", parents=[common], help="time fastrnn against torch, onnxruntime, openvino",
                           description="Time fastrnn against the installed peers. With no shape flags and no "
                                       "--model: a default suite on random weights.")
    bench.add_argument("--kind", choices=KINDS, help="cell kind (default lstm)")
    bench.add_argument("--input-size", type=_positive, help="default: the hidden size")
    bench.add_argument("--hidden-size", type=_positive, help="default 256")
    bench.add_argument("--layers", type=_positive, help="default 1")
    bench.add_argument("--bidirectional", action="store_true")
    bench.add_argument("--proj-size", type=_int_at_least(0), help="LSTM projection size (default 0: none)")
    bench.add_argument("--batch", type=_positive, help="default 1")
    bench.add_argument("--seq-len", type=_positive, help="timesteps per call (default 100)")
    bench.add_argument("--stream", action="store_true", help="time single-step calls that carry the state")
    bench.add_argument("--dtype", choices=("float32", "float64"))
    bench.add_argument("--precision", choices=PRECISIONS,
                       help="fastrnn's weights: float32 (default, exact), bfloat16 or int8; adds the peer of that "
                            "precision (openvino-bf16, torch-int8) and every engine's error vs torch float32")
    bench.add_argument("--suite", choices=("default", "precision"),
                       help="with no shape flags: the default suite, or 'precision': the configs of the bfloat16 "
                            "and int8 comparisons (weights U(-0.1, 0.1), inputs N(0, 1))")
    bench.add_argument("--threads", type=_positive, help="threads for every engine (default: all cores)")
    bench.add_argument("--model", nargs="?", const="", metavar="FILE",
                       help="benchmark the RNN in a model file (the bundled example if FILE is omitted)")
    bench.add_argument("--prefix", help="with --model: the key prefix of the RNN to use")
    bench.add_argument("--peers", type=_peer_list,
                       help="comma-separated: torch,onnxruntime,openvino,openvino-bf16,torch-int8, or none "
                            "(default: torch,onnxruntime,openvino, and with --precision the peer of that precision)")
    bench.add_argument("--repeat", type=_positive, default=5, help="timed rounds per engine (default 5)")
    bench.add_argument("--json", metavar="PATH", help="write all raw timings and machine info as JSON")
    bench.add_argument("--plot", metavar="PATH.png", help="bar chart of us/step (needs matplotlib)")
    bench.add_argument("--in-process", action="store_true",
                       help="time every engine in this one process (default: each in its own process)")
    bench.add_argument("--sweep", choices=("split", "chunks", "block", "gemm"),
                       help="instead: time fastrnn alone over one engine tuning threshold (bench/FLOOR.md)")
    bench.set_defaults(func=cmd_bench)

    info = sub.add_parser("info", parents=[common], help="what RNNs a model file holds",
                          description="List the RNN/LSTM/GRU weights in a torch, safetensors or npz file.")
    info.add_argument("file", nargs="?", metavar="FILE", help="model file (default: the bundled example)")
    info.add_argument("--prefix", help="only the RNN under this key prefix")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    run = sub.add_parser("run", parents=[common], help="run a model file's RNN on a .npy array",
                         description="Run the RNN in FILE on an array and save the output (and final states).")
    run.add_argument("file", nargs="?", metavar="FILE", help="model file (default: the bundled example)")
    run.add_argument("--input", metavar="X.npy", help="input (T, B, I), (B, T, I) with --batch-first, or (T, I)")
    run.add_argument("--output", metavar="Y.npy", help="where to save the output sequence")
    run.add_argument("--prefix", help="the key prefix of the RNN to run")
    run.add_argument("--batch-first", action="store_true", help="the input is (B, T, I)")
    run.add_argument("--lengths", metavar="L.npy", help="valid length of each batch row")
    run.add_argument("--state-out", metavar="S.npz", help="save the final states (h_n, and c_n for LSTM)")
    run.add_argument("--precision", choices=PRECISIONS,
                     help="the weights' format in the engine: float32 (default, exact), bfloat16 or int8")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except BrokenPipeError:  # `fastrnn info | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("fastrnn: interrupted", file=sys.stderr)
        return 130
    except (CLIError, OSError, ValueError, TypeError, KeyError) as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"fastrnn {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The timing harness behind `fastrnn bench` (and the pytest-benchmark suite in bench/).

Method (printed with every table): each engine is built once and warmed up; the number of calls per
timed block is calibrated so a block lasts about BLOCK_SECONDS; then for `repeat` rounds every engine
runs after a short pause (with several threads) and one untimed call, so another engine's spinning
threads have gone idle, then one timed block, the engines interleaved round by round in a rotating order,
so drift of a shared, noisy machine falls on all of them alike. A call's time is block time / calls; the table gives the median over rounds (the JSON
also the min and every sample). Every call takes a numpy array and returns one: conversions count.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import sys
import time

import numpy as np

from fastrnn import _peers

BLOCK_SECONDS = 0.02
WARMUP_SECONDS = 0.05
SLOW_CALL_SECONDS = 0.01
# With several threads per engine, an engine's idle threads keep spinning for tens of ms after its last call
# (ONNX Runtime's pool 10-50 ms, OpenBLAS ~0.1 s, torch's OpenMP) and steal the cores from the next engine:
# each engine's turn starts after this pause.
IDLE_SECONDS = 0.05
CHECK_STREAM_STEPS = 8
METHOD = ("warm-up, then engines interleaved round by round (rotating order, a 50 ms pause when threads > 1 and "
          "untimed calls before each timed block), "
          "median us per call over rounds; numpy in and out of every call (conversions counted)")


@dataclasses.dataclass
class Config:
    kind: str = "lstm"            # lstm | gru | rnn
    input_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: int = 0
    batch: int = 1
    seq_len: int = 100
    stream: bool = False          # single-step calls carrying state (seq_len is then only the check's length)
    dtype: str = "float32"
    nonlinearity: str = "tanh"    # rnn only
    group: str = ""               # what the row represents, for the table's reader

    @property
    def steps_per_call(self):
        return 1 if self.stream else self.seq_len

    @property
    def label(self):
        parts = [self.kind.upper() if self.kind != "rnn" else f"RNN-{self.nonlinearity}",
                 f"I{self.input_size}", f"H{self.hidden_size}"]
        if self.proj_size:
            parts.append(f"P{self.proj_size}")
        if self.num_layers > 1:
            parts.append(f"L{self.num_layers}")
        if self.bidirectional:
            parts.append("bi")
        parts.append(f"B{self.batch}")
        parts.append("stream" if self.stream else f"T{self.seq_len}")
        if self.dtype != "float32":
            parts.append(self.dtype)
        return " ".join(parts)


def default_suite():
    """The configs `fastrnn bench` runs with no arguments: random weights, no file needed."""
    suite = [
        Config("lstm", 256, 256, stream=True, group="streaming: one step per call, state carried"),
        Config("gru", 64, 64, stream=True, group="streaming: one step per call, state carried"),
    ]
    for hidden in (64, 256, 1024):
        for kind in ("lstm", "gru", "rnn"):
            suite.append(Config(kind, hidden, hidden, group="one sequence: B=1, T=100"))
    suite += [
        Config("lstm", 512, 512, batch=64, seq_len=50, group="batched: B=64"),
        Config("lstm", 80, 256, num_layers=2, bidirectional=True, group="2-layer bidirectional (speech encoder)"),
        Config("lstm", 80, 512, proj_size=128, group="LSTM with projection"),
    ]
    return suite


def random_state_dict(config, seed=0):
    """torch-initialised random weights for the config, as numpy arrays under torch's names."""
    module = _peers.fastrnn_module(config)
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(config.hidden_size)
    return {name: rng.uniform(-bound, bound, size=value.shape).astype(config.dtype)
            for name, value in module.state_dict().items()}


def make_input(config, seed=1):
    rng = np.random.default_rng(seed)
    T = 1 if config.stream else config.seq_len
    return rng.standard_normal((T, config.batch, config.input_size)).astype(config.dtype)


def check_input(config, seed=2):
    """The sequence every engine's output is compared on (streamed step by step for stream configs)."""
    rng = np.random.default_rng(seed)
    T = min(config.seq_len, CHECK_STREAM_STEPS) if config.stream else config.seq_len
    return rng.standard_normal((T, config.batch, config.input_size)).astype(config.dtype)


def run_check(runner, config, x):
    runner.reset()
    if config.stream:
        out = np.concatenate([runner(np.ascontiguousarray(x[t:t + 1])) for t in range(x.shape[0])], axis=0)
    else:
        out = runner(x)
    runner.reset()
    return out


def _calibrate(runner, x):
    runner.reset()
    calls, start = 0, time.perf_counter()
    while True:
        runner(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= WARMUP_SECONDS and calls >= 2:
            break
    return elapsed / calls


def time_runners(runners, x, repeat, progress=None, idle_seconds=0.0):
    """{runner name: [us per call, one per round]} by interleaved rounds, `idle_seconds` before each turn."""
    per_call = {r.name: _calibrate(r, x) for r in runners}
    number = {name: max(1, int(BLOCK_SECONDS / seconds)) for name, seconds in per_call.items()}
    samples = {r.name: [] for r in runners}
    for round_index in range(repeat):
        shift = round_index % len(runners)
        for runner in runners[shift:] + runners[:shift]:
            runner.reset()
            n = number[runner.name]
            if idle_seconds:
                time.sleep(idle_seconds)
            # Untimed calls first, so the previous engine's spinning threads go idle (one call for calls
            # slower than SLOW_CALL_SECONDS, which would otherwise double the run's length).
            untimed = max(1, n // 4) if per_call[runner.name] < SLOW_CALL_SECONDS else 1
            for _ in range(untimed):
                runner(x)
            start = time.perf_counter_ns()
            for _ in range(n):
                runner(x)
            samples[runner.name].append((time.perf_counter_ns() - start) / n / 1e3)
        if progress is not None:
            progress.advance()
    return samples, number


def bench_config(config, state_dict, engines, threads, repeat, progress=None):
    """One table row: every engine's timings and its max |diff| against torch on the check input."""
    row = {"config": dataclasses.asdict(config), "label": config.label, "engines": {}}
    runners = [_peers.make_fastrnn(config, state_dict, threads)]
    peer_runners, missing = _peers.make_peers(config, state_dict, threads, [p for p in engines if p != "fastrnn"])
    runners += peer_runners
    reference = None
    x_check = check_input(config)
    if "torch" in _peers.versions(["torch"]):
        try:
            reference = _peers.torch_reference(config, state_dict, x_check)
        except _peers.PeerUnavailable:
            reference = None
    idle = IDLE_SECONDS if threads > 1 and len(runners) > 1 else 0.0
    samples, number = time_runners(runners, make_input(config), repeat, progress, idle)
    for runner in runners:
        us = samples[runner.name]
        entry = {
            "us_per_call_median": statistics.median(us),
            "us_per_call_min": min(us),
            "us_per_step_median": statistics.median(us) / config.steps_per_call,
            "samples_us_per_call": us,
            "calls_per_round": number[runner.name],
            "note": runner.note,
            "stream_note": runner.stream_note,
        }
        if reference is not None:
            out = run_check(runner, config, x_check)
            entry["max_abs_diff_vs_torch"] = float(np.max(np.abs(out.astype(np.float64) - reference)))
        row["engines"][runner.name] = entry
    for name, reason in missing.items():
        row["engines"][name] = {"unavailable": reason}
    return row


def machine_info(threads):
    from threadpoolctl import threadpool_info

    import fastrnn

    fastrnn.get_num_threads()  # loads scipy's BLAS so threadpoolctl lists it
    blas = [
        {key: lib.get(key) for key in ("internal_api", "version", "num_threads", "threading_layer",
                                       "architecture", "filepath")}
        for lib in threadpool_info() if lib.get("user_api") == "blas"
    ]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "threads": threads,
        "blas": blas,
        "versions": {"python": platform.python_version(), "fastrnn": fastrnn.__version__,
                     **_peers.versions(["numpy", "scipy", "torch", "onnx", "onnxruntime", "openvino"])},
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "method": METHOD,
    }


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Progress:
    """A one-line progress bar on stderr, shown only on a terminal and only once a run passes 2 seconds."""

    def __init__(self, total, stream=None, delay=2.0):
        self.total, self.done = max(total, 1), 0
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.delay, self.label, self.shown = time.perf_counter(), delay, "", False

    def set_label(self, label):
        self.label = label
        self._draw()

    def advance(self, n=1):
        self.done += n
        self._draw()

    def _draw(self):
        elapsed = time.perf_counter() - self.start
        if not self.enabled or elapsed < self.delay:
            return
        width = 30
        filled = int(width * min(self.done, self.total) / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                          f"{elapsed:5.1f}s {self.label[:40]:<40}")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.shown:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


def _fmt_us(value):
    if value >= 1e5:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows, engines):
    """The markdown table `fastrnn bench` prints."""
    peers = [e for e in engines if e != "fastrnn"]
    header = ["config", "fastrnn us/call", "us/step", *[f"{p} us/call" for p in peers],
              "best peer / fastrnn", "max abs diff vs torch"]
    lines = [header]
    for row in rows:
        mine = row["engines"]["fastrnn"]
        cells = [row["label"], _fmt_us(mine["us_per_call_median"]), _fmt_us(mine["us_per_step_median"])]
        best = None
        for peer in peers:
            entry = row["engines"].get(peer, {"unavailable": "not requested"})
            if "unavailable" in entry:
                cells.append("n/a")
                continue
            cells.append(_fmt_us(entry["us_per_call_median"]))
            if best is None or entry["us_per_call_median"] < best[1]:
                best = (peer, entry["us_per_call_median"])
        cells.append(f"{best[1] / mine['us_per_call_median']:.2f}x ({best[0]})" if best else "-")
        cells.append(f"{mine['max_abs_diff_vs_torch']:.1e}" if "max_abs_diff_vs_torch" in mine else "n/a (no torch)")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                      for i, (cell, w) in enumerate(zip(line, widths))) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    return "\n".join(out)


def notes(rows, engines):
    """Lines under the table: each engine's thread setting and streaming method, and why a peer is n/a."""
    lines = []
    for name in engines:
        entries = [(row, row["engines"][name]) for row in rows if name in row["engines"]]
        settings = list(dict.fromkeys(e["note"] for _, e in entries if "note" in e))
        streams = list(dict.fromkeys(e["stream_note"] for _, e in entries if e.get("stream_note")))
        if settings:
            lines.append(f"{name}: {'; '.join(settings)}" + (f"; streaming rows: {'; '.join(streams)}" if streams else ""))
        reasons = {}
        for row, entry in entries:
            if "unavailable" in entry:
                reasons.setdefault(entry["unavailable"], []).append(row["label"])
        for reason, labels in reasons.items():
            where = "every row" if len(labels) == len(rows) else ", ".join(labels)
            lines.append(f"{name}: n/a for {where}: {reason}")
    return lines


def plot(rows, engines, path):
    """A bar chart of us/step per engine per config (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["label"] for row in rows]
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(rows) + 2), 5))
    width = 0.8 / len(engines)
    for index, engine in enumerate(engines):
        values = [row["engines"].get(engine, {}).get("us_per_step_median", np.nan) for row in rows]
        ax.bar(np.arange(len(rows)) + index * width - 0.4 + width / 2, values, width, label=engine)
    ax.set_xticks(np.arange(len(rows)))
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("us per step (median, lower is better)")
    ax.set_title("fastrnn bench")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

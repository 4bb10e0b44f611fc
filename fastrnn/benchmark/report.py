"""What `fastrnn bench` prints and writes: the machine, the table, the notes under it and the chart."""
from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np

from fastrnn.benchmark import peers

def method(isolated):
    where = "each engine in its own process" if isolated else "all engines in this process"
    return (f"{where}; warm-up, then engines interleaved round by round (rotating order, a 50 ms pause when "
            f"threads > 1 and untimed calls before each timed block), median us per call over rounds; numpy in and "
            f"out of every call (conversions counted)")


CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "avx_vnni",
             "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags():
    """The instruction-set flags of /proc/cpuinfo that decide fastrnn's kernel tiers."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS if flag in present]
    except OSError:
        pass
    return []


def blas_libraries():
    """The BLAS libraries loaded in this process (numpy's; fastrnn uses none), as threadpoolctl lists them; []
    without threadpoolctl (optional: the bench extra installs it)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {key: lib.get(key) for key in ("internal_api", "version", "num_threads", "threading_layer",
                                       "architecture", "filepath")}
        for lib in threadpool_info() if lib.get("user_api") == "blas"
    ]


def machine_info(threads, isolated=True):
    import fastrnn
    import fastrnn._engine

    blas = blas_libraries()
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "fastrnn_isa": fastrnn._engine.isa(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "threads": threads,
        "blas": blas,
        "versions": {"python": platform.python_version(), "fastrnn": fastrnn.__version__,
                     **peers.versions(["numpy", "scipy", "torch", "onnx", "onnxruntime", "openvino"])},
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "method": method(isolated),
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


def reduced(rows):
    """Whether some engine of some row computes in another precision than the row's dtype (fastrnn in bfloat16 or
    int8, a reduced peer): then the table gives every engine's error vs torch."""
    return any(entry.get("precision", row["config"]["dtype"]) != row["config"]["dtype"]
               for row in rows for entry in row["engines"].values() if "unavailable" not in entry)


def _fmt_diff(entry):
    return f"{entry['max_abs_diff_vs_torch']:.1e}" if "max_abs_diff_vs_torch" in entry else "n/a"


def format_table(rows, engines):
    """The markdown table `fastrnn bench` prints: with reduced precisions, an error column per engine (but torch's,
    the reference), else fastrnn's error only."""
    peers = [e for e in engines if e != "fastrnn"]
    every_error = reduced(rows)
    checked = [e for e in engines if e != "torch"] if every_error else ["fastrnn"]
    errors = [f"{e} err" for e in checked] if every_error else ["max abs diff vs torch"]
    header = ["config", "fastrnn us/call", "us/step", *[f"{p} us/call" for p in peers], "best peer / fastrnn",
              *errors]
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
        if every_error:
            cells += [_fmt_diff(row["engines"].get(e, {})) for e in checked]
        else:
            cells.append(_fmt_diff(mine) if "max_abs_diff_vs_torch" in mine else "n/a (no torch)")
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
    """Lines under the table: the weights if not torch's init, each engine's thread setting, precision and streaming
    method, and why a peer is n/a."""
    lines = []
    bounds = sorted({row["config"]["weight_bound"] for row in rows if row["config"].get("weight_bound") is not None})
    if bounds:
        lines.append(f"weights U(-b, b), b = {', '.join(f'{b:g}' for b in bounds)}; inputs N(0, 1)")
    for name in engines:
        entries = [(row, row["engines"][name]) for row in rows if name in row["engines"]]
        settings = list(dict.fromkeys(e["note"] for _, e in entries if "note" in e))
        streams = list(dict.fromkeys(e["stream_note"] for _, e in entries if e.get("stream_note")))
        precisions = list(dict.fromkeys(e["precision"] for _, e in entries if e.get("precision")))
        if settings:
            lines.append(f"{name} ({', '.join(precisions) or 'precision unknown'}): {'; '.join(settings)}"
                         + (f"; streaming rows: {'; '.join(streams)}" if streams else ""))
        reasons = {}
        for row, entry in entries:
            if "unavailable" in entry:
                reasons.setdefault(entry["unavailable"], []).append(row["label"])
        for reason, labels in reasons.items():
            where = "every row" if len(labels) == len(rows) else ", ".join(labels)
            lines.append(f"{name}: n/a for {where}: {reason}")
    return lines


def plot(rows, engines, path, info):
    """Grouped horizontal bars: each engine's time per call relative to the fastest engine of its row, on a
    linear axis from 0 (a 15% gap looks like 15%), each bar labelled with its microseconds per call; the title
    names the CPU, the threads and the dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 0.8 / len(engines)
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.32 * len(rows) * len(engines)))
    for index, engine in enumerate(engines):
        for position, row in enumerate(rows):
            times = [e["us_per_call_median"] for e in row["engines"].values() if "us_per_call_median" in e]
            entry = row["engines"].get(engine, {})
            if "us_per_call_median" not in entry:
                continue
            relative = entry["us_per_call_median"] / min(times)
            y = position + index * height - 0.4 + height / 2
            ax.barh(y, relative, height, color=f"C{index}", label=engine if position == 0 else None)
            ax.text(relative, y, f" {_fmt_us(entry['us_per_call_median'])} us", va="center", fontsize=7)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels([row["label"] for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, None)
    ax.axvline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("time per call / fastest engine's time (1 = fastest; lower is better)")
    dtypes = sorted({row["config"]["dtype"] for row in rows})
    ax.set_title(f"fastrnn bench: {info['cpu']}, {info['threads']} thread(s) per engine, {', '.join(dtypes)}",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def header(info):
    """The lines above the table: date, CPU and its flags, threads, the BLAS loaded, versions, method."""
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['num_threads']} threads, {b['architecture']})"
                     for b in info["blas"]) or "unknown"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return (f"fastrnn bench  {info['date']}\n"
            f"CPU: {info['cpu']}, {info['cores']} cores ({' '.join(info['cpu_flags']) or 'no AVX2'}); fastrnn "
            f"kernels: {info['fastrnn_isa']}; threads per engine: {info['threads']}; BLAS loaded (fastrnn uses "
            f"none): {blas}\n"
            f"versions: {versions}\n"
            f"method: {info['method']}")

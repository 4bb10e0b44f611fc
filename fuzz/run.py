"""Run fastrnn's fuzz targets one after another; exit 1 on any finding.

    python fuzz/run.py --seconds 30                 # CI: each target for 30 s
    nice -n 19 python fuzz/run.py --runs 1000000    # the long run: 10^6 executions per target
    python fuzz/run.py --seconds 60 zip pickle      # some targets only

The seed corpus must exist (python fuzz/make_corpus.py). New corpus entries and findings (crash-*, timeout-*,
oom-* reproducers) go to --work (default fuzz/work, not committed); the seeds are never written to. Each target
ends with a line: target, executions, exec/s, cov and ft (libFuzzer's coverage counters), findings.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# target: (dictionaries, -max_len). Inputs are whole files; the longest seed of each kind is well below this.
TARGETS = {
    "pickle": (["pickle.dict"], 8192),
    "zip": (["pickle.dict", "zip.dict"], 32768),
    "legacy": (["pickle.dict"], 16384),
    "safetensors": (["safetensors.dict"], 16384),
    "npz": (["npy.dict", "zip.dict"], 32768),
}
TIMEOUT_S = 10  # per input; the slowest seed takes a few milliseconds
RSS_LIMIT_MB = 2048  # a backstop: the per-input allocation bound (fuzz/_harness.py) is far tighter
_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+).*exec/s: (\d+)")


def run_target(name, args):
    dicts, max_len = TARGETS[name]
    work = os.path.join(args.work, name)
    corpus = os.path.join(work, "corpus")
    seeds = os.path.join(args.corpus, name)
    if not glob.glob(os.path.join(seeds, "*")):
        sys.exit(f"{seeds}: no seed corpus; run python fuzz/make_corpus.py first")
    os.makedirs(corpus, exist_ok=True)
    merged = os.path.join(work, "merged.dict")
    with open(merged, "w") as out:
        for dict_name in dicts:
            with open(os.path.join(HERE, dict_name)) as part:
                out.write(part.read())
    limit = [f"-runs={args.runs}"] if args.runs else [f"-max_total_time={args.seconds}"]
    command = [sys.executable, os.path.join(HERE, f"fuzz_{name}.py"), *limit, f"-timeout={TIMEOUT_S}",
               f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={max_len}", f"-dict={merged}",
               f"-artifact_prefix={work}/", "-print_final_stats=1", corpus, seeds]
    # this checkout's fastrnn, whatever else is installed (an editable install may point elsewhere)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(HERE),
                                                                    os.environ.get("PYTHONPATH")])),
               LD_PRELOAD=args.shim)
    log_path = os.path.join(work, "log.txt")
    started, wall_start = time.monotonic(), time.time()
    with open(log_path, "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=HERE, env=env).returncode
    elapsed = time.monotonic() - started
    with open(log_path, errors="replace") as log:
        lines = log.read().splitlines()
    status = [m for m in map(_STATUS.match, lines) if m]
    executions, cov, ft, rate = status[-1].groups() if status else ("?", "?", "?", "?")
    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", "\n".join(lines), re.M))
    executions = stats.get("number_of_executed_units", executions)
    rate = stats.get("average_exec_per_sec", rate)
    def written(pattern):  # by this run: a reused --work keeps the reproducers of earlier runs
        return [path for path in glob.glob(os.path.join(work, pattern)) if os.path.getmtime(path) >= wall_start]

    findings = sorted(written("crash-*") + written("timeout-*") + written("oom-*"))
    # A slow unit is not a hang (-timeout is): on a loaded machine a niced target can be descheduled for seconds.
    # Named so it can be replayed (python fuzz/fuzz_<target>.py FILE), not failed on.
    slow = sorted(written("slow-unit-*"))
    failed = code != 0 or findings
    verdict = "FINDING: " + ", ".join(findings) if findings else f"FAILED (exit {code})" if failed else "ok"
    verdict += "; slow units to replay: " + ", ".join(slow) if slow else ""
    print(f"{name:12s} {executions:>9} runs {rate:>6} exec/s {elapsed:7.1f} s  cov: {cov} ft: {ft}  {verdict}",
          flush=True)
    if failed:
        print(f"--- last lines of {log_path}:\n" + "\n".join(lines[-40:]), flush=True)
    return not failed


def build_shim(work):
    """fuzz/memcount.c as a shared library: the allocation counters the harness bounds (see its comment)."""
    os.makedirs(work, exist_ok=True)
    library = os.path.join(work, "memcount.so")
    source = os.path.join(HERE, "memcount.c")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", library, source], check=True)
    return library


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default: all)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=int, default=30, help="time per target (default 30)")
    budget.add_argument("--runs", type=int, help="executions per target instead of a time")
    parser.add_argument("--corpus", default=os.path.join(HERE, "corpus"), help="seed corpus (make_corpus.py)")
    parser.add_argument("--work", default=os.path.join(HERE, "work"), help="new corpus entries, findings, logs")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {list(TARGETS)}")
    args.corpus, args.work = os.path.abspath(args.corpus), os.path.abspath(args.work)
    try:
        import atheris  # noqa: F401
    except ImportError as exc:
        sys.exit(f"fuzz/run.py: atheris is not installed ({exc}); install it with pip install -e '.[fuzz]' "
                 f"(where PyPI has no wheel for this Python, pip builds it and "
                 f"needs clang with libFuzzer). Not skipping: the fuzz step fails without it.")
    args.shim = build_shim(args.work)
    results = [run_target(name, args) for name in args.targets or TARGETS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""One row of a benchmark: every engine built for a case, timed by fastrnn.benchmark.timing, checked against torch."""
from __future__ import annotations

import os
import statistics
import tempfile

import numpy as np

from fastrnn.benchmark import cases, peers, timing


def _isolated_engines(case, weights, engines, threads, tmp):
    """(built EngineProcess objects, {engine: reason unavailable}, {engine: check output path})."""
    built, missing, checks = [], {}, {}
    for name in engines:
        process = timing.EngineProcess(name)
        reason = process.build(case, weights, threads)
        if reason is not None:
            missing[name] = reason
            process.close()
            continue
        checks[name] = os.path.join(tmp, f"{name}.npy")
        process.check(checks[name])
        built.append(process)
    return built, missing, checks


def _local_engines(case, state_dict, engines, threads):
    runners = [peers.make_fastrnn(case, state_dict, threads)] if "fastrnn" in engines else []
    found, missing = peers.make_peers(case, state_dict, threads, [e for e in engines if e != "fastrnn"])
    x = cases.make_input(case)
    return [timing.LocalEngine(r, x) for r in runners + found], missing


def _torch_reference(case, weights, threads, checks, tmp):
    """torch's output on the check input (every engine is compared with it), or None without torch."""
    if "torch" in checks:
        return np.load(checks["torch"])
    if "torch" not in peers.versions(["torch"]):
        return None
    process = timing.EngineProcess("torch")
    try:
        if process.build(case, weights, threads) is not None:
            return None
        path = os.path.join(tmp, "reference.npy")
        process.check(path)
        return np.load(path)
    finally:
        process.close()


def bench_case(case, weights, engines, threads, repeat, progress=None, isolated=True):
    """One table row: every engine's timings and its max |diff| against torch on the check input.

    weights: {"seed": n} for random weights or {"file": path, "prefix": p}; engines: names, fastrnn first."""
    row = {"config": case.as_dict(), "label": case.label, "engines": {}}
    with tempfile.TemporaryDirectory(prefix="fastrnn-bench-") as tmp:
        if isolated:
            built, missing, checks = _isolated_engines(case, weights, engines, threads, tmp)
            reference = _torch_reference(case, weights, threads, checks, tmp)
            outputs = {name: np.load(path) for name, path in checks.items()}
        else:
            from fastrnn.benchmark.worker import state_dict_for

            state_dict = state_dict_for(case, weights)
            built, missing = _local_engines(case, state_dict, engines, threads)
            outputs = {e.name: peers.run_check(e.runner, case, cases.check_input(case)) for e in built}
            reference = outputs.get("torch")
            if reference is None and "torch" in peers.versions(["torch"]):
                try:
                    reference = peers.torch_reference(case, state_dict, cases.check_input(case))
                except peers.PeerUnavailable:  # installed but not importable
                    reference = None
        try:
            idle = timing.IDLE_SECONDS if threads > 1 and len(built) > 1 else 0.0
            samples, number = timing.time_rounds(built, repeat, progress, idle)
        finally:
            for engine in built:
                engine.close()
    for engine in built:
        us = samples[engine.name]
        entry = {"us_per_call_median": statistics.median(us), "us_per_call_min": min(us),
                 "us_per_step_median": statistics.median(us) / case.steps_per_call, "samples_us_per_call": us,
                 "calls_per_round": number[engine.name], "note": engine.note, "stream_note": engine.stream_note,
                 "precision": engine.precision}
        if reference is not None:
            diff = outputs[engine.name].astype(np.float64) - reference
            entry["max_abs_diff_vs_torch"] = float(np.max(np.abs(diff)))
        row["engines"][engine.name] = entry
    for name, reason in missing.items():
        row["engines"][name] = {"unavailable": reason}
    return row

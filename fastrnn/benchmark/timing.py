"""The one timer of fastrnn's benchmarks (`fastrnn bench`, bench/*.py, the tuning sweeps).

Method: each engine is built once and warmed up; the calls per timed block are calibrated so a block lasts about
BLOCK_SECONDS; then for `repeat` rounds every engine runs, in a rotating order, after a pause (with several
threads: an idle engine's threads keep spinning for tens of ms) and some untimed calls, one timed block. A call's
time is block time / calls; reports give the median over rounds. Every call takes a numpy array and returns one.

Engines run either each in its own process (EngineProcess, the default of `fastrnn bench`: engines sharing a
process disturb each other's thread pools, by up to 3x on 2 cores) or in this process (LocalEngine). Both have
the same three methods, so one loop (time_rounds) times either.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

BLOCK_SECONDS = 0.02
WARMUP_SECONDS = 0.05
# Calls slower than this get one untimed call before a block, not a quarter of the block (which would double the
# run's length).
SLOW_CALL_SECONDS = 0.01
# With several threads per engine, an engine's idle threads keep spinning for tens of ms after its last call
# (ONNX Runtime's pool 10-50 ms, OpenBLAS ~0.1 s, torch's OpenMP): each engine's turn starts after this pause.
IDLE_SECONDS = 0.05


def calibrate(runner, x):
    """Seconds per call, from warm-up calls lasting at least WARMUP_SECONDS."""
    runner.reset()
    calls, start = 0, time.perf_counter()
    while True:
        runner(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= WARMUP_SECONDS and calls >= 2:
            return elapsed / calls


def time_block(runner, x, calls, untimed):
    """Microseconds per call over `calls` timed calls, after `untimed` ones (from zero state)."""
    runner.reset()
    for _ in range(untimed):
        runner(x)
    start = time.perf_counter_ns()
    for _ in range(calls):
        runner(x)
    return (time.perf_counter_ns() - start) / calls / 1e3


class LocalEngine:
    """A Runner (fastrnn.benchmark.peers) timed in this process."""

    def __init__(self, runner, x):
        self.runner, self.x = runner, x
        self.name, self.note, self.stream_note, self.precision = runner.name, runner.note, runner.stream_note, \
            runner.precision

    def calibrate(self):
        return calibrate(self.runner, self.x)

    def time_block(self, calls, untimed):
        return time_block(self.runner, self.x, calls, untimed)

    def close(self):
        pass


class EngineProcess:
    """One engine in a process of its own (fastrnn.benchmark.worker), driven over a pipe of JSON lines. Between
    its turns the process waits on a read, so it runs nothing while another engine is timed."""

    def __init__(self, name):
        self.name, self.note, self.stream_note, self.precision = name, "", "", ""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen([sys.executable, "-m", "fastrnn.benchmark.worker"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, **command):
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} benchmark process died (exit status {self._proc.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name} benchmark process: {answer['error']}")
        return answer

    def build(self, case, weights, threads):
        """Prepare the engine for a case; returns None, or the reason it cannot run it."""
        answer = self.ask(op="build", engine=self.name, case=case.as_dict(), weights=weights, threads=threads)
        self.note, self.stream_note = answer.get("note", ""), answer.get("stream_note", "")
        self.precision = answer.get("precision", "")
        return answer.get("unavailable")

    def calibrate(self):
        return self.ask(op="calibrate")["seconds"]

    def time_block(self, calls, untimed):
        return self.ask(op="time", calls=calls, untimed=untimed)["us"]

    def check(self, path):
        """Write the engine's output on the case's check input to `path` (.npy)."""
        self.ask(op="check", path=path)

    def close(self):
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()


def time_rounds(engines, repeat, progress=None, idle_seconds=0.0):
    """({engine name: [us per call, one per round]}, {engine name: calls per block}) by interleaved rounds in a
    rotating order, `idle_seconds` before each turn."""
    per_call = {e.name: e.calibrate() for e in engines}
    number = {name: max(1, int(BLOCK_SECONDS / seconds)) for name, seconds in per_call.items()}
    samples = {e.name: [] for e in engines}
    for round_index in range(repeat):
        shift = round_index % len(engines)
        for engine in engines[shift:] + engines[:shift]:
            n = number[engine.name]
            if idle_seconds:
                time.sleep(idle_seconds)
            # Untimed calls first, so the previous engine's spinning threads go idle.
            untimed = max(1, n // 4) if per_call[engine.name] < SLOW_CALL_SECONDS else 1
            samples[engine.name].append(engine.time_block(n, untimed))
        if progress is not None:
            progress.advance()
    return samples, number

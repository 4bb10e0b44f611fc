"""One benchmarked engine in a process of its own: `python -m fastrnn.benchmark.worker`, driven by
fastrnn.benchmark.timing.EngineProcess over stdin/stdout, one JSON object per line each way.

Commands: build (engine, case, weights, threads) -> note, stream_note, precision or unavailable; calibrate -> seconds
per call; time (calls, untimed) -> us per call; check (path) -> writes the output on the check input; quit.
Weights are {"seed": n} (fastrnn.benchmark.cases.random_state_dict) or {"file": path, "prefix": p}, so no array
crosses the pipe.
"""
from __future__ import annotations

import json
import sys

import numpy as np


def state_dict_for(case, weights):
    """The case's weights, from a seed or a file."""
    from fastrnn.benchmark.cases import random_state_dict

    if "file" in weights:
        import fastrnn

        return fastrnn.load(weights["file"], prefix=weights.get("prefix"), dtype=np.dtype(case.dtype)).state_dict()
    return random_state_dict(case, weights.get("seed", 0))


def _build(command):
    from fastrnn.benchmark import cases, peers

    case = cases.Case.from_dict(command["case"])
    state_dict = state_dict_for(case, command["weights"])
    engine, threads = command["engine"], command["threads"]
    if engine == "fastrnn":
        runner = peers.make_fastrnn(case, state_dict, threads)
    else:
        runners, missing = peers.make_peers(case, state_dict, threads, [engine])
        if missing:
            return None, {"unavailable": missing[engine]}
        runner = runners[0]
    return (case, runner, cases.make_input(case)), {"note": runner.note, "stream_note": runner.stream_note,
                                                    "precision": runner.precision}


def main():
    from fastrnn.benchmark import cases, peers, timing

    built = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "quit":
                break
            if op == "build":
                built, answer = _build(command)
            elif built is None:
                answer = {"error": f"{op}: no engine built"}
            elif op == "calibrate":
                answer = {"seconds": timing.calibrate(built[1], built[2])}
            elif op == "time":
                answer = {"us": timing.time_block(built[1], built[2], command["calls"], command["untimed"])}
            elif op == "check":
                case, runner, _ = built
                np.save(command["path"], peers.run_check(runner, case, cases.check_input(case)))
                answer = {"ok": True}
            else:
                answer = {"error": f"unknown command {op!r}"}
        except Exception as exc:  # reported to the parent, which names the engine
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

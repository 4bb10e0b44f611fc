"""fastrnn's one benchmark harness, behind `fastrnn bench` and every script in bench/:

    cases    what is timed: Case (a model and how it is run), the default suite, weights and inputs
    peers    the engines: fastrnn, torch, ONNX Runtime, OpenVINO, each as a Runner (numpy in, numpy out)
    timing   the timer: interleaved rounds, each engine in its own process (worker) or all in this one
    run      one row: every engine timed on a case and checked against torch
    report   the header, table, notes and chart
    command  `fastrnn bench` itself; sweeps: `fastrnn bench --sweep`, the engine's tuning thresholds
"""

"""Engine micro-benchmark: fastrnn vs torch vs onnxruntime, side by side in one process.

Engines are interleaved (one timed sample of each engine per round) and the median over rounds is
reported, so drift in clock speed or a noisy neighbour hits every engine alike. Peers run fp32 with
the same thread budget (torch.set_num_threads, ORT intra_op_num_threads, fastrnn.set_num_threads).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/engine_micro.py [--threads 1] [--only lstm64]

With --alone each engine is timed on its own after an idle pause (see measure_alone): use it at 2+ threads.

Columns: us per call, ratio fastrnn / best peer. 'step' configs time one streaming T=1 call carrying
the state (what a real-time user does per frame): fastrnn's module call, its `stream()` wrapper and
the engine's Layer.forward alone; the others time a whole sequence (--blas adds fastrnn with BLAS in
the time loop instead of the packed kernel, to see the crossover; --rows prints the panels-vs-BLAS
crossover over the number of batch rows instead).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo checkout

# (name, mode, I, H, T, B, bidirectional, proj_size, streaming)
CONFIGS = [
    ("step LSTM 64", "LSTM", 64, 64, 1, 1, False, 0, True),
    ("step GRU 64", "GRU", 64, 64, 1, 1, False, 0, True),
    ("step LSTM 256", "LSTM", 256, 256, 1, 1, False, 0, True),
    ("RNN tanh 64 T100", "RNN_TANH", 64, 64, 100, 1, False, 0, False),
    ("GRU 64 T100", "GRU", 64, 64, 100, 1, False, 0, False),
    ("LSTM 64 T100", "LSTM", 64, 64, 100, 1, False, 0, False),
    ("LSTM 128 T100", "LSTM", 128, 128, 100, 1, False, 0, False),
    ("GRU 256 T100", "GRU", 256, 256, 100, 1, False, 0, False),
    ("LSTM 256 T100", "LSTM", 256, 256, 100, 1, False, 0, False),
    ("LSTM 512 T100", "LSTM", 512, 512, 100, 1, False, 0, False),
    ("LSTM 1024 T100", "LSTM", 1024, 1024, 100, 1, False, 0, False),
    ("GRU 1024 T100", "GRU", 1024, 1024, 100, 1, False, 0, False),
    ("LSTM 512 proj128 T100", "LSTM", 512, 512, 100, 1, False, 128, False),
    ("LSTM 256 B16 T100", "LSTM", 256, 256, 100, 16, False, 0, False),
    ("LSTM 256 bidir B8 T100", "LSTM", 256, 256, 100, 8, True, 0, False),
    ("LSTM 512 B64 T50", "LSTM", 512, 512, 50, 64, False, 0, False),
]


def torch_module(mode, I, H, bidir, proj):
    import torch
    torch.manual_seed(0)
    if mode == "LSTM":
        return torch.nn.LSTM(I, H, bidirectional=bidir, proj_size=proj).eval()
    if mode == "GRU":
        return torch.nn.GRU(I, H, bidirectional=bidir).eval()
    return torch.nn.RNN(I, H, nonlinearity="tanh" if mode == "RNN_TANH" else "relu", bidirectional=bidir).eval()


def fastrnn_module(mode, I, H, bidir, proj, tm):
    import fastrnn
    if mode == "LSTM":
        m = fastrnn.LSTM(I, H, bidirectional=bidir, proj_size=proj)
    elif mode == "GRU":
        m = fastrnn.GRU(I, H, bidirectional=bidir)
    else:
        m = fastrnn.RNN(I, H, nonlinearity="tanh" if mode == "RNN_TANH" else "relu", bidirectional=bidir)
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return m


def ort_session(mode, I, H, T, B, bidir, proj, threads):
    """A one-node ONNX model (LSTM/GRU/RNN op) with random weights of the right shapes; None if the op
    cannot express the config (projection)."""
    if proj:
        return None
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    D = 2 if bidir else 1
    G = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(H)
    W = rng.uniform(-s, s, (D, G * H, I)).astype(np.float32)
    R = rng.uniform(-s, s, (D, G * H, H)).astype(np.float32)
    Bb = rng.uniform(-s, s, (D, 2 * G * H)).astype(np.float32)
    op = {"LSTM": "LSTM", "GRU": "GRU"}.get(mode, "RNN")
    attrs = dict(hidden_size=H, direction="bidirectional" if bidir else "forward")
    if op == "GRU":
        attrs["linear_before_reset"] = 1          # torch's GRU form
    if op == "RNN":
        attrs["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"] * D
    inputs = ["X", "W", "R", "B", "", "h0"] + (["c0"] if op == "LSTM" else [])
    outputs = ["Y", "Yh"] + (["Yc"] if op == "LSTM" else [])
    node = helper.make_node(op, inputs, outputs, **attrs)
    ins = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I]),
           helper.make_tensor_value_info("h0", TensorProto.FLOAT, [D, B, H])]
    if op == "LSTM":
        ins.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, [D, B, H]))
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    inits = [helper.make_tensor(n, TensorProto.FLOAT, a.shape, a.ravel()) for n, a in (("W", W), ("R", R), ("B", Bb))]
    graph = helper.make_graph([node], "rnn", ins, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def make_engines(cfg, threads, blas_too=False):
    import torch
    name, mode, I, H, T, B, bidir, proj, streaming = cfg
    D = 2 if bidir else 1
    P = proj or H
    tm = torch_module(mode, I, H, bidir, proj)
    fm = fastrnn_module(mode, I, H, bidir, proj, tm)
    x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
    xt = torch.from_numpy(x)
    lstm = mode == "LSTM"
    h0 = np.zeros((D, B, P), np.float32)
    c0 = np.zeros((D, B, H), np.float32)
    engines = {}

    if streaming:
        state_f = [(h0, c0) if lstm else h0]
        def run_fastrnn():
            _, state_f[0] = fm(x, state_f[0])
        state_t = [(torch.from_numpy(h0), torch.from_numpy(c0)) if lstm else torch.from_numpy(h0)]
        def run_torch():
            with torch.inference_mode():
                _, state_t[0] = tm(xt, state_t[0])
        # The engine alone: what fastrnn's own streaming wrapper pays below the Python API.
        layer = fm._layers[0]
        out = np.empty((T * B, D * P), np.float32)
        gates = np.empty(T * B * D * layer.gate_rows, np.float32)
        scratch = np.empty(layer.scratch_size(B), np.float32)
        hh, cc = h0.copy(), c0.copy()
        rows = x.reshape(T * B, I)
        def run_layer():
            layer.forward(rows, T, B, False, hh, cc if lstm else None, out, gates, scratch)
        stream = fm.stream(B)
        def run_stream():
            stream(x)
        engines["fastrnn"] = run_fastrnn
        engines["fastrnn stream"] = run_stream
        engines["fastrnn Layer"] = run_layer
    else:
        def run_fastrnn():
            fm(x)
        def run_torch():
            with torch.inference_mode():
                tm(xt)
        engines["fastrnn"] = run_fastrnn
        if blas_too:
            from fastrnn import _engine
            saved, _engine._PACKED_MAX_BYTES = _engine._PACKED_MAX_BYTES, 0
            fb = fastrnn_module(mode, I, H, bidir, proj, tm)   # same weights, BLAS in the time loop
            _engine._PACKED_MAX_BYTES = saved
            engines["fastrnn blas"] = lambda: fb(x)
    engines["torch"] = run_torch
    sess = ort_session(mode, I, H, T, B, bidir, proj, threads)
    if sess is not None:
        feeds = {"X": x, "h0": h0}
        if lstm:
            feeds["c0"] = c0
        if streaming:
            names = ["Yh", "Yc"] if lstm else ["Yh"]
            def run_ort():
                res = sess.run(names, feeds)
                feeds["h0"] = res[0]
                if lstm:
                    feeds["c0"] = res[1]
        else:
            def run_ort():
                sess.run(["Y"], feeds)
        engines["onnxruntime"] = run_ort
    return engines


def measure(engines, budget_s):
    """Interleaved medians (us per call). Each sample times `inner` calls so tiny calls beat the timer."""
    for fn in engines.values():
        for _ in range(3):
            fn()
    single = {}
    for k, fn in engines.items():
        t0 = time.perf_counter()
        fn()
        single[k] = time.perf_counter() - t0
    per_round = sum(single.values())
    inner = max(1, int(2e-4 / max(min(single.values()), 1e-7)))
    rounds = int(min(400, max(15, budget_s / max(per_round * inner, 1e-7))))
    samples = {k: [] for k in engines}
    for _ in range(rounds):
        for k, fn in engines.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[k].append((time.perf_counter() - t0) / inner)
    return {k: statistics.median(v) * 1e6 for k, v in samples.items()}


def measure_alone(engines, budget_s, rounds=3, idle_s=0.3):
    """Each engine on its own (us per call): idle_s of sleep first, so the previous engine's spinning threads
    (onnxruntime's pool spins for 10-50 ms after a run, torch's OpenMP threads too) have gone idle, then a
    median over calls; the best of `rounds` such medians. What a process running one engine sees at 2+ threads,
    where the interleaved medians time fastrnn inside the other engines' spin windows (bench/FLOOR.md)."""
    best = {}
    for _ in range(rounds):
        for k, fn in engines.items():
            time.sleep(idle_s)
            fn()
            t0 = time.perf_counter()
            fn()
            single = max(time.perf_counter() - t0, 1e-7)
            samples = []
            for _ in range(int(min(200, max(5, budget_s / rounds / len(engines) / single)))):
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            best[k] = min(best.get(k, float("inf")), statistics.median(samples) * 1e6)
    return best


def row_crossover(budget_s):
    """us per step of one layer's time loop (T = 50) at B rows: panels for every step vs BLAS gemm beyond one
    row (how _engine._PACKED_MAX_ROWS was chosen). The input projection is one gemm in both."""
    import fastrnn
    from fastrnn import _engine
    T = 50
    print(f"{'rows crossover (us/step)':26s} " + " ".join(f"{f'B{B}':>13s}" for B in ROW_COUNTS) + "   (panels/blas)")
    for mode, H in (("LSTM", 64), ("LSTM", 256), ("LSTM", 512), ("GRU", 64), ("GRU", 256)):
        cells = []
        for B in ROW_COUNTS:
            engines = {}
            for label, rows in (("panels", 1 << 20), ("blas", 1)):
                saved, _engine._PACKED_MAX_ROWS = _engine._PACKED_MAX_ROWS, rows
                layer = getattr(fastrnn, mode)(H, H)._layers[0]
                _engine._PACKED_MAX_ROWS = saved
                x = np.random.default_rng(0).standard_normal((T * B, H)).astype(np.float32)
                h, c = np.zeros((1, B, H), np.float32), np.zeros((1, B, H), np.float32)
                out = np.empty((T * B, H), np.float32)
                gates = np.empty(T * B * layer.gate_rows, np.float32)
                scratch = np.empty(layer.scratch_size(B), np.float32)
                engines[label] = (lambda layer=layer, x=x, h=h, c=c, out=out, gates=gates, scratch=scratch, B=B:
                                  layer.forward(x, T, B, False, h, c if mode == "LSTM" else None, out, gates, scratch))
            res = measure(engines, budget_s / len(ROW_COUNTS))
            cells.append(f"{res['panels'] / T:6.0f}/{res['blas'] / T:<6.0f}")
        print(f"{mode + ' ' + str(H):26s} " + " ".join(cells), flush=True)


ROW_COUNTS = (2, 4, 8, 16, 24, 32, 48, 64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="substring filter on config names (comma-separated)")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per config")
    ap.add_argument("--blas", action="store_true", help="also time the BLAS time loop (packed crossover)")
    ap.add_argument("--rows", action="store_true", help="only the panels-vs-BLAS crossover over batch rows")
    ap.add_argument("--alone", action="store_true",
                    help="time each engine on its own after idling (no other engine's threads spinning)")
    args = ap.parse_args()

    import torch
    import onnxruntime
    import fastrnn
    torch.set_num_threads(args.threads)
    fastrnn.set_num_threads(args.threads)
    from fastrnn import _engine
    isa = getattr(_engine, "isa", lambda: "n/a")()
    print(f"# {platform.processor() or platform.machine()} {os.cpu_count()} cpus, threads={args.threads}, "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, fastrnn isa={isa}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    if args.rows:
        return row_crossover(args.budget * 4)
    print(f"{'config (us/call)':26s} {'fastrnn':>10s} {'torch':>10s} {'ort':>10s} {'stream':>10s} {'Layer':>10s} "
          f"{'blas':>10s} {'ratio':>6s}  (ratio: fastrnn, or stream for step configs, / best peer)")
    wanted = [w for w in args.only.split(",") if w]
    for cfg in CONFIGS:
        if wanted and not any(w.lower() in cfg[0].lower() for w in wanted):
            continue
        res = (measure_alone if args.alone else measure)(make_engines(cfg, args.threads, args.blas), args.budget)
        peers = [v for k, v in res.items() if k in ("torch", "onnxruntime")]
        ratio = res.get("fastrnn stream", res["fastrnn"]) / min(peers)
        fmt = lambda k: f"{res[k]:10.1f}" if k in res else f"{'-':>10s}"
        print(f"{cfg[0]:26s} {fmt('fastrnn')} {fmt('torch')} {fmt('onnxruntime')} {fmt('fastrnn stream')} "
              f"{fmt('fastrnn Layer')} {fmt('fastrnn blas')} {ratio:6.2f}",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())

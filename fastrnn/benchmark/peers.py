"""The engines `fastrnn bench` compares: fastrnn itself and the peers a user would otherwise pick.

Every engine is built from one numpy state_dict (torch names) and one Case (fastrnn.benchmark.cases), and runs
as a Runner: `runner(x)` takes a numpy input and returns the output sequence as a numpy array, so converting
to and from each engine's own tensors is part of every measured call. With `case.stream` each call is
one timestep (x of shape (1, B, I)) and the runner carries the recurrent state to the next call;
`runner.reset()` goes back to zero state.

torch, onnxruntime and openvino are imported here only, and only when a peer is built; the ONNX peers
run a model exported in-process from the torch module by torch's TorchScript-based exporter (so they
need torch too). A peer that cannot run a case raises PeerUnavailable with the reason.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

PEERS = ("torch", "onnxruntime", "openvino")


class PeerUnavailable(Exception):
    """This engine cannot run here or cannot run this case; the message says why."""


class Runner:
    """A prepared engine: call it on a numpy input, get the numpy output sequence."""

    def __init__(self, name, call, reset=None, note="", stream_note="", precision="float32"):
        self.name = name
        self._call = call
        self._reset = reset
        self.note = note                # the thread setting, said in the bench output
        self.stream_note = stream_note  # how a streaming call carries the state
        self.precision = precision      # what the engine computes in: 'float32', 'bfloat16', 'int8', ...

    def __call__(self, x):
        return self._call(x)

    def reset(self):
        if self._reset is not None:
            self._reset()


def _torch_kwargs(model):
    """torch.nn constructor arguments for the case's model (torch has no `cell`, `kind` or `nonlinearity` for
    LSTM/GRU)."""
    kwargs = dict(num_layers=model.num_layers, bidirectional=model.bidirectional, bias=model.bias)
    if model.proj_size:
        kwargs["proj_size"] = model.proj_size
    if model.kind == "RNN":
        kwargs["nonlinearity"] = model.nonlinearity
    return kwargs


def fastrnn_module(case, state_dict=None):
    module = case.model.build(dtype=np.dtype(case.dtype), precision=case.precision)
    if state_dict is not None:
        module.load_state_dict(state_dict)
    return module


def run_check(runner, case, x):
    """The runner's output sequence for x from zero state (streamed step by step for stream cases)."""
    runner.reset()
    if case.stream:
        out = np.concatenate([runner(np.ascontiguousarray(x[t:t + 1])) for t in range(x.shape[0])], axis=0)
    else:
        out = runner(x)
    runner.reset()
    return out


def make_fastrnn(case, state_dict, threads):
    import fastrnn

    fastrnn.set_num_threads(threads)
    module = fastrnn_module(case, state_dict)
    note = f"fastrnn.set_num_threads({threads})"
    if module.precision != case.dtype:
        note += f", precision={module.precision!r}"
    if not case.stream:
        return Runner("fastrnn", lambda x: module(x)[0], note=note, precision=module.precision)
    holder = {}

    def reset():
        holder["stream"] = module.stream(batch_size=case.batch)

    reset()
    return Runner("fastrnn", lambda x: holder["stream"](x), reset, note, "module.stream(B)", module.precision)


def _import(name):
    try:
        return __import__(name)
    except ImportError:
        raise PeerUnavailable(f"{name} is not installed (pip install 'fastrnn[bench]')") from None


def torch_module(case, state_dict):
    torch = _import("torch")
    model = case.model
    module = getattr(torch.nn, model.kind)(model.input_size, model.hidden_size, **_torch_kwargs(model))
    module = module.to({"float32": torch.float32, "float64": torch.float64}[case.dtype])
    module.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in state_dict.items()})
    return module.eval()


def make_torch(case, state_dict, threads):
    torch = _import("torch")
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    torch.set_num_threads(threads)
    module = torch_module(case, state_dict)
    state = {"hx": None}

    def call(x):
        with torch.inference_mode():
            out, hx = module(torch.from_numpy(x), state["hx"])
        if case.stream:
            state["hx"] = hx
        return out.numpy()

    return Runner("torch", call, lambda: state.update(hx=None), f"torch.set_num_threads({threads})",
                  "module(x, hx) with T=1" if case.stream else "", case.dtype)


def torch_reference(case, state_dict, x):
    """torch's output for the whole sequence x from zero state (what every engine is checked against)."""
    torch = _import("torch")
    with torch.inference_mode():
        return torch_module(case, state_dict)(torch.from_numpy(x))[0].numpy()


def _state_shapes(case):
    m = case.model
    D = 2 if m.bidirectional else 1
    shapes = {"h0": (m.num_layers * D, case.batch, m.hidden_size)}
    if m.kind == "LSTM":
        shapes["c0"] = shapes["h0"]
    return shapes


def export_onnx(case, state_dict):
    """The torch module as ONNX bytes, inputs x, h0[, c0], outputs y, hn[, cn], static shapes of the case."""
    if case.model.proj_size:
        raise PeerUnavailable("the ONNX LSTM operator has no projection (proj_size)")
    torch = _import("torch")
    module = torch_module(case, state_dict)
    T = 1 if case.stream else case.seq_len
    dtype = module.weight_ih_l0.dtype
    args = [torch.zeros(T, case.batch, case.model.input_size, dtype=dtype)]
    states = [torch.zeros(shape, dtype=dtype) for shape in _state_shapes(case).values()]
    names = list(_state_shapes(case))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module, (args[0], tuple(states) if case.model.kind == "LSTM" else states[0]), buffer, dynamo=False,
                input_names=["x", *names], output_names=["y", *[n.replace("0", "n") for n in names]],
                opset_version=17,
            )
        except Exception as exc:  # the exporter's errors are many kinds; the peer is just not available
            raise PeerUnavailable(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    return buffer.getvalue()


def _onnx_runner(name, run, case, note, precision):
    """A Runner over run(feeds) -> [y, hn(, cn)], feeding zero state or, streaming, the last state."""
    zeros = {key: np.zeros(shape, dtype=case.dtype) for key, shape in _state_shapes(case).items()}
    state = dict(zeros)

    def call(x):
        outs = run({"x": x, **state})
        if case.stream:
            state.update(zip(zeros, outs[1:]))
        return outs[0]

    return Runner(name, call, lambda: state.update(zeros), note,
                  "ONNX graph exported with T=1, state outputs fed back" if case.stream else "", precision)


def make_onnxruntime(case, state_dict, threads, onnx_bytes):
    ort = _import("onnxruntime")
    ort.set_default_logger_severity(3)  # a kernel that refuses a dtype is reported once, as n/a
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise PeerUnavailable(f"onnxruntime cannot load the exported model: {_first_line(exc)}") from None
    return _onnx_runner("onnxruntime", lambda feeds: session.run(None, feeds), case,
                        f"intra_op_num_threads={threads}", case.dtype)


def make_openvino(case, state_dict, threads, onnx_bytes):
    ov = _import("openvino")
    core = ov.Core()
    try:
        model = core.read_model(model=onnx_bytes)
        # OpenVINO computes in bf16 by default on CPUs with bf16 hardware: the float32 rows compare float32 engines.
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                     "INFERENCE_PRECISION_HINT": "f32"})
    except Exception as exc:
        raise PeerUnavailable(f"openvino cannot compile the exported model: {_first_line(exc)}") from None
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)

    def run(feeds):
        results = request.infer(feeds)
        return [np.array(results[port]) for port in outputs]

    precision = str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: '", "").rstrip("'>")
    return _onnx_runner("openvino", run, case, f"INFERENCE_NUM_THREADS={threads}, precision {precision}", case.dtype)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    text = text[0] if text else ""
    return text.split("Status Message: ", 1)[-1] if "Status Message: " in text else f"{type(exc).__name__}: {text}"


def _probed(runner, case):
    """The runner, once it has run one zero input: some kernels only refuse a dtype when first run."""
    T = 1 if case.stream else case.seq_len
    try:
        runner(np.zeros((T, case.batch, case.model.input_size), dtype=case.dtype))
    except Exception as exc:
        raise PeerUnavailable(f"{runner.name} cannot run the exported model: {_first_line(exc)}") from None
    runner.reset()
    return runner


def make_peers(case, state_dict, threads, peers):
    """The requested peers for this case: (runners, {peer: reason it is unavailable})."""
    runners, missing = [], {}
    onnx_bytes, onnx_error = None, None
    for name in peers:
        try:
            if name == "torch":
                runners.append(make_torch(case, state_dict, threads))
                continue
            if onnx_bytes is None and onnx_error is None:
                try:
                    onnx_bytes = export_onnx(case, state_dict)
                except PeerUnavailable as exc:
                    onnx_error = str(exc)
            if onnx_error is not None:
                raise PeerUnavailable(onnx_error)
            make = make_onnxruntime if name == "onnxruntime" else make_openvino
            runners.append(_probed(make(case, state_dict, threads, onnx_bytes), case))
        except PeerUnavailable as exc:
            missing[name] = str(exc)
    return runners, missing


def versions(names):
    """Installed versions of the named packages (only those importable; nothing is imported otherwise)."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found

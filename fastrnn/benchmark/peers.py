"""The engines `fastrnn bench` compares: fastrnn itself and the peers a user would otherwise pick.

Every engine is built from one numpy state_dict (torch names) and one Case (fastrnn.benchmark.cases), and runs
as a Runner: `runner(x)` takes a numpy input and returns the output sequence as a numpy array, so converting
to and from each engine's own tensors is part of every measured call. With `case.stream` each call is
one timestep (x of shape (1, B, I)) and the runner carries the recurrent state to the next call;
`runner.reset()` goes back to zero state.

torch, onnxruntime and openvino are imported here only, and only when a peer is built; the ONNX peers
run a model exported in-process from the torch module by torch's TorchScript-based exporter (so they
need torch too). A peer that cannot run a case raises PeerUnavailable with the reason.

The reduced-precision peers, for `fastrnn bench --precision`: 'openvino-bf16' is OpenVINO at its default inference
precision (bf16 on CPUs with bf16 hardware; the runner says which it chose), 'torch-int8' is torch's dynamic
quantization (quantize_dynamic, qint8 weights, on nn.LSTM and nn.GRU).
"""
from __future__ import annotations

import io
import warnings

import numpy as np

PEERS = ("torch", "onnxruntime", "openvino")                       # float peers, in the dtype of the case
REDUCED_PEERS = {"bfloat16": "openvino-bf16", "int8": "torch-int8"}  # the peer for each of fastrnn's precisions
ALL_PEERS = (*PEERS, *REDUCED_PEERS.values())
QUANTIZED_ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")           # torch's, in order of preference


def default_peers(precision=None):
    """The peers `fastrnn bench` compares with: the float ones, and the reduced one for fastrnn's precision."""
    return [*PEERS, *([REDUCED_PEERS[precision]] if precision in REDUCED_PEERS else [])]


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
    return _torch_runner("torch", torch, torch_module(case, state_dict), case, f"torch.set_num_threads({threads})",
                         case.dtype)


def torch_int8_module(case, state_dict):
    """torch's dynamically quantized module (qint8 weights, per tensor) on the case's float32 weights, and the
    quantized engine it runs on."""
    torch = _import("torch")
    if case.model.kind not in ("LSTM", "GRU"):
        raise PeerUnavailable(f"torch's quantize_dynamic quantizes nn.LSTM and nn.GRU, not nn.{case.model.kind}")
    if case.dtype != "float32":
        raise PeerUnavailable("torch's dynamic quantization takes a float32 model")
    if case.model.proj_size:
        raise PeerUnavailable("torch's dynamically quantized LSTM fails with proj_size (its packed weights are "
                              "built for hidden_size inputs)")
    engine = next((e for e in QUANTIZED_ENGINES if e in torch.backends.quantized.supported_engines), None)
    if engine is None:
        raise PeerUnavailable(f"torch has no quantized engine here ({torch.backends.quantized.supported_engines})")
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        from torch.ao.nn.quantized import dynamic
        from torch.ao.quantization import quantize_dynamic

        # quantize_dynamic swaps the children of the module it is given, never that module itself: wrap it.
        wrapped = torch.nn.Sequential(torch_module(case, state_dict))
        module = quantize_dynamic(wrapped, {torch.nn.LSTM, torch.nn.GRU}, dtype=torch.qint8)[0]
    if not isinstance(module, (dynamic.LSTM, dynamic.GRU)):
        raise PeerUnavailable(f"quantize_dynamic left nn.{case.model.kind} unquantized ({type(module).__name__})")
    return module.eval(), engine


def make_torch_int8(case, state_dict, threads):
    torch = _import("torch")
    torch.set_num_threads(threads)
    module, engine = torch_int8_module(case, state_dict)
    note = f"torch.set_num_threads({threads}), quantize_dynamic(dtype=torch.qint8), quantized engine {engine!r}"
    return _torch_runner("torch-int8", torch, module, case, note, "int8")


def _torch_runner(name, torch, module, case, note, precision):
    state = {"hx": None}

    def call(x):
        with torch.inference_mode():
            out, hx = module(torch.from_numpy(x), state["hx"])
        if case.stream:
            state["hx"] = hx
        return out.numpy()

    return Runner(name, call, lambda: state.update(hx=None), note, "module(x, hx) with T=1" if case.stream else "",
                  precision)


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


OPENVINO_TYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16", "f64": "float64"}


def make_openvino(case, state_dict, threads, onnx_bytes, name="openvino"):
    """OpenVINO on the exported model: 'openvino' computes in float32 (INFERENCE_PRECISION_HINT f32), 'openvino-bf16'
    at OpenVINO's default precision (bf16 on CPUs with bf16 hardware), which the runner reports."""
    ov = _import("openvino")
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if name == "openvino":
        # OpenVINO computes in bf16 by default on CPUs with bf16 hardware: the float32 rows compare float32 engines.
        config["INFERENCE_PRECISION_HINT"] = "f32"
    try:
        model = core.read_model(model=onnx_bytes)
        compiled = core.compile_model(model, "CPU", config)
    except Exception as exc:
        raise PeerUnavailable(f"openvino cannot compile the exported model: {_first_line(exc)}") from None
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)

    def run(feeds):
        results = request.infer(feeds)
        return [np.array(results[port]) for port in outputs]

    chosen = str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: '", "").rstrip("'>")
    how = "precision" if name == "openvino" else "default INFERENCE_PRECISION_HINT, chosen by OpenVINO:"
    precision = case.dtype if case.dtype == "float64" else OPENVINO_TYPES.get(chosen, chosen)
    return _onnx_runner(name, run, case, f"INFERENCE_NUM_THREADS={threads}, {how} {chosen}", precision)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    text = text[0] if text else ""
    return text.split("Status Message: ", 1)[-1] if "Status Message: " in text else f"{type(exc).__name__}: {text}"


def _probed(runner, case, what="the exported model"):
    """The runner, once it has run one zero input: some kernels only refuse a dtype (or an option) when first run."""
    T = 1 if case.stream else case.seq_len
    try:
        runner(np.zeros((T, case.batch, case.model.input_size), dtype=case.dtype))
    except Exception as exc:
        raise PeerUnavailable(f"{runner.name} cannot run {what}: {_first_line(exc)}") from None
    runner.reset()
    return runner


def make_peers(case, state_dict, threads, peers):
    """The requested peers for this case: (runners, {peer: reason it is unavailable})."""
    runners, missing = [], {}
    onnx_bytes, onnx_error = None, None
    for name in peers:
        try:
            if name not in ALL_PEERS:
                raise PeerUnavailable(f"unknown engine {name!r}; choose from {', '.join(ALL_PEERS)}")
            if name == "torch":
                runners.append(make_torch(case, state_dict, threads))
                continue
            if name == "torch-int8":
                runners.append(_probed(make_torch_int8(case, state_dict, threads), case, "this config"))
                continue
            if onnx_bytes is None and onnx_error is None:
                try:
                    onnx_bytes = export_onnx(case, state_dict)
                except PeerUnavailable as exc:
                    onnx_error = str(exc)
            if onnx_error is not None:
                raise PeerUnavailable(onnx_error)
            if name == "onnxruntime":
                runner = make_onnxruntime(case, state_dict, threads, onnx_bytes)
            else:
                runner = make_openvino(case, state_dict, threads, onnx_bytes, name)
            runners.append(_probed(runner, case))
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

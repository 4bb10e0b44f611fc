"""ONNX files (fastrnn._onnx): RNN/LSTM/GRU nodes against the ONNX package's own backend node tests, its reference
evaluator and ONNX Runtime (for the options the evaluator lacks), torch.onnx.export's chains of nodes against torch,
and what is refused. Skipped without the onnx package."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason='the ONNX reader needs the onnx package (pip install "fastrnn[onnx]")')
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fastrnn  # noqa: E402
from conftest import assert_close, randn  # noqa: E402

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
WEIGHTS = {1: "W", 2: "R", 3: "B", 7: "P"}  # node input positions that hold weights


def save(tmp_path, nodes, initializers, inputs, outputs=("Y",), opset=22, name="m.onnx"):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def run_as_onnx(module, node, feeds, outputs):
    """fastrnn's results in the layout of the node's outputs (Y (T, D, B, H) or, layout 1, (B, T, D, H); Y_h, Y_c
    (D, B, H) or (B, D, H)), from the node's run-time inputs (X, sequence_lens, initial_h, initial_c)."""
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    names = (list(node.input) + [""] * 8)[:8]
    x, lengths, h0, c0 = (feeds.get(names[i]) for i in (0, 4, 5, 6))
    to_torch = (lambda s: None if s is None else np.swapaxes(s, 0, 1)) if layout else (lambda s: s)
    h0, c0 = to_torch(h0), to_torch(c0)
    hx = None if h0 is None and c0 is None else (h0, c0) if node.op_type == "LSTM" else h0
    if node.op_type == "LSTM" and hx is not None and (h0 is None or c0 is None):
        D, B, H = (h0 if h0 is not None else c0).shape
        hx = tuple(np.zeros((D, B, H), np.float32) if s is None else s for s in hx)
    out, states = module(x, hx, lengths=lengths)
    h_n, c_n = states if isinstance(states, tuple) else (states, None)
    D, H = h_n.shape[0], h_n.shape[2]
    y = out.reshape(out.shape[:2] + (D, H))
    results = {"Y": y if layout else y.transpose(0, 2, 1, 3), "Y_h": to_torch(h_n), "Y_c": to_torch(c_n)}
    return [results[label] for label, name in zip(("Y", "Y_h", "Y_c"), node.output) if name][:len(outputs)]


# ---- the ONNX package's backend node tests -----------------------------------------------------------------------
def _backend_cases():
    from onnx.backend.test.case import node as cases
    from onnx.backend.test.case.node import gru, lstm, rnn  # noqa: F401  (defining them runs their export_*)

    return [c for c in cases._NodeTestCases if c.name.startswith(("test_lstm", "test_gru", "test_simple_rnn",
                                                                   "test_rnn"))]


BACKEND = _backend_cases()


def test_backend_cases_are_all_there():
    names = {c.name for c in BACKEND}
    assert {"test_lstm_with_peepholes", "test_lstm_batchwise", "test_gru_seq_length", "test_rnn_seq_length",
            "test_gru_defaults", "test_simple_rnn_bidirectional", "test_lstm_reverse"} <= names, names


@pytest.mark.parametrize("case", BACKEND, ids=[c.name for c in BACKEND])
def test_onnx_backend_node_data(case, tmp_path):
    """Each case's weight inputs become initializers (as in a saved model); its data's outputs are ONNX's."""
    node = case.model.graph.node[0]
    inputs, outputs = case.data_sets[0]
    feeds = dict(zip([i.name for i in case.model.graph.input], inputs))
    weights = {node.input[i]: feeds.pop(node.input[i]) for i in WEIGHTS if i < len(node.input) and node.input[i]}
    path = save(tmp_path, [node], weights, list(feeds), [o.name for o in case.model.graph.output],
                opset=case.model.opset_import[0].version)
    module = fastrnn.load(path)
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    assert module.batch_first == bool(layout)
    got = run_as_onnx(module, node, feeds, outputs)
    for g, want, name in zip(got, outputs, [o for o in node.output if o]):
        assert_close(g, want, np.float32, f"{case.name} {name}")


# ---- generated nodes against onnx.reference and ONNX Runtime ----------------------------------------------------
def make_node(tmp_path, rng, kind, direction="forward", bias=True, peepholes=False, h0=False, lengths=False,
              layout=0, I=5, H=6, **attrs):
    D = 2 if direction == "bidirectional" else 1
    G = GATES[kind]
    scale = 1.5 / np.sqrt(H)
    weights = {"W": rng.uniform(-scale, scale, (D, G * H, I)), "R": rng.uniform(-scale, scale, (D, G * H, H))}
    if bias:
        weights["B"] = rng.uniform(-scale, scale, (D, 2 * G * H))
    if peepholes:
        weights["P"] = rng.uniform(-scale, scale, (D, 3 * H))
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    inputs = ["X", "W", "R", "B" if bias else "", "seq" if lengths else "", "h0" if h0 else "",
              "c0" if h0 and kind == "LSTM" else "", "P" if peepholes else ""]
    inputs = inputs[:8 if kind == "LSTM" else 6]
    while not inputs[-1]:
        inputs.pop()
    outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    node = helper.make_node(kind, inputs, outputs, hidden_size=H, direction=direction,
                            **({"layout": layout} if layout else {}), **attrs)
    T, B = 7, 3
    feeds = {"X": randn(rng, (B, T, I) if layout else (T, B, I), scale=2.0)}
    if lengths:
        feeds["seq"] = rng.integers(1, T + 1, size=B).astype(np.int32)
    for name in inputs[5:7]:
        if name:
            feeds[name] = randn(rng, (B, D, H) if layout else (D, B, H))
    graph_inputs = [helper.make_tensor_value_info("seq", TensorProto.INT32, None)] if lengths else []
    graph = helper.make_graph([node], "g", graph_inputs + [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                                            for n in feeds if n != "seq"],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    path = tmp_path / f"{kind}.onnx"
    onnx.save(model, path)
    return path, model, node, feeds


REFERENCE_CASES = [("LSTM", dict(direction=d, bias=b, h0=h)) for d in ("forward", "reverse", "bidirectional")
                   for b, h in ((True, False), (False, True))] + \
                  [("GRU", dict(direction=d, linear_before_reset=lbr, h0=True, layout=lay))
                   for d in ("forward", "bidirectional") for lbr in (0, 1) for lay in (0, 1)] + \
                  [("GRU", dict(direction="reverse", bias=False))] + \
                  [("RNN", dict(direction=d, layout=lay, h0=lay == 0)) for d in ("forward", "reverse", "bidirectional")
                   for lay in (0, 1)]


@pytest.mark.parametrize("kind,options", REFERENCE_CASES,
                         ids=[f"{k}-" + "-".join(f"{n}={v}" for n, v in o.items()) for k, o in REFERENCE_CASES])
def test_against_onnx_reference(kind, options, tmp_path, rng, seed):
    from onnx.reference import ReferenceEvaluator

    path, model, node, feeds = make_node(tmp_path, rng, kind, **options)
    want = ReferenceEvaluator(model).run(None, feeds)
    got = run_as_onnx(fastrnn.load(path), node, feeds, want)
    for g, w, name in zip(got, want, node.output):
        assert_close(g, w, np.float32, f"{kind} {options} {name}", seed)


ORT_CASES = [
    ("LSTM", dict(peepholes=True, lengths=True, h0=True)),
    ("LSTM", dict(direction="bidirectional", peepholes=True, clip=1.5, input_forget=1, lengths=True)),
    ("LSTM", dict(activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"], activation_alpha=[0.3, 0.1, 1.4],
                  activation_beta=[0.4, 0.8])),
    ("LSTM", dict(direction="bidirectional", activations=["Sigmoid", "Tanh", "Tanh", "HardSigmoid", "Elu",
                                                          "Softsign"], activation_alpha=[0.25, 0.7],
                  activation_beta=[0.45])),
    ("GRU", dict(direction="bidirectional", lengths=True, h0=True, linear_before_reset=0, clip=2.0)),
    ("GRU", dict(activations=["Sigmoid", "LeakyRelu"], activation_alpha=[0.3], linear_before_reset=1)),
    ("GRU", dict(direction="reverse", activations=["HardSigmoid", "Softplus"], lengths=True)),
    ("RNN", dict(direction="bidirectional", activations=["Relu", ("ThresholdedRelu")], activation_alpha=[0.2],
                 lengths=True, clip=1.0)),
    ("RNN", dict(activations=["Affine"], activation_alpha=[0.5], activation_beta=[-0.1], h0=True)),
]


@pytest.mark.parametrize("kind,options", ORT_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(ORT_CASES)])
def test_against_onnxruntime(kind, options, tmp_path, rng, seed):
    """activations with alpha/beta, clip, peepholes, input_forget and sequence_lens, which onnx.reference lacks."""
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is the oracle of these options")
    path, model, node, feeds = make_node(tmp_path, rng, kind, **options)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, feeds)
    got = run_as_onnx(fastrnn.load(path), node, feeds, want)
    for g, w, name in zip(got, want, node.output):
        assert_close(g, w, np.float32, f"{kind} {options} {name}", seed)


def test_config_read_from_attributes(tmp_path, rng):
    path, *_ = make_node(tmp_path, rng, "GRU", direction="reverse", clip=2.5, activations=["HardSigmoid", "Elu"],
                         activation_alpha=[0.25, 0.75], activation_beta=[0.375], layout=1)  # exact in float32
    (group,) = fastrnn.find_rnns(path)
    assert group.problem is None and group.batch_first and group.prefix == "GRU_0."
    assert group.config == fastrnn.RNNConfig("GRU", False, 5, 6, clip=2.5, reverse=True, linear_before_reset=False,
                                             activations=(("hard_sigmoid", 0.25, 0.375), ("elu", 0.75, 0.0)))
    assert fastrnn.load(path, batch_first=False).batch_first is False  # the caller's convention wins

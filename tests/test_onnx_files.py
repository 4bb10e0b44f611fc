"""ONNX files as users have them: torch.onnx.export's chains of nodes loaded as one module (against torch), constant
initial states, several nodes, the command line, and every refusal (a LoadError naming the file, node and problem;
nothing in the graph is ever run). Skipped without the onnx package."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason='the ONNX reader needs the onnx package (pip install "fastrnn[onnx]")')
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fastrnn  # noqa: E402
from conftest import assert_close, randn  # noqa: E402
from fastrnn import cli  # noqa: E402


def lstm_model(tmp_path, rng, initializers=None, extra_nodes=(), inputs=("X", "W", "R", "B"), attrs=None,
               name="m.onnx"):
    """One LSTM node, H=4, I=3, its weights initializers unless `initializers` says otherwise."""
    weights = {"W": randn(rng, (1, 16, 3)), "R": randn(rng, (1, 16, 4)), "B": randn(rng, (1, 32))}
    weights.update(initializers or {})
    node = helper.make_node("LSTM", list(inputs), ["Y"], name="enc", hidden_size=4, **(attrs or {}))
    run_time = ["X"] + [k for k, v in weights.items() if v is None]  # None: a graph input, not stored
    graph = helper.make_graph(list(extra_nodes) + [node], "g",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in run_time],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in weights.items() if v is not None])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# ---- torch.onnx.export ---------------------------------------------------------------------------------------------
EXPORTS = [("LSTM", dict(num_layers=2, bidirectional=True)), ("GRU", dict(num_layers=3)),
           ("RNN", dict(num_layers=2, nonlinearity="relu", bidirectional=True)),
           ("LSTM", dict(num_layers=2, batch_first=True)), ("GRU", dict(bidirectional=True, bias=False))]


@pytest.mark.parametrize("kind,options", EXPORTS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(EXPORTS)])
def test_torch_export_chain_is_one_module(kind, options, tmp_path, rng, seed):
    torch = pytest.importorskip("torch", reason="torch writes the file and is the oracle")
    torch.manual_seed(seed)
    model = getattr(torch.nn, kind)(5, 7, **options).eval()
    x = torch.from_numpy(randn(rng, (4, 6, 5)))
    path = tmp_path / "exported.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False)
    (group,) = fastrnn.find_rnns(path)
    assert group.config is not None and group.config.num_layers == options.get("num_layers", 1), group
    module = fastrnn.load(path)  # the chain's layers take (T, B, I): torch's export transposes batch_first input
    assert not module.batch_first
    with torch.no_grad():
        want, want_states = model(x)
    xs = x.numpy().swapaxes(0, 1) if options.get("batch_first") else x.numpy()
    out, states = module(xs)
    out = out.swapaxes(0, 1) if options.get("batch_first") else out
    assert_close(out, want.numpy(), np.float32, f"{kind} {options} out", seed)
    for got, w in zip(states if isinstance(states, tuple) else (states,),
                      want_states if isinstance(want_states, tuple) else (want_states,)):
        assert_close(got, w.numpy(), np.float32, f"{kind} {options} state", seed)


# ---- constants, several nodes, the rest of the model ---------------------------------------------------------------
def test_zero_initial_states_are_the_default(tmp_path, rng):
    zeros = helper.make_node("ConstantOfShape", ["shape"], ["h0"])
    expand = helper.make_node("Expand", ["c_zero", "shape"], ["c0"])
    path = lstm_model(tmp_path, rng, {"shape": np.array([1, 2, 4]), "c_zero": np.zeros(1, np.float32)},
                      [zeros, expand], ("X", "W", "R", "B", "", "h0", "c0"))
    x = randn(rng, (5, 2, 3))
    assert np.array_equal(fastrnn.load(path)(x)[0], fastrnn.load(path)(x, (np.zeros((1, 2, 4)),) * 2)[0])


def test_weights_in_constant_nodes_and_other_initializers(tmp_path, rng):
    w = randn(rng, (1, 16, 3))
    const = helper.make_node("Constant", [], ["Wc"], value=numpy_helper.from_array(w))
    path = lstm_model(tmp_path, rng, {"head.weight": np.ones((2, 4), np.float32)}, [const], ("X", "Wc", "R", "B"))
    sd = fastrnn.load_state_dict(path)
    assert sd.format == "onnx" and np.array_equal(sd["head.weight"], np.ones((2, 4)))
    assert np.array_equal(sd["enc.weight_ih_l0"], w[0][np.r_[0:4, 8:12, 12:16, 4:8]])  # ONNX i,o,f,c -> i,f,g,o
    assert "R" not in sd and "B" not in sd  # the RNN's tensors appear once, under torch's names


def test_several_nodes_need_a_prefix(tmp_path, rng):
    second = helper.make_node("GRU", ["Y2", "Wg", "Rg"], ["Z"], name="dec", hidden_size=2)
    path = lstm_model(tmp_path, rng, {"Wg": randn(rng, (1, 6, 3)), "Rg": randn(rng, (1, 6, 2))}, [second])
    with pytest.raises(fastrnn.LoadError, match=r"several RNNs.*'dec': GRU.*'enc': LSTM"):
        fastrnn.load(path)
    assert isinstance(fastrnn.load(path, prefix="dec"), fastrnn.GRU)
    assert isinstance(fastrnn.load(path, prefix="enc."), fastrnn.LSTM)
    with pytest.raises(fastrnn.LoadError, match=r"no RNN named 'nope'; candidates"):
        fastrnn.load(path, prefix="nope")


def test_command_line_info_and_run(tmp_path, rng, capsys):
    path = lstm_model(tmp_path, rng, attrs={"layout": 1})
    assert cli.main(["info", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "onnx" in shown and "enc: LSTM(input_size=3, hidden_size=4" in shown and "batch_first=True" in shown, shown
    x = randn(rng, (2, 5, 3))
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    want = fastrnn.LSTM(3, 4, batch_first=True)  # layout 1: batch first, as the node says
    want.load_state_dict({k[len("enc."):]: v for k, v in fastrnn.load_state_dict(path).items()})
    assert np.array_equal(np.load(tmp_path / "y.npy"), want(x)[0])


# ---- refusals ------------------------------------------------------------------------------------------------------
REFUSED = [
    ("weights a graph input", dict(initializers={"W": None}), r"enc: LSTM node: W \('W'\) is a graph input"),
    ("computed weights", dict(initializers={"W0": np.zeros((1, 16, 3), np.float32)}, inputs=("X", "Wx", "R", "B"),
                              extra_nodes=[helper.make_node("Relu", ["W0"], ["Wx"], name="act")]),
     r"W \('Wx'\) is computed by node 'act' \(Relu\)"),
    ("constant sequence_lens", dict(initializers={"L": np.array([3, 2], np.int32)}, inputs=("X", "W", "R", "B", "L")),
     r"sequence_lens \('L'\) is a constant"),
    ("non-zero initial_h", dict(initializers={"h": np.ones((1, 2, 4), np.float32)},
                                inputs=("X", "W", "R", "B", "", "h")), r"initial_h \('h'\) is a non-zero constant"),
    ("unknown attribute", dict(attrs={"sparsity": 2}), r"attribute 'sparsity' is not an ONNX LSTM attribute"),
    ("unknown activation", dict(attrs={"activations": ["Sigmoid", "Gelu", "Tanh"]}), r"activation 'Gelu'"),
    ("too few activations", dict(attrs={"activations": ["Sigmoid"]}), r"1 activations; this LSTM has 3"),
    ("bad shapes", dict(initializers={"R": np.zeros((1, 16, 5), np.float32)}), r"W has shape \(1, 16, 3\) and R"),
    ("hidden_size disagrees", dict(attrs={"hidden_size": 5}), r"hidden_size=5, but R has shape"),
    ("bad bias", dict(initializers={"B": np.zeros((1, 16), np.float32)}), r"B has shape \(1, 16\), expected"),
    ("negative clip", dict(attrs={"clip": -1.0}), r"clip=-1.0"),
    ("bad direction", dict(attrs={"direction": "sideways"}), r"direction 'sideways'"),
]


@pytest.mark.parametrize("what,changes,message", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_nodes(what, changes, message, tmp_path, rng):
    changes = dict(changes)
    attrs = changes.pop("attrs", {})
    node_attrs = {k: v for k, v in attrs.items() if k != "hidden_size"}
    path = lstm_model(tmp_path, rng, attrs=node_attrs, **changes)
    if "hidden_size" in attrs:  # the helper sets hidden_size itself
        model = onnx.load(path)
        model.graph.node[-1].attribute[0].i = attrs["hidden_size"]
        onnx.save(model, path)
    (group,) = fastrnn.find_rnns(path)
    assert group.config is None and group.problem
    with pytest.raises(fastrnn.LoadError, match=message) as info:
        fastrnn.load(path)
    assert str(path) in str(info.value)


def test_external_data_is_never_opened(tmp_path, rng):
    path = lstm_model(tmp_path, rng)
    model = onnx.load(path)
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
              size_threshold=0)
    (tmp_path / "w.bin").write_bytes(b"")  # were it read, the sizes would not match
    with pytest.raises(fastrnn.LoadError, match=r"W \('W'\) is stored as external data"):
        fastrnn.load(path)


@pytest.mark.parametrize("content", [b"\x08\x07\x12\xff\xff\xff\xff\x0f", b"\x08\x07\x3a\x05\x0a\x03abc",
                                     b"\x08\x07\x12" + bytes(range(256))])
def test_damaged_files(content, tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(fastrnn.LoadError, match=str(path)):
        fastrnn.load(path)


def test_missing_onnx_package_is_named(tmp_path, rng, monkeypatch):
    path = lstm_model(tmp_path, rng)
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(fastrnn.LoadError, match=r'pip install "fastrnn\[onnx\]"'):
        fastrnn.load(path)

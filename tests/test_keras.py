"""Keras files (fastrnn._keras, fastrnn._keras_weights): models built and run by Keras 3 (torch backend) give the same
outputs through fastrnn from .keras, legacy .h5 and weights-only files; Keras 2 files (written here in Keras 2's
layout, with its hard_sigmoid) against the numpy oracle; CuDNN weights made by Keras' own inverse conversion; what is
refused. Skipped without h5py (and, for the Keras-built models, without keras)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' torch backend, not fastrnn
h5py = pytest.importorskip("h5py", reason='the Keras reader needs h5py (pip install "fastrnn[keras]")')

import fastrnn  # noqa: E402
from conftest import assert_close, randn  # noqa: E402


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 builds the models these tests check against")
    if keras.backend.backend() != "torch" or not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3 on the torch backend, have {keras.__version__} on {keras.backend.backend()}")
    return keras


def _layer(keras, spec):
    kind, options = spec
    L = keras.layers
    if kind == "Bidirectional":
        inner, merge = options
        return L.Bidirectional(getattr(L, inner[0])(5, return_sequences=True, **inner[1]), merge_mode=merge,
                               name="rnn")
    return getattr(L, kind)(5, return_sequences=True, name="rnn", **options)


CASES = [("LSTM", {}), ("LSTM", dict(recurrent_activation="hard_sigmoid", activation="relu", use_bias=False)),
         ("GRU", {}), ("GRU", dict(reset_after=False, go_backwards=True)), ("GRU", dict(activation="softsign")),
         ("SimpleRNN", dict(activation="relu")), ("SimpleRNN", dict(go_backwards=True, activation="linear")),
         ("Bidirectional", (("LSTM", {}), "concat")), ("Bidirectional", (("GRU", {}), "sum")),
         ("Bidirectional", (("GRU", dict(reset_after=False)), "mul")),
         ("Bidirectional", (("SimpleRNN", dict(activation="elu")), "ave"))]


@pytest.mark.parametrize("spec", CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_keras3_models(spec, keras, tmp_path, rng, seed):
    keras.utils.set_random_seed(seed % 2**31)
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, _layer(keras, spec)(inputs))
    for w in model.weights:  # away from Keras' initial zero biases, so every weight matters
        w.assign(rng.uniform(-0.8, 0.8, w.shape).astype(np.float32))
    x = randn(rng, (3, 6, 4), scale=2.0)
    want = np.asarray(model.predict(x, verbose=0))
    go_backwards = spec[0] != "Bidirectional" and spec[1].get("go_backwards")
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "m.weights.h5")
    defaults = spec[1] == {} if spec[0] != "Bidirectional" else spec[1][0][1] == {} and spec[1][1] == "concat"
    files = ["m.keras", "m.h5"] + (["m.weights.h5"] if defaults else [])  # weights-only: Keras' defaults
    for name in files:
        module = fastrnn.load(tmp_path / name, prefix="rnn")
        assert module.batch_first
        out = module(x)[0]
        if go_backwards:  # Keras returns the steps in the order it ran them: last input step first
            out = out[:, ::-1]
        assert_close(out, want, np.float32, f"{spec} {name}", seed)


def test_merge_none_loads_as_concatenation_and_states(keras, tmp_path, rng, seed):
    L = keras.layers
    inputs = keras.Input((None, 4))
    outputs = L.Bidirectional(L.LSTM(5, return_state=True), merge_mode=None, name="bi")(inputs)
    model = keras.Model(inputs, outputs)
    x = randn(rng, (2, 7, 4))
    fwd, bwd, h_f, c_f, h_b, c_b = (np.asarray(a) for a in model.predict(x, verbose=0))
    model.save(tmp_path / "m.keras")
    (group,) = fastrnn.find_rnns(tmp_path / "m.keras")
    assert group.prefix == "bi." and group.merge_mode is None and group.batch_first
    out, (h_n, c_n) = fastrnn.load(tmp_path / "m.keras")(x)
    # return_sequences=False: Keras' outputs are each direction's final h, i.e. h_n
    for got, want, what in ((h_n[0], fwd, "forward"), (h_n[1], bwd, "backward"), (h_n[0], h_f, "h fwd"),
                            (c_n[0], c_f, "c fwd"), (h_n[1], h_b, "h bwd"), (c_n[1], c_b, "c bwd"),
                            (out[:, -1, :5], fwd, "out last step"), (out[:, 0, 5:], bwd, "out reverse")):
        assert_close(got, want, np.float32, what, seed)


def test_nested_models_and_names(keras, tmp_path):
    L = keras.layers
    encoder = keras.Sequential([keras.Input((None, 3)), L.GRU(4, return_sequences=True, name="gru")], name="encoder")
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, L.LSTM(2, name="head")(encoder(inputs)))
    model.save(tmp_path / "m.keras")
    groups = {g.prefix: g for g in fastrnn.find_rnns(tmp_path / "m.keras")}
    assert set(groups) == {"encoder.gru.", "head."} and groups["head."].config.input_size == 4
    gru = fastrnn.load(tmp_path / "m.keras", prefix="encoder.gru")
    want = np.asarray(encoder.layers[-1].cell.kernel.numpy())
    assert np.array_equal(gru.weight_ih_l0, want.T[np.r_[4:8, 0:4, 8:12]])  # [z, r, h] -> [r, z, n]


# ---- Keras 2 files, in Keras 2's layout (no Keras 2 here to write them) -------------------------------------------------
def keras2_file(path, layers, version="2.4.0", weights_only=False):
    """layers: [(class_name, config, [(weight name, array)])]; written as Keras 2's save / save_weights do."""
    with h5py.File(path, "w") as f:
        root = f if weights_only else f.create_group("model_weights")
        f.attrs["keras_version"] = root.attrs["keras_version"] = version.encode()
        root.attrs["layer_names"] = [cfg["name"].encode() for _, cfg, _ in layers]
        if not weights_only:
            f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [
                {"class_name": cls, "config": cfg} for cls, cfg, _ in layers]}}).encode()
        for _, cfg, weights in layers:
            group = root.create_group(cfg["name"])
            group.attrs["weight_names"] = [n.encode() for n, _ in weights]
            for n, value in weights:
                group.create_dataset(n, data=value)


def keras_lstm(rng, I, H, cls="LSTM"):
    """Keras-layout LSTM weights: kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,), gates [i, f, c, o]."""
    return [rng.uniform(-0.7, 0.7, s).astype(np.float32) for s in ((I, 4 * H), (H, 4 * H), (4 * H,))]


@pytest.mark.parametrize("version,alpha", [("2.2.4", 0.2), ("2.11.0", 0.2), ("3.1.0", 1 / 6)])
def test_hard_sigmoid_follows_the_keras_version(version, alpha, tmp_path, rng, seed):
    import reference

    kernel, recurrent, bias = keras_lstm(rng, 3, 4)
    cfg = {"name": "lstm_1", "units": 4, "recurrent_activation": "hard_sigmoid", "activation": "tanh",
           "use_bias": True, "return_sequences": True}
    keras2_file(tmp_path / "k.h5", [("LSTM", cfg, [("lstm_1/kernel:0", kernel), ("lstm_1/recurrent_kernel:0",
                                                                                   recurrent), ("lstm_1/bias:0", bias)])],
                version)
    x = randn(rng, (2, 5, 3), scale=3.0)
    params = {"weight_ih_l0": kernel.T, "weight_hh_l0": recurrent.T, "bias_ih_l0": bias, "bias_hh_l0": 0 * bias}
    want, _ = reference.forward("LSTM", params, x, batch_first=True,
                                activations=((("hard_sigmoid", alpha, 0.5), "tanh", "tanh"),))
    assert_close(fastrnn.load(tmp_path / "k.h5")(x)[0], want, np.float32, f"Keras {version}", seed)


def test_cudnn_weights_convert_as_keras_converts(keras, tmp_path, rng, seed):
    """CuDNN-format weights made from a Keras LSTM/GRU by Keras' own conversion the other way (to CuDNN)."""
    def to_cudnn_kernel(k, G):  # Keras' transpose_input(from_cudnn=False), gate by gate
        return np.hstack([b.T.reshape(b.shape, order="C") for b in np.hsplit(k, G)])

    L = keras.layers
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, [L.LSTM(4, return_sequences=True, name="a")(inputs),
                                 L.GRU(4, return_sequences=True, name="b")(inputs)])
    for w in model.weights:
        w.assign(rng.uniform(-0.8, 0.8, w.shape).astype(np.float32))
    x = randn(rng, (2, 5, 3))
    want_lstm, want_gru = (np.asarray(y) for y in model.predict(x, verbose=0))
    (k1, r1, b1), (k2, r2, b2) = ([np.asarray(w.numpy()) for w in model.get_layer(n).weights] for n in "ab")
    recurrent = (lambda r, G: np.hstack([b.T for b in np.hsplit(r, G)]))
    keras2_file(tmp_path / "w.h5", [
        ("CuDNNLSTM", {"name": "cu_dnnlstm"}, [("cu_dnnlstm/kernel:0", to_cudnn_kernel(k1, 4)),
                                               ("cu_dnnlstm/recurrent_kernel:0", recurrent(r1, 4)),
                                               ("cu_dnnlstm/bias:0", np.tile(0.5 * b1, 2))]),
        ("CuDNNGRU", {"name": "cu_dnngru"}, [("cu_dnngru/kernel:0", to_cudnn_kernel(k2, 3)),
                                             ("cu_dnngru/recurrent_kernel:0", recurrent(r2, 3)),
                                             ("cu_dnngru/bias:0", b2.reshape(-1))])],
                "2.2.4", weights_only=True)
    groups = {g.prefix: g.config for g in fastrnn.find_rnns(tmp_path / "w.h5")}
    assert groups["cu_dnngru."].linear_before_reset and groups["cu_dnnlstm."].kind == "LSTM"
    assert_close(fastrnn.load(tmp_path / "w.h5", prefix="cu_dnnlstm")(x)[0], want_lstm, np.float32, "CuDNNLSTM", seed)
    assert_close(fastrnn.load(tmp_path / "w.h5", prefix="cu_dnngru")(x)[0], want_gru, np.float32, "CuDNNGRU", seed)


# ---- refusals ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg,message", [
    ({"activation": "swish"}, r"activation='swish' is not an activation fastrnn computes"),
    ({"units": 3}, r"recurrent_kernel \(4, 16\), expected \(3, 12\)|kernel \(3, 16\)"),
])
def test_refused_layers(cfg, message, tmp_path, rng):
    kernel, recurrent, bias = keras_lstm(rng, 3, 4)
    keras2_file(tmp_path / "k.h5", [("LSTM", {"name": "l", "units": 4, **cfg}, [
        ("l/kernel:0", kernel), ("l/recurrent_kernel:0", recurrent), ("l/bias:0", bias)])])
    (group,) = fastrnn.find_rnns(tmp_path / "k.h5")
    assert group.config is None and group.problem
    with pytest.raises(fastrnn.LoadError, match=message) as info:
        fastrnn.load(tmp_path / "k.h5")
    assert "k.h5: l: LSTM layer" in str(info.value)


def test_refused_files(tmp_path, rng, monkeypatch):
    keras2_file(tmp_path / "old.h5", [("LSTM", {"name": "l", "units": 4}, [])], "1.2.2")
    with pytest.raises(fastrnn.LoadError, match=r"old.h5: written by Keras 1.2.2"):
        fastrnn.load(tmp_path / "old.h5")
    damaged = tmp_path / "bad.h5"
    damaged.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(fastrnn.LoadError, match=r"bad.h5: unreadable HDF5 file"):
        fastrnn.load(damaged)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(fastrnn.LoadError, match=r"neither a Keras model nor Keras weights"):
        fastrnn.load(tmp_path / "plain.h5")
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(fastrnn.LoadError, match=r'pip install "fastrnn\[keras\]"'):
        fastrnn.load(tmp_path / "old.h5")

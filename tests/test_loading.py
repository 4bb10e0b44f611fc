"""fastrnn.load / from_torch against the torch modules the files came from: every kind and option, every container,
prefixed whole-model state_dicts, checkpoints, and the discovery errors."""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

import fastrnn
from fastrnn import LoadError

torch = pytest.importorskip("torch")
nn = torch.nn

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}

# (torch constructor, kwargs for load): every kind and constructor option that shapes the weights
CONFIGS = {
    "rnn_tanh": (lambda: nn.RNN(4, 6, num_layers=2), {}),
    "rnn_relu_bidir": (lambda: nn.RNN(4, 6, nonlinearity="relu", bidirectional=True), {"nonlinearity": "relu"}),
    "rnn_nobias": (lambda: nn.RNN(3, 5, bias=False, batch_first=True), {"batch_first": True}),
    "lstm_3layer_bidir": (lambda: nn.LSTM(4, 6, num_layers=3, bidirectional=True), {}),
    "lstm_proj": (lambda: nn.LSTM(4, 8, num_layers=2, proj_size=3, bidirectional=True, batch_first=True),
                  {"batch_first": True}),
    "lstm_nobias": (lambda: nn.LSTM(5, 4, bias=False), {}),
    "gru_bidir": (lambda: nn.GRU(4, 6, num_layers=2, bidirectional=True), {}),
    "gru_nobias": (lambda: nn.GRU(4, 6, bias=False, batch_first=True), {"batch_first": True}),
    "rnncell": (lambda: nn.RNNCell(4, 6), {}),
    "rnncell_relu": (lambda: nn.RNNCell(4, 6, nonlinearity="relu", bias=False), {"nonlinearity": "relu"}),
    "lstmcell": (lambda: nn.LSTMCell(4, 6), {}),
    "grucell": (lambda: nn.GRUCell(4, 6, bias=False), {}),
}


def make(name, seed=0):
    torch.manual_seed(seed)
    build, kwargs = CONFIGS[name]
    return build().eval(), kwargs


def assert_same_outputs(ours, theirs, dtype=np.float32):
    """Run both on the same random input (and random initial state) and compare every output."""
    rng = np.random.default_rng(1)
    theirs = copy.deepcopy(theirs).double() if dtype == np.float64 else theirs
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    if isinstance(theirs, nn.RNNCellBase):
        x = rng.standard_normal((3, theirs.input_size))
        h = rng.standard_normal((3, theirs.hidden_size))
        state = (h, h * 0.5) if isinstance(theirs, nn.LSTMCell) else h
        t_state = tuple(torch.tensor(s, dtype=tdtype) for s in state) if isinstance(state, tuple) \
            else torch.tensor(state, dtype=tdtype)
        with torch.no_grad():
            expected = theirs(torch.tensor(x, dtype=tdtype), t_state)
        got = ours(x, state)
    else:
        T, B = 5, 2
        x = rng.standard_normal((B, T, theirs.input_size) if theirs.batch_first else (T, B, theirs.input_size))
        with torch.no_grad():
            expected = theirs(torch.tensor(x, dtype=tdtype))
        got = ours(x)
    ours_sd = ours.state_dict()
    assert list(ours_sd) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours_sd[name], value.numpy().astype(dtype), err_msg=name)
    flat_expected = [t.numpy() for t in _flatten(expected)]
    flat_got = list(_flatten(got))
    assert len(flat_got) == len(flat_expected)
    for g, e in zip(flat_got, flat_expected):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, **TOL[dtype])


def _flatten(value):
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def save(state, tmp_path, fmt):
    """`state` (a mapping of torch tensors) as a file of format `fmt`; 'mapping' returns it unchanged."""
    if fmt == "mapping":
        return state
    if fmt == "numpy mapping":
        return {k: v.detach().numpy() for k, v in state.items()}
    path = tmp_path / f"weights.{fmt}"
    if fmt == "pt":
        torch.save(state, path)
    elif fmt == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif fmt == "safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "npz":
        np.savez(path, **{k: v.detach().numpy() for k, v in state.items()})
    return path


@pytest.mark.parametrize("fmt", ["pt", "legacy", "safetensors", "npz", "mapping", "numpy mapping"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_load_infers_config_and_matches_torch(tmp_path, name, fmt):
    theirs, kwargs = make(name)
    ours = fastrnn.load(save(theirs.state_dict(), tmp_path, fmt), **kwargs)
    expected_type = getattr(fastrnn, type(theirs).__name__)
    assert type(ours) is expected_type
    for attr in ("input_size", "hidden_size", "num_layers", "bidirectional", "proj_size", "bias", "batch_first",
                 "nonlinearity"):
        if hasattr(theirs, attr):
            assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert_same_outputs(ours, theirs)


@pytest.mark.parametrize("name", ["lstm_proj", "gru_bidir", "rnncell"])
def test_from_torch_matches(name):
    theirs, _ = make(name)
    ours = fastrnn.from_torch(theirs)
    assert type(ours).__name__ == type(theirs).__name__
    assert_same_outputs(ours, theirs)
    ours64 = fastrnn.from_torch(copy.deepcopy(theirs).double())
    assert ours64.dtype == np.float64
    assert_same_outputs(ours64, theirs, np.float64)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("fmt", ["pt", "legacy", "safetensors"])
def test_reduced_and_double_precision_files(tmp_path, dtype, fmt):
    """Weights saved in another precision: loading converts them exactly, so the float32 (or float64) module
    equals torch's module converted the same way."""
    theirs, _ = make("lstm_3layer_bidir")
    theirs = theirs.to(getattr(torch, dtype))
    compute = np.float64 if dtype == "float64" else np.float32
    ours = fastrnn.load(save(theirs.state_dict(), tmp_path, fmt), dtype=compute)
    reference = copy.deepcopy(theirs).double() if dtype == "float64" else copy.deepcopy(theirs).float()
    for name, value in reference.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[name], value.numpy().astype(compute))
    assert_same_outputs(ours, reference, compute)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.rnn = nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.norm = nn.BatchNorm1d(12)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(12, 3)


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = nn.GRU(12, 5)


@pytest.mark.parametrize("fmt", ["pt", "legacy", "safetensors", "npz", "mapping"])
def test_whole_model_state_dict(tmp_path, fmt):
    torch.manual_seed(0)
    model = Model().eval()
    path = save(model.state_dict(), tmp_path, fmt)
    if fmt in ("pt", "legacy"):
        sd = fastrnn.load_state_dict(path)
        assert sd.source == ""
        assert list(sd) == list(model.state_dict())  # including the int64 num_batches_tracked buffer
        assert sd["encoder.norm.num_batches_tracked"].dtype == np.int64
    ours = fastrnn.load(path, batch_first=True)
    assert_same_outputs(ours, model.encoder.rnn)
    assert_same_outputs(fastrnn.from_torch(model), model.encoder.rnn)


def checkpoint(kind):
    torch.manual_seed(0)
    model = Model()
    sd = model.state_dict()
    # what Adam's state_dict() looks like (int keys, tensors, lists), without paying for torch.optim
    optimizer = {"state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.randn_like(p), "exp_avg_sq": p * p}
                           for i, p in enumerate(model.parameters())},
                 "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": list(range(len(sd)))}]}
    if kind == "model":
        return model, {"model": sd, "optimizer": optimizer, "epoch": 3}, "['model']"
    if kind == "state_dict":
        return model, {"state_dict": sd, "epoch": 3, "best": 0.5}, "['state_dict']"
    if kind == "model_state_dict":
        return model, {"model_state_dict": sd, "optimizer_state_dict": optimizer}, "['model_state_dict']"
    return model, {"epoch": 3, "ema": {"net": sd, "decay": 0.999}, "tag": "run-1"}, "['ema']['net']"


@pytest.mark.parametrize("kind", ["model", "state_dict", "model_state_dict", "nested"])
def test_checkpoints_are_unwrapped(tmp_path, kind):
    model, ckpt, source = checkpoint(kind)
    path = tmp_path / "ckpt.pt"
    torch.save(ckpt, path)
    sd = fastrnn.load_state_dict(path)
    assert sd.source == source
    assert list(sd) == list(model.state_dict())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(sd[name], value.numpy())
    ours = fastrnn.load(path, batch_first=True)
    assert_same_outputs(ours, model.encoder.rnn.eval())


def test_several_rnns_need_a_prefix(tmp_path):
    torch.manual_seed(0)
    model = Seq2Seq().eval()
    path = tmp_path / "seq2seq.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(LoadError) as info:
        fastrnn.load(path)
    message = str(info.value)
    assert "prefix=" in message
    assert "'encoder.rnn.': LSTM(input_size=4, hidden_size=6, num_layers=2, bidirectional=True, bias=True)" in message
    assert "'decoder.': GRU(input_size=12, hidden_size=5, num_layers=1, bidirectional=False, bias=True)" in message
    assert_same_outputs(fastrnn.load(path, prefix="encoder.rnn.", batch_first=True), model.encoder.rnn)
    assert_same_outputs(fastrnn.load(path, prefix="decoder"), model.decoder)  # the trailing dot is optional
    with pytest.raises(LoadError, match=r"no RNN weights under prefix 'encoder\.'; candidates: 'encoder\.rnn\.', "
                                        r"'decoder\.'"):
        fastrnn.load(path, prefix="encoder.")
    with pytest.raises(ValueError, match=r"found 2: 'encoder\.rnn' \(LSTM\), 'decoder' \(GRU\)"):
        fastrnn.from_torch(model)


def test_several_nested_dicts_are_flattened(tmp_path):
    torch.manual_seed(0)
    a, b = nn.GRU(3, 4), nn.LSTM(3, 2)
    path = tmp_path / "two.pt"
    torch.save({"a": a.state_dict(), "b": {"rnn": b.state_dict()}, "step": 7}, path)
    sd = fastrnn.load_state_dict(path)
    assert sd.source == ""
    assert set(sd) == {f"a.{k}" for k in a.state_dict()} | {f"b.rnn.{k}" for k in b.state_dict()}
    assert_same_outputs(fastrnn.load(path, prefix="b.rnn."), b)


def test_no_rnn_weights(tmp_path):
    path = tmp_path / "linear.pt"
    torch.save(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).state_dict(), path)
    with pytest.raises(LoadError, match=r"no RNN/LSTM/GRU weights found .*keys: '0\.weight', '0\.bias', "
                                        r"'2\.weight', '2\.bias'"):
        fastrnn.load(path)
    with pytest.raises(ValueError, match="found 0"):
        fastrnn.from_torch(nn.Linear(3, 4))


def broken(name, change):
    theirs, _ = make(name)
    sd = OrderedDict(theirs.state_dict())
    change(sd)
    return sd


@pytest.mark.parametrize("case, pattern", [
    (("lstm_3layer_bidir", lambda sd: sd.__setitem__("weight_hh_l1", torch.zeros(24, 5))),
     r"weight_hh_l1: shape \(24, 5\), expected \(24, 6\) for LSTM\(input_size=4, hidden_size=6"),
    (("gru_bidir", lambda sd: sd.pop("bias_hh_l1_reverse")), r"bias_hh_l1_reverse: missing for GRU"),
    (("gru_bidir", lambda sd: sd.pop("weight_ih_l1")), r"weight_ih_l1: missing"),
    (("rnn_tanh", lambda sd: sd.__setitem__("weight_ih_l0", torch.zeros(12, 4))),
     r"weight_ih_l0: shape \(12, 4\) is not \(gates \* hidden_size, input_size\)"),
    (("lstm_nobias", lambda sd: sd.__setitem__("bias_ih_l0", torch.zeros(16))), r"bias_ih_l0: missing|bias_hh_l0"),
    (("lstm_nobias", lambda sd: sd.__setitem__("weight_ih_l2", torch.zeros(16, 4))), r"weight_ih_l1: missing for LSTM\(.*num_layers=3"),
    (("lstmcell", lambda sd: sd.__setitem__("weight_ih_l0", torch.zeros(24, 4))), r"weight_ih: a cell parameter"),
    (("gru_nobias", lambda sd: sd.__setitem__("weight_hr_l0", torch.zeros(2, 6))),
     r"weight_hr_l0: a projection weight, but the gates say GRU"),
    (("lstm_proj", lambda sd: sd.__setitem__("weight_hr_l0", torch.zeros(9, 8))), r"weight_hr_l0: proj_size 9"),
    (("gru_bidir", lambda sd: sd.__setitem__("weight_ih_l999999", torch.zeros(18, 4))),
     r"weight_ih_l999999: layer 999999, but only 17 parameters"),
], ids=["wrong shape", "missing bias", "missing layer weight", "bad gate multiple", "half bias", "gap in layers",
        "cell and layer names", "projection on GRU", "projection too big", "stray layer index"])
def test_inconsistent_weights_name_the_key(tmp_path, case, pattern):
    sd = broken(*case)
    path = tmp_path / "broken.pt"
    torch.save(sd, path)
    with pytest.raises(LoadError, match=pattern):
        fastrnn.load(path)


@pytest.mark.parametrize("bad", [np.zeros(16, bool), np.zeros(16, complex), np.array(["1"] * 16)], ids=str)
def test_mapping_with_non_numeric_weights_is_a_load_error(bad):
    """Weights that are not real numbers are unusable weights, as from a file: a LoadError naming the key."""
    sd = {k: v.numpy() for k, v in make("lstm_nobias")[0].state_dict().items()}
    sd["bias_ih_l0"], sd["bias_hh_l0"] = bad, np.zeros(16, np.float32)
    with pytest.raises(LoadError, match=r"state_dict\['bias_ih_l0'\]: expected an array of real numbers, got dtype"):
        fastrnn.load(sd)


def test_keyword_checks(tmp_path):
    lstm, _ = make("lstm_nobias")
    with pytest.raises(ValueError, match="nonlinearity: only an RNN"):
        fastrnn.load(lstm.state_dict(), nonlinearity="relu")
    cell, _ = make("grucell")
    with pytest.raises(ValueError, match="batch_first: does not apply to a cell"):
        fastrnn.load(cell.state_dict(), batch_first=True)
    rnn, _ = make("rnn_tanh")
    with pytest.raises(ValueError, match="nonlinearity"):
        fastrnn.load(rnn.state_dict(), nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="path or a mapping"):
        fastrnn.load(42)
    with pytest.raises(LoadError, match="cannot read"):
        fastrnn.load(tmp_path / "missing.pt")


def test_find_rnns_lists_every_group_with_its_config_or_problem():
    import numpy as np

    from fastrnn import loading

    sd = {f"enc.{k}": v for k, v in fastrnn.GRU(3, 4, num_layers=2, bidirectional=True).state_dict().items()}
    sd.update({f"dec.{k}": v for k, v in fastrnn.LSTM(8, 5, proj_size=2).state_dict().items()})
    sd["bad.weight_ih_l0"] = np.zeros((7, 3), np.float32)  # 7 rows: no gate count divides into a hidden size
    sd["bad.weight_hh_l0"] = np.zeros((7, 2), np.float32)
    sd["head.weight"] = np.zeros((2, 5), np.float32)
    groups = {g.prefix: g for g in loading.find_rnns(sd)}
    assert set(groups) == {"enc.", "dec.", "bad."}
    enc, dec = groups["enc."].config, groups["dec."].config
    assert (enc.kind, enc.input_size, enc.hidden_size, enc.num_layers, enc.bidirectional) == ("GRU", 3, 4, 2, True)
    assert (dec.kind, dec.input_size, dec.hidden_size, dec.proj_size) == ("LSTM", 8, 5, 2)
    assert groups["bad."].config is None and groups["bad."].problem
    assert "head.weight" not in {k for g in groups.values() for k in g.keys}
    assert dec.as_dict()["proj_size"] == 2


def test_load_from_a_mapping_leaves_the_callers_arrays_alone():
    sd = fastrnn.GRU(3, 4).state_dict()
    module = fastrnn.load(sd)
    for name, value in sd.items():
        assert value.flags.writeable, name
        value += 1.0  # the caller may keep using its arrays ...
        assert not np.shares_memory(value, module.state_dict()[name])
    assert not np.shares_memory(sd["weight_ih_l0"], module.weight_ih_l0)  # ... without touching the module

"""Bad inputs raise the documented error with a message that names the argument and the shapes; odd but valid
inputs (any real dtype, Fortran order, strides, torch tensors, NaN) give torch's answer."""
from __future__ import annotations

import re

import numpy as np
import pytest

import fastrnn
from conftest import assert_close, make_pair, randn, run_torch


def _lstm(**kw):
    return fastrnn.LSTM(3, 4, num_layers=2, **kw)


# ---- forward: input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3,), (1, 5, 2, 3), (1, 1, 1, 1, 3)])
def test_wrong_rank(shape):
    with pytest.raises(ValueError, match=r"input.*3-D.*2-D.*" + re.escape(str(shape))):
        _lstm()(np.ones(shape, np.float32))


@pytest.mark.parametrize("cls", [fastrnn.RNN, fastrnn.LSTM, fastrnn.GRU])
@pytest.mark.parametrize("shape", [(5, 2, 4), (5, 2, 1), (5, 2)])
def test_wrong_feature_size(cls, shape):
    with pytest.raises(ValueError, match=r"input_size=3.*" + re.escape(str(shape))):
        cls(3, 4)(np.ones(shape, np.float32))


def test_empty_sequence():
    with pytest.raises(ValueError, match=r"sequence length.*\(0, 2, 3\)"):
        _lstm()(np.ones((0, 2, 3), np.float32))


@pytest.mark.parametrize("bad", ["abc", None, object(), np.array(["1", "2", "3"]), [[1, 2, 3], [1, 2]],
                                 np.ones((5, 2, 3), complex), np.ones((5, 2, 3), bool)])
def test_non_numeric_input(bad):
    with pytest.raises(TypeError, match="input"):
        _lstm()(bad)


# ---- forward: states ------------------------------------------------------------------------------------

@pytest.mark.parametrize("hx", [np.zeros((2, 2, 4)), [np.zeros((2, 2, 4))], (np.zeros((2, 2, 4)),) * 3, "h"])
def test_lstm_hx_must_be_a_pair(hx):
    with pytest.raises(TypeError, match=r"hx.*\(h0, c0\)"):
        _lstm()(np.ones((5, 2, 3), np.float32), hx)


@pytest.mark.parametrize("which,shapes", [
    ("h0", [(2, 3, 4), (2, 2, 4)]),        # wrong batch
    ("h0", [(1, 2, 4), (2, 2, 4)]),        # wrong layers
    ("h0", [(2, 2, 5), (2, 2, 4)]),        # wrong hidden
    ("h0", [(2, 4), (2, 2, 4)]),           # unbatched shape for batched input
    ("c0", [(2, 2, 4), (2, 2, 3)]),
    ("c0", [(2, 2, 4), (4, 2, 4)]),
])
def test_lstm_wrong_state_shape(which, shapes):
    expected = "(2, 2, 4)"
    with pytest.raises(ValueError, match=re.escape(which) + r".*" + re.escape(expected) + r".*"
                       + re.escape(str(shapes[0 if which == "h0" else 1]))):
        _lstm()(np.ones((5, 2, 3), np.float32), tuple(np.zeros(s) for s in shapes))


def test_lstm_projection_state_shapes():
    m = fastrnn.LSTM(3, 6, proj_size=2, bidirectional=True)
    x = np.ones((4, 5, 3))
    with pytest.raises(ValueError, match=r"h0.*\(2, 5, 2\).*\(2, 5, 6\)"):
        m(x, (np.zeros((2, 5, 6)), np.zeros((2, 5, 6))))
    with pytest.raises(ValueError, match=r"c0.*\(2, 5, 6\).*\(2, 5, 2\)"):
        m(x, (np.zeros((2, 5, 2)), np.zeros((2, 5, 2))))


@pytest.mark.parametrize("cls", [fastrnn.RNN, fastrnn.GRU])
def test_wrong_hx_shape(cls):
    m = cls(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match=r"hx.*\(2, 2, 4\).*\(1, 2, 4\)"):
        m(np.ones((5, 2, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match=r"hx.*\(2, 4\).*unbatched.*\(2, 1, 4\)"):
        m(np.ones((5, 3)), np.zeros((2, 1, 4)))  # unbatched input wants (L*D, H)
    with pytest.raises(TypeError, match="hx"):
        m(np.ones((5, 2, 3)), "not a state")


# ---- constructor -----------------------------------------------------------------------------------------

def test_proj_size_not_smaller_than_hidden():
    for proj in (4, 5):
        with pytest.raises(ValueError, match=r"proj_size.*hidden_size.*4"):
            fastrnn.LSTM(3, 4, proj_size=proj)
    with pytest.raises(ValueError, match="proj_size"):
        fastrnn.LSTM(3, 4, proj_size=-1)


@pytest.mark.parametrize("cls", [fastrnn.GRU, fastrnn.RNN])
def test_proj_size_only_on_lstm(cls):
    with pytest.raises((TypeError, ValueError), match="proj_size"):
        cls(3, 4, proj_size=2)


@pytest.mark.parametrize("make", [lambda: fastrnn.RNN(3, 4, nonlinearity="sigmoid"),
                                  lambda: fastrnn.RNN(3, 4, nonlinearity="Tanh"),
                                  lambda: fastrnn.RNNCell(3, 4, nonlinearity="gelu")])
def test_bad_nonlinearity(make):
    with pytest.raises(ValueError, match=r"nonlinearity.*tanh.*relu"):
        make()


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.complex64, "int8"])
@pytest.mark.parametrize("cls", [fastrnn.LSTM, fastrnn.GRUCell])
def test_bad_dtype(cls, dtype):
    with pytest.raises(TypeError, match="dtype"):
        cls(3, 4, dtype=dtype)


def test_accepted_dtype_spellings():
    for spelling, want in [(np.float64, np.float64), ("float64", np.float64), (np.dtype("float32"), np.float32),
                           ("f4", np.float32)]:
        out, _ = fastrnn.GRU(3, 4, dtype=spelling)(np.ones((2, 1, 3)))
        assert out.dtype == want, spelling


@pytest.mark.parametrize("arg,value", [("input_size", 0), ("hidden_size", 0), ("num_layers", 0),
                                       ("hidden_size", -3), ("dropout", 1.5), ("dropout", -0.1)])
def test_bad_constructor_values(arg, value):
    kw = dict(input_size=3, hidden_size=4)
    kw[arg] = value
    with pytest.raises(ValueError, match=arg):
        fastrnn.LSTM(**kw)


NON_INT_SIZES = [("input_size", 3.0), ("hidden_size", 4.5), ("hidden_size", "4"), ("num_layers", 2.0),
                 ("hidden_size", None), ("hidden_size", True)]


@pytest.mark.parametrize("cls,arg,value", [(cls, arg, value) for cls in (fastrnn.LSTM, fastrnn.GRU, fastrnn.RNN,
                                                                          fastrnn.LSTMCell)
                                             for arg, value in NON_INT_SIZES
                                             if not (cls is fastrnn.LSTMCell and arg == "num_layers")])
def test_non_int_sizes_are_rejected_naming_the_argument(cls, arg, value):
    kw = dict(input_size=3, hidden_size=4)
    kw[arg] = value
    with pytest.raises((TypeError, ValueError), match=arg):
        cls(**kw)


@pytest.mark.parametrize("value", [4.5, "4", None])
def test_non_int_size_is_a_type_error(value):
    with pytest.raises(TypeError, match="hidden_size"):
        fastrnn.LSTM(3, value)


def test_numpy_integer_sizes_are_accepted():
    m = fastrnn.LSTM(np.int64(3), np.int32(4), num_layers=np.int16(2))
    out, (h, c) = m(np.ones((2, 1, 3)))
    assert out.shape == (2, 1, 4) and h.shape == (2, 1, 4)


def test_dropout_accepted_and_ignored(rng, seed):
    torch = pytest.importorskip("torch")
    tmod = torch.nn.GRU(3, 5, num_layers=2, dropout=0.5).eval()
    fmod = fastrnn.GRU(3, 5, num_layers=2, dropout=0.5)
    fmod.load_state_dict(tmod.state_dict())
    x = randn(rng, (6, 2, 3))
    out, _ = fmod(x)
    assert_close(out, run_torch(tmod, x, kind="GRU")[0], np.float32, "dropout in eval", seed)


# ---- state_dict ------------------------------------------------------------------------------------------

def test_load_state_dict_missing_key_names_it():
    sd = _lstm().state_dict()
    del sd["bias_hh_l1"]
    with pytest.raises(fastrnn.LoadError, match=r"missing keys: 'bias_hh_l1'"):
        _lstm().load_state_dict(sd)


def test_load_state_dict_unexpected_key_names_it():
    sd = _lstm().state_dict()
    sd["weight_hr_l0"] = np.zeros((2, 4))
    with pytest.raises(fastrnn.LoadError, match=r"unexpected keys: 'weight_hr_l0'"):
        _lstm().load_state_dict(sd)


@pytest.mark.parametrize("strict", [True, False])
def test_load_state_dict_wrong_shape_names_key_and_shapes(strict):
    sd = _lstm().state_dict()
    sd["weight_hh_l1"] = np.zeros((16, 5))
    with pytest.raises(fastrnn.LoadError, match=r"'weight_hh_l1': expected shape \(16, 4\), got \(16, 5\)"):
        _lstm().load_state_dict(sd, strict=strict)


def test_load_state_dict_bad_values():
    with pytest.raises(TypeError, match="state_dict: expected a mapping") as info:
        _lstm().load_state_dict([("weight_ih_l0", np.zeros((16, 3)))])
    assert not isinstance(info.value, fastrnn.LoadError)  # a wrong argument, not unusable weights
    sd = _lstm().state_dict()
    sd["bias_ih_l0"] = "sixteen"
    with pytest.raises(fastrnn.LoadError, match=r"'bias_ih_l0': expected an array of real numbers, got dtype <U7"):
        _lstm().load_state_dict(sd)


def _every_problem():
    """A state_dict for _lstm() with two missing keys, two unexpected ones, two wrong shapes and three values that
    are not arrays of real numbers."""
    sd = _lstm().state_dict()
    del sd["bias_hh_l1"], sd["weight_ih_l1"]
    sd["weight_hr_l0"], sd["encoder.weight_ih_l0"] = np.zeros((2, 4)), np.zeros((16, 3))
    sd["weight_hh_l1"], sd["bias_ih_l0"] = np.zeros((16, 5)), np.zeros(15)
    sd["weight_hh_l0"], sd["bias_hh_l0"] = np.zeros((16, 4), complex), np.zeros(16, bool)
    sd["bias_ih_l1"] = "sixteen"
    return sd


KEY_PROBLEMS = ["missing keys: 'weight_ih_l1', 'bias_hh_l1'", "unexpected keys: 'weight_hr_l0', 'encoder.weight_ih_l0'"]
VALUE_PROBLEMS = ["'weight_hh_l0': expected an array of real numbers, got dtype complex128",  # in torch's order
                  "'bias_ih_l0': expected shape (16,), got (15,)",
                  "'bias_hh_l0': expected an array of real numbers, got dtype bool",
                  "'weight_hh_l1': expected shape (16, 4), got (16, 5)",
                  "'bias_ih_l1': expected an array of real numbers, got dtype <U7"]


@pytest.mark.parametrize("strict", [True, False])
def test_load_state_dict_reports_every_problem_at_once(strict):
    """One LoadError for the call, listing every problem (strict=False: only the values, as torch does), naming the
    module; the message is printed as it is, not in KeyError's quotes."""
    module = _lstm()
    with pytest.raises(fastrnn.LoadError) as info:
        module.load_state_dict(_every_problem(), strict=strict)
    error = info.value
    expected = (KEY_PROBLEMS if strict else []) + VALUE_PROBLEMS
    assert error.problems == expected
    assert str(error) == (f"Error loading state_dict into LSTM(3, 4, num_layers=2), {len(expected)} problems:\n"
                          + "\n".join("  " + p for p in expected))
    assert isinstance(error, fastrnn.StateDictError) and error.module == "LSTM(3, 4, num_layers=2)"


def test_load_state_dict_one_problem_says_so():
    sd = fastrnn.GRUCell(3, 5).state_dict()
    sd["weight_hh"] = np.zeros((15, 4))
    with pytest.raises(fastrnn.LoadError) as info:
        fastrnn.GRUCell(3, 5).load_state_dict(sd)
    assert str(info.value) == ("Error loading state_dict into GRUCell(3, 5), 1 problem:\n"
                               "  'weight_hh': expected shape (15, 5), got (15, 4)")


@pytest.mark.parametrize("caught", [fastrnn.LoadError, fastrnn.StateDictError, ValueError, KeyError, TypeError])
@pytest.mark.parametrize("problem", ["missing", "shape", "dtype"])
def test_load_state_dict_error_is_caught_by_old_except_clauses(caught, problem):
    """KeyError (keys), ValueError (shapes) and TypeError (values) were load_state_dict's exceptions before the
    LoadError that lists every problem: clauses written for any of them still catch every problem."""
    sd = _lstm().state_dict()
    if problem == "missing":
        del sd["weight_ih_l0"]
    elif problem == "shape":
        sd["weight_ih_l0"] = np.zeros((3, 16))
    else:
        sd["weight_ih_l0"] = [["a"] * 3] * 16
    try:
        _lstm().load_state_dict(sd)
    except caught as exc:
        assert "'weight_ih_l0'" in str(exc)
    else:
        pytest.fail("no error")


def test_load_state_dict_error_pickles():
    """A worker process's error (fastrnn.dask) reaches the client whole."""
    import pickle

    with pytest.raises(fastrnn.LoadError) as info:
        _lstm().load_state_dict(_every_problem())
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is fastrnn.StateDictError and str(copy) == str(info.value)
    assert copy.problems == info.value.problems and copy.module == info.value.module


def test_load_state_dict_complex_tensor_is_a_problem():
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(v) for k, v in _lstm().state_dict().items()}
    sd["bias_hh_l1"] = torch.zeros(16, dtype=torch.complex64)
    with pytest.raises(fastrnn.LoadError, match=r"'bias_hh_l1': expected a real-valued array, got a tensor of dtype "
                                                r"torch.complex64"):
        _lstm().load_state_dict(sd)


def test_failed_load_changes_nothing(rng, seed):
    m = _lstm()
    x = randn(rng, (4, 2, 3))
    before = m(x)[0]
    sd = {k: randn(rng, v.shape) for k, v in m.state_dict().items()}
    sd["weight_hh_l1"] = np.zeros((16, 5))  # the last one is bad: nothing may be half-loaded
    with pytest.raises(ValueError):
        m.load_state_dict(sd)
    assert np.array_equal(m(x)[0], before)


def test_strict_false(rng, seed):
    m = _lstm()
    old = m.state_dict()
    partial = {"weight_ih_l0": randn(rng, (16, 3)), "not_a_param": np.zeros(3)}
    result = m.load_state_dict(partial, strict=False)
    assert sorted(result.missing_keys) == sorted(k for k in old if k != "weight_ih_l0")
    assert result.unexpected_keys == ["not_a_param"]
    missing, unexpected = result  # a (missing_keys, unexpected_keys) pair, like torch
    new = m.state_dict()
    assert np.array_equal(new["weight_ih_l0"], partial["weight_ih_l0"])
    for k in old:
        if k != "weight_ih_l0":
            assert np.array_equal(new[k], old[k]), k
    # and it is used: the output is the one a full load of the merged dict gives
    full = _lstm()
    full.load_state_dict(new)
    x = randn(rng, (5, 2, 3))
    assert np.array_equal(m(x)[0], full(x)[0])


def test_strict_true_returns_empty_key_lists():
    m = _lstm()
    result = m.load_state_dict(_lstm().state_dict())
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip(dtype, rng, seed):
    a = fastrnn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=2, dtype=dtype)
    sd = {k: randn(rng, v.shape, dtype) for k, v in a.state_dict().items()}
    a.load_state_dict(sd)
    got = a.state_dict()
    assert list(got) == list(sd)
    for k in sd:
        assert got[k].dtype == dtype and np.array_equal(got[k], sd[k]), k
    sd["weight_ih_l0"][...] = 0  # the module copied, so the caller's arrays may change
    got["weight_hh_l0"][...] = 0  # state_dict() hands out copies
    b = fastrnn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=2, dtype=dtype)
    b.load_state_dict(a.state_dict())
    x = randn(rng, (4, 3, 3), dtype)
    out_a, out_b = a(x), b(x)
    assert np.array_equal(out_a[0], out_b[0])
    assert np.abs(a.state_dict()["weight_ih_l0"]).max() > 0


def test_torch_state_dict_round_trips_into_torch(rng, seed):
    torch = pytest.importorskip("torch")
    tmod, fmod = make_pair("GRU", rng, np.float32, input_size=4, hidden_size=5, num_layers=2, bidirectional=True)
    back = torch.nn.GRU(4, 5, num_layers=2, bidirectional=True)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in fmod.state_dict().items()})
    for k, v in tmod.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


# ---- odd but valid inputs --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["RNN_RELU", "LSTM", "GRU"])
def test_nan_input_propagates(kind, rng, seed):
    tmod, fmod = make_pair(kind, rng, np.float32, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    x = randn(rng, (6, 3, 3))
    x[2, 1, 0] = np.nan
    x[4, 0, 2] = np.inf
    out, finals = fmod(x)
    t_out, t_finals = run_torch(tmod, x, kind=kind)
    assert np.isnan(out[:, 1]).any(), "NaN in row 1 vanished"
    assert not np.isnan(out[:, 2]).any(), "NaN leaked into another batch row"
    assert_close(out, t_out, np.float32, "NaN/inf input", seed)
    for f, t in zip(finals if isinstance(finals, tuple) else [finals], t_finals):
        assert_close(f, t, np.float32, "NaN/inf final state", seed)


@pytest.mark.parametrize("in_dtype", [np.float16, np.float32, np.float64, np.longdouble, np.int8, np.int32,
                                      np.int64, np.uint8, np.uint16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_of_any_real_dtype(in_dtype, dtype, rng, seed):
    torch = pytest.importorskip("torch")
    tmod, fmod = make_pair("LSTM", rng, dtype, input_size=3, hidden_size=5)
    x = randn(rng, (4, 2, 3), np.float64, scale=3.0)
    x = x.astype(in_dtype) if np.dtype(in_dtype).kind == "f" else np.abs(x).round().astype(in_dtype)
    h0 = randn(rng, (1, 2, 5), np.float64).astype(in_dtype if np.dtype(in_dtype).kind == "f" else np.float16)
    out, (h, c) = fmod(x, (h0, h0))
    assert out.dtype == dtype and h.dtype == dtype and c.dtype == dtype
    t_out, t_fin = run_torch(tmod, x.astype(dtype), [h0.astype(dtype)] * 2, kind="LSTM")
    assert_close(out, t_out, dtype, f"input dtype {np.dtype(in_dtype).name}", seed)
    assert_close(c, t_fin[1], dtype, f"input dtype {np.dtype(in_dtype).name} c_n", seed)


def test_lists_are_inputs(rng, seed):
    m = fastrnn.RNN(2, 3)
    x = randn(rng, (3, 1, 2), np.float64)
    assert np.array_equal(m(x.tolist())[0], m(x.astype(np.float32))[0])


@pytest.mark.parametrize("batch_first", [False, True])
def test_fortran_ordered_and_strided_inputs(batch_first, rng, seed):
    torch = pytest.importorskip("torch")
    tmod, fmod = make_pair("GRU", rng, np.float32, input_size=3, hidden_size=5, batch_first=batch_first,
                           bidirectional=True)
    big = randn(rng, (14, 8, 7))
    variants = {
        "fortran": np.asfortranarray(big[:6, :4, :3]),
        "strided": big[::2, 1::2, 2:5],
        "reversed": big[::-1, ::-2, -3:],
        "transposed": np.ascontiguousarray(big[:4, :6, :3].transpose(1, 0, 2)).transpose(1, 0, 2),
    }
    h_big = randn(rng, (2, 16, 10))
    for name, x in variants.items():
        assert not x.flags.c_contiguous, name
        h0 = h_big[:, : x.shape[0 if batch_first else 1], ::2]  # strided state too
        out, h = fmod(x, h0)
        t_out, t_fin = run_torch(tmod, np.ascontiguousarray(x), [np.ascontiguousarray(h0)], kind="GRU")
        assert_close(out, t_out, np.float32, f"{name} out", seed)
        assert_close(h, t_fin[0], np.float32, f"{name} h_n", seed)


@pytest.mark.parametrize("tdtype", ["float32", "float64", "float16", "bfloat16", "int64"])
def test_torch_tensors_as_inputs_and_states(tdtype, rng, seed):
    torch = pytest.importorskip("torch")
    tmod, fmod = make_pair("LSTM", rng, np.float32, input_size=3, hidden_size=4, num_layers=2)
    dt = getattr(torch, tdtype)
    x = torch.from_numpy(randn(rng, (5, 2, 3), np.float64, 2.0))
    h0 = torch.from_numpy(randn(rng, (2, 2, 4), np.float64))
    c0 = torch.from_numpy(randn(rng, (2, 2, 4), np.float64))
    if tdtype == "int64":
        x = x.round()
    x, h0, c0 = x.to(dt), h0.to(dt if tdtype != "int64" else torch.float32), c0.to(torch.float32)
    x.requires_grad_(tdtype != "int64")  # a tensor that needs grad is fine too
    out, (h, c) = fmod(x, (h0, c0))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    # torch computes on the same values, rounded to the module's dtype first
    t_out, t_fin = run_torch(tmod, x.detach().float().numpy(), [h0.float().numpy(), c0.numpy()], kind="LSTM")
    assert_close(out, t_out, np.float32, f"{tdtype} tensor input", seed)
    assert_close(h, t_fin[0], np.float32, f"{tdtype} tensor h_n", seed)


@pytest.mark.parametrize("tdtype", ["float16", "bfloat16", "float64"])
def test_torch_tensors_as_state_dict_values(tdtype, rng, seed):
    torch = pytest.importorskip("torch")
    dt = getattr(torch, tdtype)
    tmod = torch.nn.LSTM(3, 6, proj_size=2, bidirectional=True).to(dt)
    fmod = fastrnn.LSTM(3, 6, proj_size=2, bidirectional=True)
    fmod.load_state_dict(tmod.state_dict())  # parameters that require grad, in a dtype numpy may lack
    for k, v in tmod.state_dict().items():
        assert np.array_equal(fmod.state_dict()[k], v.float().numpy()), k
    ref = tmod.float()
    x = randn(rng, (5, 2, 3))
    t_out, _ = run_torch(ref, x, kind="LSTMP")
    assert_close(fmod(x)[0], t_out, np.float32, f"{tdtype} weights", seed)


def test_outputs_are_new_arrays_and_inputs_untouched(rng):
    m = fastrnn.LSTM(3, 4)
    x = randn(rng, (3, 2, 3))
    h0, c0 = randn(rng, (1, 2, 4)), randn(rng, (1, 2, 4))
    saved = [a.copy() for a in (x, h0, c0)]
    out, (h, c) = m(x, (h0, c0))
    for a, b in zip((x, h0, c0), saved):
        assert np.array_equal(a, b)
    for r in (out, h, c):
        assert not any(np.shares_memory(r, a) for a in (x, h0, c0))
    out2, _ = m(x, (h0, c0))
    assert not np.shares_memory(out, out2)


# ---- cells -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [fastrnn.RNNCell, fastrnn.GRUCell, fastrnn.LSTMCell])
def test_cell_bad_input(cls):
    cell = cls(3, 4)
    for shape in [(3, 2), (2, 2, 3), ()]:
        with pytest.raises(ValueError, match=r"input.*3.*" + re.escape(str(shape))):
            cell(np.ones(shape))
    with pytest.raises(TypeError, match="input"):
        cell("xyz")


def test_lstm_cell_hx_must_be_a_pair():
    with pytest.raises(TypeError, match=r"hx.*\(h0, c0\)"):
        fastrnn.LSTMCell(3, 4)(np.ones((2, 3)), np.zeros((2, 4)))


@pytest.mark.parametrize("cls", [fastrnn.RNNCell, fastrnn.GRUCell])
def test_cell_wrong_hx_shape(cls):
    with pytest.raises(ValueError, match=r"hx.*\(2, 5\)"):
        cls(3, 4)(np.ones((2, 3)), np.zeros((2, 5)))


@pytest.mark.parametrize("cls", [fastrnn.LSTM, fastrnn.GRUCell])
def test_dtype_none_means_the_default(cls):
    torch = pytest.importorskip("torch")
    reference_dtype = next(getattr(torch.nn, cls.__name__)(3, 4, dtype=None).parameters()).dtype
    assert reference_dtype == torch.float32  # what torch means by dtype=None
    assert cls(3, 4, dtype=None).dtype == np.float32


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_modules_copy_and_pickle(how, rng, seed):
    import copy
    import pickle

    m = fastrnn.GRU(3, 5, num_layers=2, bidirectional=True)
    m2 = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))
    x = randn(rng, (4, 2, 3))
    assert np.array_equal(m2(x)[0], m(x)[0])
    assert list(m2.state_dict()) == list(m.state_dict())


# ---- the README's "Errors" table, one example of each case it lists -------------------------------------------

def _readme_examples():
    lstm = lambda **kw: fastrnn.LSTM(3, 4, **kw)  # noqa: E731
    x = np.zeros((5, 2, 3), np.float32)
    sd = lstm().state_dict()
    return [
        (fastrnn.LoadError, lambda: fastrnn.load("/nonexistent/model.pt")),
        (fastrnn.LoadError, lambda: fastrnn.load({"encoder.weight": np.zeros((2, 2))})),
        (fastrnn.LoadError, lambda: fastrnn.load({**sd, "bias_ih_l0": np.zeros(16, bool)})),
        (fastrnn.StateDictError, lambda: lstm().load_state_dict({})),
        (fastrnn.StateDictError, lambda: lstm().load_state_dict({**sd, "weight_ih_l0": np.zeros((3, 16))})),
        (ValueError, lambda: lstm()(np.zeros((5, 2, 4), np.float32))),
        (ValueError, lambda: lstm()(x, (np.zeros((1, 3, 4)), np.zeros((1, 2, 4))))),
        (ValueError, lambda: lstm()(x, lengths=[6, 1])),
        (ValueError, lambda: lstm(dropout=2)),
        (ValueError, lambda: fastrnn.RNN(3, 4, nonlinearity="gelu")),
        (ValueError, lambda: lstm(clip=-1)),
        (ValueError, lambda: lstm(precision="float16")),
        (ValueError, lambda: lstm(dtype=np.float64, precision="int8")),
        (ValueError, lambda: lstm(activations=[np.tanh] * 3, precision="bfloat16")),
        (ValueError, lambda: fastrnn.GRU(3, 4, num_layers=70000)),
        (ValueError, lambda: fastrnn.GRU(3, 10**12)),
        (ValueError, lambda: fastrnn.set_num_threads("2")),
        (ValueError, lambda: lstm().stream(batch_size=0)),
        (ValueError, lambda: lstm(bidirectional=True).stream()),
        (ValueError, lambda: lstm(reverse=True).stream()),
        (ValueError, lambda: lstm().stream(2)(x, out=np.zeros((5, 2, 5), np.float32))),
        (TypeError, lambda: lstm()("abc")),
        (TypeError, lambda: lstm()(x, lengths=["a", "b"])),
        (TypeError, lambda: fastrnn.LSTM(3.0, 4)),
        (TypeError, lambda: lstm(dtype=np.float16)),
        (TypeError, lambda: lstm()(x, np.zeros((1, 2, 4)))),
        (TypeError, lambda: lstm().load_state_dict([("weight_ih_l0", np.zeros((16, 3)))])),
        (TypeError, lambda: fastrnn.load(sd, prefix=3)),
        (TypeError, lambda: lstm(activations=[1, 2, 3])),
        (MemoryError, lambda: lstm()(np.broadcast_to(np.zeros((1, 1, 3), np.float32), (10**7, 10**6, 3)))),
        (AttributeError, lambda: setattr(lstm(), "weight_ih_l0", np.zeros((16, 3)))),
    ]


@pytest.mark.parametrize("error,call", _readme_examples())
def test_readme_error_table(error, call):
    with pytest.raises(error) as info:
        call()
    # the exact class the table names (a LoadError where it says LoadError, not just a ValueError)
    assert type(info.value) is error or (error is fastrnn.LoadError and isinstance(info.value, error)
                                         and not isinstance(info.value, fastrnn.StateDictError)), type(info.value)

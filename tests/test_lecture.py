"""A classic lecture exercise: a hand-set, bias-free, one-unit LSTM (input size 4) whose weights make the gates
almost binary (pre-activations of +-100 and +-10), so the kernels must stay accurate and NaN-free deep in saturation.

The expected numbers below are torch's (copied from the lecture, float32), not fastrnn's; they are also checked
against torch live, and fastrnn against both, in float32 and float64.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
import reference
from conftest import TOL, assert_close

WEIGHT_IH = np.array([[0, 100, 0, 10],     # i
                      [0, 100, 0, -10],    # f
                      [1, 0, 0, 0],        # g
                      [0, 0, 100, -10]])   # o
WEIGHT_HH = np.zeros((4, 1))
X = np.array([[1, 0, 0, 1], [3, 1, 0, 1], [2, 0, 0, 1], [4, 1, 0, 1], [2, 0, 0, 1], [1, 0, 1, 1], [3, -1, 0, 1],
              [6, 1, 0, 1], [1, 0, 1, 1]])[:, None, :]  # (T=9, B=1, I=4)

# torch.nn.LSTM(4, 1, bias=False), float32, as printed in the lecture
LECTURE_OUT = np.array([2.9145191e-05, 4.2770407e-05, 3.3870623e-05, 4.3643147e-05, 3.3870812e-05, 0.6420204, 0.0,
                        3.4574521e-05, 0.64202136])
LECTURE_H_N, LECTURE_C_N = 0.64202136, 0.76160496


def _fastrnn_lstm(dtype):
    lstm = fastrnn.LSTM(4, 1, bias=False, dtype=dtype)
    lstm.load_state_dict({"weight_ih_l0": WEIGHT_IH, "weight_hh_l0": WEIGHT_HH})
    return lstm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lecture_example_matches_the_lecture_numbers(dtype):
    out, (h_n, c_n) = _fastrnn_lstm(dtype)(X.astype(dtype))
    assert out.shape == (9, 1, 1) and h_n.shape == (1, 1, 1) and c_n.shape == (1, 1, 1)
    assert np.isfinite(out).all() and np.isfinite(c_n).all()
    # The lecture's numbers are float32 (about 7 digits): judge both dtypes by the float32 rule.
    assert_close(out[:, 0, 0], LECTURE_OUT, np.float32, "lecture out")
    assert_close(h_n.ravel(), [LECTURE_H_N], np.float32, "lecture h_n")
    assert_close(c_n.ravel(), [LECTURE_C_N], np.float32, "lecture c_n")
    # The outputs are the last hidden state; step 7 (gates saturated shut) is zero up to rounding.
    assert h_n.ravel()[0] == out[-1, 0, 0]
    assert abs(out[6, 0, 0]) <= TOL[np.dtype(np.float32)]


def test_lecture_example_reference_matches_the_lecture_numbers():
    out, (h_n, c_n) = reference.forward("LSTM", {"weight_ih_l0": WEIGHT_IH, "weight_hh_l0": WEIGHT_HH}, X)
    assert_close(out[:, 0, 0], LECTURE_OUT, np.float32, "reference lecture out")
    assert_close(c_n.ravel(), [LECTURE_C_N], np.float32, "reference lecture c_n")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lecture_example_matches_torch_live(dtype):
    torch = pytest.importorskip("torch")
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    model = torch.nn.LSTM(4, 1, bias=False).to(tdtype)
    with torch.no_grad():
        model.weight_ih_l0.copy_(torch.from_numpy(WEIGHT_IH))
        model.weight_hh_l0.copy_(torch.from_numpy(WEIGHT_HH))
        t_out, (t_h, t_c) = model(torch.from_numpy(X).to(tdtype))
    if dtype == np.float32:  # the lecture printed torch's float32 numbers: confirm them
        assert_close(t_out[:, 0, 0].numpy(), LECTURE_OUT, np.float32, "torch vs lecture out")
        assert_close(t_c.numpy().ravel(), [LECTURE_C_N], np.float32, "torch vs lecture c_n")
    lstm = _fastrnn_lstm(dtype)
    lstm.load_state_dict(model.state_dict())  # the same weights through torch's own state_dict
    out, (h_n, c_n) = lstm(X.astype(dtype))
    assert_close(out, t_out.double().numpy(), dtype, "lecture out vs torch")
    assert_close(h_n, t_h.double().numpy(), dtype, "lecture h_n vs torch")
    assert_close(c_n, t_c.double().numpy(), dtype, "lecture c_n vs torch")

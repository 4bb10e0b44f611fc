"""torch's parameter names and layout <-> the engine's packed buffers.

The only place that knows both. torch stores, per layer l and direction suffix ('' or '_reverse'):
    weight_ih_l{l}{sfx}  (G*H, I_l)     I_0 = input_size, I_l = D * H_out for l > 0
    weight_hh_l{l}{sfx}  (G*H, H_out)   H_out = proj_size or hidden_size
    bias_ih_l{l}{sfx}    (G*H,)         if bias
    bias_hh_l{l}{sfx}    (G*H,)         if bias
    weight_hr_l{l}{sfx}  (proj_size, H) LSTM with proj_size > 0
with G = 4 (LSTM, rows [i, f, g, o]), 3 (GRU, rows [r, z, n]), 1 (RNN). Cells use the same names
without the `_l{l}{sfx}` part.

The engine wants (see fastrnn._engine.Layer): both directions' W_ih stacked into one matrix, so the input
projection of a layer is one gemm; b_ih + b_hh summed once here, except GRU's b_hn, which must stay
inside r * (W_hn h + b_hn) and is passed apart. Gate order is torch's, so no rows are reordered.
"""
from __future__ import annotations

import numpy as np

from fastrnn import _engine

KINDS = {"RNN_TANH": _engine.RNN_TANH, "RNN_RELU": _engine.RNN_RELU, "LSTM": _engine.LSTM, "GRU": _engine.GRU}
NUM_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def param_shapes(mode, input_size, hidden_size, num_layers, bias, bidirectional, proj_size, cell=False):
    """Ordered {torch name: shape} exactly as torch's state_dict() lists them."""
    G = NUM_GATES[mode]
    H_out = proj_size if proj_size > 0 else hidden_size
    if cell:
        shapes = {"weight_ih": (G * hidden_size, input_size), "weight_hh": (G * hidden_size, hidden_size)}
        if bias:
            shapes.update(bias_ih=(G * hidden_size,), bias_hh=(G * hidden_size,))
        return shapes
    D = 2 if bidirectional else 1
    shapes = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else D * H_out
        for sfx in ("", "_reverse")[:D]:
            shapes[f"weight_ih_l{layer}{sfx}"] = (G * hidden_size, layer_input)
            shapes[f"weight_hh_l{layer}{sfx}"] = (G * hidden_size, H_out)
            if bias:
                shapes[f"bias_ih_l{layer}{sfx}"] = (G * hidden_size,)
                shapes[f"bias_hh_l{layer}{sfx}"] = (G * hidden_size,)
            if proj_size > 0:
                shapes[f"weight_hr_l{layer}{sfx}"] = (proj_size, hidden_size)
    return shapes


def pack_layer(mode, params, layer, num_directions, dtype, cell=False):
    """Build the engine's Layer for one layer from torch-named arrays (`params`)."""
    w_ih, biases, w_hh, b_hn, w_hr = [], [], [], [], []
    for sfx in ("", "_reverse")[:num_directions]:
        key = (lambda base: base) if cell else (lambda base: f"{base}_l{layer}{sfx}")
        wi, wh = params[key("weight_ih")], params[key("weight_hh")]
        H = wh.shape[0] // NUM_GATES[mode]
        w_ih.append(wi)
        w_hh.append(np.ascontiguousarray(wh, dtype=dtype))
        w_hr.append(np.ascontiguousarray(params[key("weight_hr")], dtype=dtype) if key("weight_hr") in params else None)
        if key("bias_ih") in params:
            b_ih, b_hh = params[key("bias_ih")], params[key("bias_hh")]
            if mode == "GRU":
                # r and z see b_ih + b_hh; n sees b_in in the input part and b_hn inside r * (...).
                summed = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
                b_hn.append(np.ascontiguousarray(b_hh[2 * H :], dtype=dtype))
            else:
                summed = b_ih + b_hh
                b_hn.append(None)
            biases.append(summed)
        else:
            b_hn.append(None)
    w_ih = np.ascontiguousarray(np.concatenate(w_ih, axis=0), dtype=dtype)
    bias = np.ascontiguousarray(np.concatenate(biases), dtype=dtype) if biases else None
    return _engine.Layer(KINDS[mode], w_ih, bias, w_hh, b_hn, w_hr)

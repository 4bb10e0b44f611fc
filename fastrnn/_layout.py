"""torch's layout -> the engine's buffers: the only place that knows both.

The engine (fastrnn._engine.Layer) takes each direction's matrices in torch's layout and packs them into panels;
the biases are summed once here, b_ih + b_hh, except GRU's b_hn, which must stay inside r * (W_hn h + b_hn) and is
passed apart. Gate order is torch's, so no rows are reordered. Names and shapes of torch's parameters:
fastrnn._torch_names.
"""
from __future__ import annotations

import numpy as np

from fastrnn import _engine
from fastrnn._kinds import NUM_GATES
from fastrnn._torch_names import key


def pack_layer(kind, nonlinearity, params, layer, num_directions, dtype, cell=False):
    """Build the engine's Layer for one layer from torch-named arrays (`params`)."""
    w_ih, biases, w_hh, b_hn, w_hr = [], [], [], [], []
    for d in range(num_directions):
        name = lambda base: key(base, layer, d, cell)  # noqa: E731
        wi, wh = params[name("weight_ih")], params[name("weight_hh")]
        H = wh.shape[0] // NUM_GATES[kind]
        w_ih.append(wi)
        w_hh.append(np.ascontiguousarray(wh, dtype=dtype))
        w_hr.append(np.ascontiguousarray(params[name("weight_hr")], dtype=dtype) if name("weight_hr") in params else None)
        if name("bias_ih") in params:
            b_ih, b_hh = params[name("bias_ih")], params[name("bias_hh")]
            if kind == "GRU":
                # r and z see b_ih + b_hh; n sees b_in in the input part and b_hn inside r * (...).
                summed = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
                b_hn.append(np.ascontiguousarray(b_hh[2 * H :], dtype=dtype))
            else:
                summed = b_ih + b_hh
                b_hn.append(None)
            biases.append(summed)
        else:
            b_hn.append(None)
    w_ih = [np.ascontiguousarray(w, dtype=dtype) for w in w_ih]
    biases = [np.ascontiguousarray(b, dtype=dtype) for b in biases] if biases else [None] * num_directions
    return _engine.Layer(kind, w_ih, biases, w_hh, b_hn, w_hr, nonlinearity)

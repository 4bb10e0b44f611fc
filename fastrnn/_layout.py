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
from fastrnn._torch_names import PARAM, key


def pack_layer(kind, nonlinearity, get, layer, num_directions, dtype, cell=False):
    """Build the engine's Layer for one layer. get(torch name) -> array, or None where the module has no such
    parameter; each matrix is packed into panels as soon as it is got, so a caller that reads it from a file
    holds at most one torch-layout matrix at a time."""
    G = NUM_GATES[kind]
    w_ih, w_hh, w_hr, biases, b_hn = [], [], [], [], []
    for d in range(num_directions):
        name = lambda base: key(base, layer, d, cell)  # noqa: E731
        wi = np.ascontiguousarray(get(name("weight_ih")), dtype=dtype)
        I, H = wi.shape[1], wi.shape[0] // G
        w_ih.append(_engine.pack(G, H, I, wi))
        del wi
        wh = np.ascontiguousarray(get(name("weight_hh")), dtype=dtype)
        P = wh.shape[1]
        w_hh.append(_engine.pack(G, H, P, wh))
        del wh
        wr = get(name("weight_hr"))
        w_hr.append(None if wr is None else _engine.pack(1, P, H, np.ascontiguousarray(wr, dtype=dtype)))
        b_ih, b_hh = get(name("bias_ih")), get(name("bias_hh"))
        summed, hn = _summed_biases(kind, H, b_ih, b_hh)
        biases.append(None if summed is None else np.ascontiguousarray(summed, dtype=dtype))
        b_hn.append(None if hn is None else np.ascontiguousarray(hn, dtype=dtype))
    return _engine.Layer(kind, nonlinearity, I, H, P, w_ih, w_hh, w_hr, biases, b_hn)


def _summed_biases(kind, H, b_ih, b_hh):
    """(the bias added to the input part, GRU's b_hn or None); (None, None) without biases."""
    if b_ih is None:
        return None, None
    if kind == "GRU":
        # r and z see b_ih + b_hh; n sees b_in in the input part and b_hn inside r * (...).
        return np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H:]]), b_hh[2 * H:]
    return b_ih + b_hh, None


def unpack_layer(layer, layer_index, cell=False):
    """The torch-named matrices (weight_ih, weight_hh, weight_hr) of one engine Layer, rebuilt from its panels
    (exact: packing only moves values)."""
    out = {}
    for d, panels in enumerate(layer.panels):
        for base, (G, units, K, packed) in panels.items():
            lanes = 64 // packed.itemsize
            count = -(-units // lanes)
            w = packed[: count * K * G * lanes].reshape(count, K, G, lanes).transpose(2, 0, 3, 1)
            out[key(base, layer_index, d, cell)] = np.ascontiguousarray(
                w.reshape(G, count * lanes, K)[:, :units].reshape(G * units, K))
    return out


def layer_of(name):
    """The layer a torch parameter name belongs to (0 for a cell's names)."""
    digits = PARAM.match(name)["layer"]
    return int(digits) if digits is not None else 0

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


def pack_layer(config, get, layer, dtype, format="float"):
    """Build the engine's Layer for one layer of a module described by `config` (fastrnn.config.RNNConfig), its
    matrices in `format` (fastrnn._engine.FORMATS: "float", the dtype's, or "bfloat16" / "int8" from float32).
    get(torch name) -> array, or None where the module has no such parameter; each matrix is packed into panels as
    soon as it is got, so a caller that reads it from a file holds at most one torch-layout matrix at a time."""
    kind, G, cell = config.kind, NUM_GATES[config.kind], config.cell
    reset_before = kind == "GRU" and not config.linear_before_reset
    w_ih, w_hh, w_hn, w_hr, biases, b_hn, peep, cells = [], [], [], [], [], [], [], []
    for d in range(2 if config.bidirectional else 1):
        name = lambda base: key(base, layer, d, cell)  # noqa: E731
        wi = np.ascontiguousarray(get(name("weight_ih")), dtype=dtype)
        I, H = wi.shape[1], wi.shape[0] // G
        w_ih.append(_engine.pack(G, H, I, wi, format))
        del wi
        wh = np.ascontiguousarray(get(name("weight_hh")), dtype=dtype)
        P = wh.shape[1]
        if reset_before:  # the r, z rows meet h, the n rows r * h: two products, packed apart
            w_hh.append(_engine.pack(2, H, P, np.ascontiguousarray(wh[: 2 * H]), format))
            w_hn.append(_engine.pack(1, H, P, np.ascontiguousarray(wh[2 * H:]), format))
        else:
            w_hh.append(_engine.pack(G, H, P, wh, format))
            w_hn.append(None)
        del wh
        wr = get(name("weight_hr"))
        w_hr.append(None if wr is None else _engine.pack(1, P, H, np.ascontiguousarray(wr, dtype=dtype), format))
        summed, hn = _summed_biases(kind, H, get(name("bias_ih")), get(name("bias_hh")), reset_before)
        biases.append(None if summed is None else np.ascontiguousarray(summed, dtype=dtype))
        b_hn.append(None if hn is None else np.ascontiguousarray(hn, dtype=dtype))
        p = get(name("weight_p")) if config.peepholes else None
        peep.append(None if p is None else np.ascontiguousarray(p, dtype=dtype))
        cells.append(_cell(config, d))
    return _engine.Layer(kind, I, H, P, w_ih, w_hh, w_hr, biases, b_hn, cells=cells, peep=peep, w_hn=w_hn,
                         reverse=config.reverse, reset_after=not reset_before)


def _cell(config, d):
    """The kernels' cell of direction d: (f, g, h, clip, input_forget, standard), unused slots the identity."""
    slots = config.gate_activations[d] + (("identity", 0.0, 0.0),) * (3 - len(config.gate_activations[d]))
    return (*slots, config.clip or 0.0, config.input_forget, config.standard)


def _summed_biases(kind, H, b_ih, b_hh, reset_before):
    """(the bias added to the input part, GRU's b_hn or None); (None, None) without biases."""
    if b_ih is None:
        return None, None
    if kind == "GRU" and not reset_before:
        # r and z see b_ih + b_hh; n sees b_in in the input part and b_hn inside r * (...).
        return np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H:]]), b_hh[2 * H:]
    return b_ih + b_hh, None


def unpack_layer(layer, layer_index, cell=False):
    """The torch-named matrices (weight_ih, weight_hh, weight_hr) of one engine Layer, rebuilt from its panels
    (exact: packing only moves values)."""
    out = {}
    for d, panels in enumerate(layer.panels):
        matrices = {base: _unpack(packed) for base, packed in panels.items()}
        if "weight_hn" in matrices:  # a GRU with the reset before W_hn: its n rows were packed apart
            matrices["weight_hh"] = np.concatenate([matrices["weight_hh"], matrices.pop("weight_hn")])
        out.update((key(base, layer_index, d, cell), w) for base, w in matrices.items())
    return out


def _unpack(packed):
    """Float panels (an engine Packed) of G gates x `units` units over K -> the (G*units, K) matrix in torch's
    layout."""
    if packed.format != "float":
        raise ValueError(f"the engine's {packed.format} weights cannot give back the float ones")
    G, units, K = packed.gates, packed.units, packed.depth
    lanes = 64 // packed.itemsize
    count = -(-units // lanes)
    values = packed.panels.view(np.float32 if packed.itemsize == 4 else np.float64)
    w = values[: count * K * G * lanes].reshape(count, K, G, lanes).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(w.reshape(G, count * lanes, K)[:, :units].reshape(G * units, K))


def layer_of(name):
    """The layer a torch parameter name belongs to (0 for a cell's names)."""
    digits = PARAM.match(name)["layer"]
    return int(digits) if digits is not None else 0

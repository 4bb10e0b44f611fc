"""torch's state_dict naming for RNN modules: the parameter names, their shapes and the pattern that finds them.

Imports neither torch nor the engine, so loading a file and discovering its RNNs needs neither. torch stores, per
layer l and direction suffix ('' or '_reverse'):
    weight_ih_l{l}{sfx}  (G*H, I_l)     I_0 = input_size, I_l = D * H_out for l > 0
    weight_hh_l{l}{sfx}  (G*H, H_out)   H_out = proj_size or hidden_size
    bias_ih_l{l}{sfx}    (G*H,)         if bias
    bias_hh_l{l}{sfx}    (G*H,)         if bias
    weight_hr_l{l}{sfx}  (proj_size, H) LSTM with proj_size > 0
    weight_p_l{l}{sfx}   (3*H,)         LSTM with peepholes (fastrnn's name, as torch has none): rows [i, f, o]
with G gate rows per unit (fastrnn._kinds.NUM_GATES). Cells use the same names without the `_l{l}{sfx}` part.
"""
from __future__ import annotations

import re

from fastrnn._kinds import NUM_GATES

DIRECTION_SUFFIXES = ("", "_reverse")

# A parameter name anywhere in a state_dict: prefix ('' or ending in '.'), base name, optional layer suffix.
PARAM = re.compile(r"(?P<prefix>(?:.*\.)?)(?P<base>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr|weight_p)"
                   r"(?P<suffix>_l(?P<layer>\d+)(?:_reverse)?)?\Z", re.S)
# Parameters that are vectors (kept in torch's layout beside the engine's panels).
VECTORS = ("bias_ih", "bias_hh", "weight_p")


def key(base, layer=0, direction=0, cell=False):
    """The torch name of a parameter: key('weight_ih', 1, 1) == 'weight_ih_l1_reverse'; a cell's is the base."""
    return base if cell else f"{base}_l{layer}{DIRECTION_SUFFIXES[direction]}"


def layer_index(name):
    """The layer number in a parameter name that PARAM matches with a suffix (huge indices clamp, never int())."""
    digits = PARAM.match(name)["layer"]
    return int(digits) if len(digits) < 10 else 10**10


def base(name):
    """The base of a parameter name: base('encoder.weight_ih_l1_reverse') == 'weight_ih'."""
    return PARAM.match(name)["base"]


def param_shapes(kind, input_size, hidden_size, num_layers, bias, bidirectional, proj_size, cell=False,
                 peepholes=False):
    """Ordered {torch name: shape} exactly as torch's state_dict() lists them (peepholes last in each direction)."""
    G = NUM_GATES[kind]
    H_out = proj_size if proj_size > 0 else hidden_size
    if cell:
        shapes = {"weight_ih": (G * hidden_size, input_size), "weight_hh": (G * hidden_size, hidden_size)}
        if bias:
            shapes.update(bias_ih=(G * hidden_size,), bias_hh=(G * hidden_size,))
        if peepholes:
            shapes["weight_p"] = (3 * hidden_size,)
        return shapes
    D = 2 if bidirectional else 1
    shapes = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else D * H_out
        for d in range(D):
            shapes[key("weight_ih", layer, d)] = (G * hidden_size, layer_input)
            shapes[key("weight_hh", layer, d)] = (G * hidden_size, H_out)
            if bias:
                shapes[key("bias_ih", layer, d)] = (G * hidden_size,)
                shapes[key("bias_hh", layer, d)] = (G * hidden_size,)
            if proj_size > 0:
                shapes[key("weight_hr", layer, d)] = (proj_size, hidden_size)
            if peepholes:
                shapes[key("weight_p", layer, d)] = (3 * hidden_size,)
    return shapes

"""A slow, readable numpy reference of what torch.nn.RNN / LSTM / GRU compute, and of fastrnn's options beyond
torch (activations, clip, peepholes, coupled gates, both GRU variants, reverse) as ONNX defines them. Always in
float64, written from the formulas (ONNX's operator docs, torch's docs), not from fastrnn's code.

Checked against torch in tests/test_reference.py; the engine's kernels are checked against the gate functions
here (tests/test_kernels.py), so a failure points at the broken layer.

Parameters are a dict under torch's names (weight_ih_l0, bias_hh_l1_reverse, weight_hr_l0, weight_p_l0, ...),
gate rows in torch's order: LSTM [i, f, g, o], GRU [r, z, n]; peepholes [i, f, o].

Reduced precisions (precision='bfloat16' or 'int8'): every matrix product rounds both of its operands as README
"Precision" states (bf16: round to nearest even; int8: symmetric per row, q = rint(x * (127 / max|x|)), the
products summed exactly, then float32(sum) * float32(scale_w * scale_x)); the operands are first made float32, as
the engine holds them. Everything else stays float64.
"""
from __future__ import annotations

import numpy as np

# ---- activations -------------------------------------------------------------------------------------------


def sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def tanh(x):
    return np.tanh(np.asarray(x, dtype=np.float64))


def relu(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < 0, 0.0, x)  # NaN stays NaN, as in torch


def _where(cond, a, b, x):
    """np.where that lets NaN in x through."""
    return np.where(np.isnan(x), x, np.where(cond, a, b))


def activation(name, alpha=0.0, beta=0.0):
    """The function ONNX names (fastrnn's spelling), with its alpha and beta; `step` is 1 where x >= 0."""
    def f(x):
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if name == "sigmoid":
                return sigmoid(x)
            if name == "tanh":
                return tanh(x)
            if name == "relu":
                return relu(x)
            if name == "identity":
                return x
            if name == "affine":
                return alpha * x + beta
            if name == "leaky_relu":
                return _where(x >= 0, x, alpha * x, x)
            if name == "thresholded_relu":
                return _where(x >= alpha, x, 0.0, x)
            if name == "scaled_tanh":
                return alpha * np.tanh(beta * x)
            if name == "hard_sigmoid":
                v = alpha * x + beta
                return _where(v < 0, 0.0, np.where(v > 1, 1.0, v), v)
            if name == "elu":
                return _where(x >= 0, x, alpha * np.expm1(np.minimum(x, 0)), x)
            if name == "softsign":
                return x / (1 + np.abs(x))
            if name == "softplus":
                return np.logaddexp(0.0, x)
            if name == "step":
                return _where(x >= 0, 1.0, 0.0, x)
        raise ValueError(name)
    return f


def _act(entry):
    """An activation entry: (name, alpha, beta), a name, or a callable."""
    if callable(entry):
        return lambda x: np.asarray(entry(np.asarray(x, dtype=np.float64)), dtype=np.float64)
    if isinstance(entry, str):
        return activation(entry)
    return activation(*entry)


DEFAULTS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh"), "RNN": ("tanh",)}


def _clip(x, clip):
    return x if not clip else np.clip(x, -clip, clip)


# ---- matrix products in a precision ---------------------------------------------------------------------------


def round_bf16(x):
    """float32 values rounded to bfloat16 (nearest, ties to even; NaN stays NaN), as float64."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = (rounded & 0xFFFFFFFF).astype(np.uint32).view(np.float32).astype(np.float64)
    return np.where(nan, np.nan, out)


def quantize_rows(x):
    """Symmetric int8 per row of float32 values: (q as int64, scale as float32), scale = max|x| / 127."""
    x = np.asarray(x, dtype=np.float32)
    top = np.max(np.abs(x), axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1], np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inverse = np.where(top > 0, np.float32(127) / top, np.float32(0)).astype(np.float32)
        q = np.clip(np.rint(x * inverse[..., None]), -127, 127)
    finite = np.isfinite(top)
    q = np.where(finite[..., None], np.nan_to_num(q), 0).astype(np.int64)
    scale = np.where(finite, top / np.float32(127), np.float32(np.nan)).astype(np.float32)
    return q, scale


def product(x, w, precision=None):
    """x (n, K) @ w.T (w (M, K)) as the engine computes it in `precision` (None / 'float32' / 'float64': exact)."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if precision == "bfloat16":
        return round_bf16(x) @ round_bf16(w).T
    if precision == "int8":
        qx, sx = quantize_rows(x)
        qw, sw = quantize_rows(w)
        sums = (qx @ qw.T).astype(np.float32)
        return (sums * (sw[None, :] * sx[:, None])).astype(np.float64)
    return x @ w.T


# ---- the gate math of one step, given pre-activations (what the C kernels do) ---------------------------


def lstm_gates(gates, c, acts=DEFAULTS["LSTM"], clip=None, peep=None, input_forget=False):
    """gates (n, 4H) pre-activations with biases, c (n, H) -> (c', o * h(c')) before any projection.
    acts: the f, g, h slots; peep (3H: i, f, o) or None; clip bounds each gate's input."""
    gates = np.asarray(gates, dtype=np.float64)
    f_act, g_act, h_act = (_act(a) for a in acts)
    i, f, g, o = np.split(gates, 4, axis=-1)
    p_i, p_f, p_o = np.split(np.zeros(3 * c.shape[-1]) if peep is None else np.asarray(peep, np.float64), 3)
    i = f_act(_clip(i + p_i * c, clip))
    f = 1.0 - i if input_forget else f_act(_clip(f + p_f * c, clip))
    c_new = f * c + i * g_act(_clip(g, clip))
    o = f_act(_clip(o + p_o * c_new, clip))
    return c_new, o * h_act(c_new)


def gru_gates(gx, gh, b_hn, h, acts=DEFAULTS["GRU"], clip=None):
    """Linear before reset (torch's): gx (n, 3H): W_ih x + b_ih (+ b_hh for r, z); gh (n, 3H): W_hh h; b_hn (H,)
    or None -> h'."""
    f_act, g_act = (_act(a) for a in acts)
    gx, gh = np.asarray(gx, dtype=np.float64), np.asarray(gh, dtype=np.float64)
    x_r, x_z, x_n = np.split(gx, 3, axis=-1)
    h_r, h_z, h_n = np.split(gh, 3, axis=-1)
    if b_hn is not None:
        h_n = h_n + b_hn
    r = f_act(_clip(x_r + h_r, clip))
    z = f_act(_clip(x_z + h_z, clip))
    n = g_act(_clip(x_n + r * h_n, clip))
    return (1.0 - z) * n + z * h


def gru_gates_reset_before(gx, w_hh, h, acts=DEFAULTS["GRU"], clip=None, precision=None):
    """Reset before the product (ONNX's default): gx (n, 3H) with every bias; w_hh (3H, H) -> h'."""
    f_act, g_act = (_act(a) for a in acts)
    gx, w_hh = np.asarray(gx, dtype=np.float64), np.asarray(w_hh, dtype=np.float64)
    H = h.shape[-1]
    x_r, x_z, x_n = np.split(gx, 3, axis=-1)
    r = f_act(_clip(x_r + product(h, w_hh[:H], precision), clip))
    z = f_act(_clip(x_z + product(h, w_hh[H:2 * H], precision), clip))
    n = g_act(_clip(x_n + product(r * h, w_hh[2 * H:], precision), clip))
    return (1.0 - z) * n + z * h


def rnn_gates(pre, use_relu):
    return relu(pre) if use_relu else tanh(pre)


# ---- one cell step, from weights ------------------------------------------------------------------------


def _affine(x, w, b, precision=None):
    y = product(x, w, precision)
    return y if b is None else y + b


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, use_relu=False, act=None, clip=None, precision=None):
    pre = _affine(x, w_ih, b_ih, precision) + _affine(h, w_hh, b_hh, precision)
    return _act(act)(_clip(pre, clip)) if act is not None else rnn_gates(pre, use_relu)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, acts=DEFAULTS["LSTM"], clip=None, peep=None,
              input_forget=False, precision=None):
    pre = _affine(x, w_ih, b_ih, precision) + _affine(h, w_hh, b_hh, precision)
    c_new, h_new = lstm_gates(pre, c, acts, clip, peep, input_forget)
    if w_hr is not None:
        h_new = product(h_new, w_hr, precision)
    return h_new, c_new


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, acts=DEFAULTS["GRU"], clip=None, linear_before_reset=True,
             precision=None):
    H = h.shape[-1]
    gx = _affine(x, w_ih, b_ih, precision)
    if not linear_before_reset:  # every bias outside r: they all add to the input part
        return gru_gates_reset_before(gx if b_hh is None else gx + b_hh, w_hh, h, acts, clip, precision)
    if b_hh is not None:  # r and z see both biases; n keeps b_hn inside r * (...)
        gx = gx + np.concatenate([b_hh[: 2 * H], np.zeros(H)])
    b_hn = None if b_hh is None else b_hh[2 * H:]
    return gru_gates(gx, _affine(h, w_hh, None, precision), b_hn, h, acts, clip)


# ---- whole sequences ---------------------------------------------------------------------------------------


def _get(params, name):
    value = params.get(name)
    return None if value is None else np.asarray(value, dtype=np.float64)


def forward(kind, params, x, hx=None, num_layers=1, bidirectional=False, batch_first=False, lengths=None,
            nonlinearity="tanh", activations=None, clip=None, input_forget=False, linear_before_reset=True,
            reverse=False, precision=None):
    """What torch.nn.{RNN,LSTM,GRU}(...)(x, hx) returns, as float64 arrays: (out, h_n) or (out, (h_n, c_n)).

    kind: 'RNN' (with nonlinearity 'tanh' or 'relu'), 'LSTM' or 'GRU'. x: (T, B, I), (B, T, I) with batch_first,
    or unbatched (T, I). hx: None, h0, or (h0, c0) for LSTM, torch's shapes. lengths: valid steps per batch row,
    as pack_padded_sequence(enforce_sorted=False) -> module -> pad_packed_sequence(total_length=T) gives.
    activations: per direction, the slots' entries (None: the defaults); peepholes come with weight_p_l* params;
    reverse: a one-direction layer that runs from each row's last step. precision: how every product rounds (see
    the top of this file).
    """
    x = np.asarray(x, dtype=np.float64)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None, :]
    elif batch_first:
        x = x.transpose(1, 0, 2)
    T, B = x.shape[:2]
    D = 2 if bidirectional else 1
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths).astype(np.int64)
    proj = params.get("weight_hr_l0")
    H = np.asarray(params["weight_hh_l0"]).shape[1] if proj is None else np.asarray(proj).shape[1]
    P = H if proj is None else np.asarray(proj).shape[0]

    h0, c0 = (hx if kind == "LSTM" else (hx, None)) if hx is not None else (None, None)
    h0 = np.zeros((num_layers * D, B, P)) if h0 is None else np.asarray(h0, dtype=np.float64).reshape(-1, B, P)
    c0 = np.zeros((num_layers * D, B, H)) if c0 is None else np.asarray(c0, dtype=np.float64).reshape(-1, B, H)
    h_n, c_n = h0.copy(), c0.copy()
    if activations is None:
        activations = ((nonlinearity,) if kind == "RNN" else DEFAULTS[kind],) * D
    options = dict(clip=clip, input_forget=input_forget, linear_before_reset=linear_before_reset, precision=precision)

    layer_input = x
    for layer in range(num_layers):
        outputs = []
        for d, sfx in enumerate(("", "_reverse")[:D]):
            k = layer * D + d
            weights = {name: _get(params, f"{name}_l{layer}{sfx}")
                       for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_p")}
            out, h_n[k], c_n[k] = _direction(kind, activations[d], weights, layer_input, h0[k], c0[k], lengths,
                                             d == 1 or reverse, options)
            outputs.append(out)
        layer_input = np.concatenate(outputs, axis=-1)

    out = layer_input
    if unbatched:
        out, h_n, c_n = out[:, 0], h_n[:, 0], c_n[:, 0]
    elif batch_first:
        out = out.transpose(1, 0, 2)
    return (out, (h_n, c_n)) if kind == "LSTM" else (out, h_n)


def _direction(kind, acts, w, x, h, c, lengths, reverse, options):
    """One direction of one layer over x (T, B, I) from state (h, c): (out (T, B, P), h_n, c_n)."""
    T, B = x.shape[:2]
    h, c = h.copy(), c.copy()
    out = np.zeros((T, B, h.shape[-1]))
    clip, precision = options["clip"], options["precision"]
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        alive = (t < lengths)[:, None]  # rows past their length keep their state and output zeros
        if kind == "LSTM":
            h_new, c_new = lstm_cell(x[t], h, c, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"],
                                     w["weight_hr"], acts, clip, w["weight_p"], options["input_forget"], precision)
            c = np.where(alive, c_new, c)
        elif kind == "GRU":
            h_new = gru_cell(x[t], h, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], acts, clip,
                             options["linear_before_reset"], precision)
        else:
            h_new = rnn_cell(x[t], h, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], act=acts[0],
                             clip=clip, precision=precision)
        h = np.where(alive, h_new, h)
        out[t] = np.where(alive, h_new, 0.0)
    # A reverse direction of a short row starts at its last valid step: the loop above starts it at T-1, but every
    # step past the row's length leaves h untouched, which is the same thing.
    return out, h, c

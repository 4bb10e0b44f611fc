# ---- The gate kernels called directly, so tests can check them against tests/reference.py -----------------------
# One body each over the fused type: a float32 or float64 array picks the specialisation (mixed dtypes raise
# TypeError); sizes are checked, so a wrong call raises instead of reading out of bounds.

cdef inline void _need(Py_ssize_t have, Py_ssize_t need, str name) except *:
    if have < need:
        raise ValueError(f"{name}: holds {have} values, needs {need}")


def _kernel_lstm_step(floating[:, ::1] gates, floating[:, ::1] c, floating[:, ::1] h):
    """Apply the LSTM gate kernel to gates (n, 4H) in place on c (n, H) and h (n, H)."""
    cdef Py_ssize_t n = c.shape[0], H = c.shape[1]
    _need(gates.shape[0] * gates.shape[1], n * 4 * H, "gates")
    _need(h.shape[0] * h.shape[1], n * H, "h")
    if n * H:
        _lstm_step(n, H, &gates[0, 0], 4 * H, &c[0, 0], &h[0, 0], <floating *>NULL, 0)


def _kernel_gru_step(floating[:, ::1] gx, floating[:, ::1] gh, floating[::1] b_hn, floating[:, ::1] h):
    """Apply the GRU gate kernel: gx, gh (n, 3H), b_hn (H,) or None, h (n, H) updated in place."""
    cdef Py_ssize_t n = h.shape[0], H = h.shape[1]
    _need(gx.shape[0] * gx.shape[1], n * 3 * H, "gx")
    _need(gh.shape[0] * gh.shape[1], n * 3 * H, "gh")
    if b_hn is not None:
        _need(b_hn.shape[0], H, "b_hn")
    if n * H:
        _gru_step(n, H, &gx[0, 0], 3 * H, &gh[0, 0], &b_hn[0] if b_hn is not None else NULL, &h[0, 0],
                  <floating *>NULL, 0)


def _kernel_rnn_step(floating[:, ::1] pre, bint relu, floating[:, ::1] h):
    """Apply the RNN kernel: pre (n, H) -> h (n, H)."""
    cdef Py_ssize_t n = h.shape[0], H = h.shape[1]
    _need(pre.shape[0] * pre.shape[1], n * H, "pre")
    if n * H:
        _rnn_step(n, H, &pre[0, 0], H, FRNN_ACT_RELU if relu else FRNN_ACT_TANH, &h[0, 0], <floating *>NULL, 0)


def _kernel_activation(str name, x):
    """Apply 'sigmoid' or 'tanh' in place to a C-contiguous float array of any shape."""
    if name not in ("sigmoid", "tanh"):
        raise ValueError(f"unknown activation {name!r}")
    _activation_in_place(name == "sigmoid", x.reshape(-1))


def _activation_in_place(bint sigmoid, floating[::1] x):
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return
    if floating is float:
        (_K.sigmoid_f32 if sigmoid else _K.tanh_f32)(n, &x[0])
    else:
        (_K.sigmoid_f64 if sigmoid else _K.tanh_f64)(n, &x[0])


def _debug_index(floating[::1] x, Py_ssize_t i):
    """x[i] through a typed memoryview: in a FASTRNN_DEBUG=1 build an index out of range raises IndexError (the
    test that Cython's bounds checks are really on); a release build does not check."""
    return x[i]

# ---- The kernels called directly, so tests can check them against tests/reference.py --------------------------
# Weights in torch's layout are packed here; one body each over the fused type (a float32 or float64 array picks
# the specialisation, mixed dtypes raise). Shapes are checked, so a wrong call raises instead of reading out of
# bounds.

cdef inline void _need(bint ok, str what) except *:
    if not ok:
        raise ValueError(f"kernel test hook: {what}")


STANDARD = {"LSTM": (("sigmoid", 0.0, 0.0), ("tanh", 0.0, 0.0), ("tanh", 0.0, 0.0), 0.0, False, True),
            "GRU": (("sigmoid", 0.0, 0.0), ("tanh", 0.0, 0.0), ("tanh", 0.0, 0.0), 0.0, False, True)}


cdef class _Rows:
    """Test hooks: n rows of K values as a product with a `format` matrix reads them (converted for bf16 / int8),
    owning the buffers frnn_rows points into."""
    cdef frnn_rows rows
    cdef object keep

    def __init__(self, str format, v):
        cdef int code = FORMATS[format]
        cdef Py_ssize_t n = v.shape[0], K = v.shape[1], ld = frnn_converted_ld(code, K)
        if code == FRNN_FMT_FLOAT:
            self.keep = v
            self.rows = _float_rows(_data(v, n * K, v.dtype.itemsize, False, "v") if n * K else NULL, K)
            return
        _need(v.dtype == np.float32, f"{format} products read float32 rows")
        conv, scale = np.zeros(frnn_converted_bytes(code, n, K), np.uint8), np.zeros(max(n, 1), np.float32)
        self.keep = (v, conv, scale)
        self.rows = _convert_rows(code, n, K, _data(v, n * K, 4, False, "v") if n * K else NULL, K, _bytes(conv),
                                  <float *>_bytes(scale))


def _kernel_lstm_rec(floating[:, ::1] w, floating[:, ::1] v, floating[:, ::1] gates, floating[:, ::1] c,
                     tuple cell=STANDARD["LSTM"], floating[::1] peep=None, str format="float", bint widen=True):
    """h' of the fused LSTM step: pre = gates (n, 4H) + v (n, K) w^T (w (4H, K), or K = 0 with w, v of shape
    (4H, 0), (n, 0)); c (n, H) becomes c'. cell: (f, g, h, clip, input_forget, standard) as Layer takes it; peep
    (3H,) or None; format: the weights' ("float", "bfloat16", "int8"); widen: pack()'s. Returns h' (n, H)."""
    cdef Py_ssize_t n = c.shape[0], H = c.shape[1], K = w.shape[1]
    _need(w.shape[0] == 4 * H and v.shape[0] == n and v.shape[1] == K, "w (4H, K), v (n, K)")
    _need(gates.shape[0] == n and gates.shape[1] == 4 * H, "gates (n, 4H)")
    _need(peep is None or peep.shape[0] == 3 * H, "peep (3H,)")
    cdef frnn_cell spec = _cell(cell)
    cdef Packed pw = pack(4, H, K, np.asarray(w), format, widen)
    cdef _Rows rows = _Rows(format, np.asarray(v))
    h = np.empty((n, H), np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] ph = h
    if n * H:
        _lstm_rec(n, H, 0, H, K, &pw.mat, &rows.rows, &gates[0, 0], 4 * H, &c[0, 0], &c[0, 0], &ph[0, 0], &spec,
                  &peep[0] if peep is not None else NULL)
    return h


def _kernel_gru_rec(floating[:, ::1] w, floating[:, ::1] h_prev, floating[:, ::1] gx, floating[::1] b_hn,
                    tuple cell=STANDARD["GRU"], bint reset_after=True, str format="float"):
    """h' of the fused GRU step: gh = h_prev (n, H) w^T (w (3H, H)), gate math with gx (n, 3H), b_hn (H,) or None
    (linear before reset; with reset_after=False, b_hn must be None and (r * h) meets the n rows of w)."""
    cdef Py_ssize_t n = h_prev.shape[0], H = h_prev.shape[1]
    _need(w.shape[0] == 3 * H and w.shape[1] == H, "w (3H, H)")
    _need(gx.shape[0] == n and gx.shape[1] == 3 * H, "gx (n, 3H)")
    _need(b_hn is None or (b_hn.shape[0] == H and reset_after), "b_hn (H,), with linear before reset only")
    cdef frnn_cell spec = _cell(cell)
    dtype = np.float32 if floating is float else np.float64
    h = np.empty((n, H), dtype)
    cdef floating[:, ::1] ph = h, z = np.empty((n, H), dtype), rh = np.empty((n, H), dtype)
    cdef Packed pw, pn
    cdef _Rows rows = _Rows(format, np.asarray(h_prev)), rh_rows
    if reset_after:
        pw = pack(3, H, H, np.asarray(w), format)
        if n * H:
            _gru_rec(n, H, 0, H, &pw.mat, &rows.rows, &h_prev[0, 0], &gx[0, 0], 3 * H,
                     &b_hn[0] if b_hn is not None else NULL, &ph[0, 0], &spec)
        return h
    pw, pn = pack(2, H, H, np.asarray(w[:2 * H]), format), pack(1, H, H, np.asarray(w[2 * H:]), format)
    if n * H:
        _gru_rz(n, H, 0, H, &pw.mat, &rows.rows, &h_prev[0, 0], &gx[0, 0], 3 * H, &z[0, 0], &rh[0, 0], &spec)
        rh_rows = _Rows(format, np.asarray(rh))
        _gru_n(n, H, 0, H, &pn.mat, &rh_rows.rows, &gx[0, 0], 3 * H, &z[0, 0], &h_prev[0, 0], &ph[0, 0], &spec)
    return h


def _kernel_gru_rz(floating[:, ::1] w, floating[:, ::1] h_prev, floating[:, ::1] gx, tuple cell=STANDARD["GRU"],
                   str format="float"):
    """GRU with the reset before W_hn, first phase: w (2H, H) the r, z rows; returns (z, r * h_prev)."""
    cdef Py_ssize_t n = h_prev.shape[0], H = h_prev.shape[1]
    _need(w.shape[0] == 2 * H and w.shape[1] == H and gx.shape[0] == n and gx.shape[1] == 3 * H,
          "w (2H, H), gx (n, 3H)")
    cdef frnn_cell spec = _cell(cell)
    dtype = np.float32 if floating is float else np.float64
    z, rh = np.empty((n, H), dtype), np.empty((n, H), dtype)
    cdef floating[:, ::1] pz = z, prh = rh
    cdef Packed pw = pack(2, H, H, np.asarray(w), format)
    cdef _Rows rows = _Rows(format, np.asarray(h_prev))
    if n * H:
        _gru_rz(n, H, 0, H, &pw.mat, &rows.rows, &h_prev[0, 0], &gx[0, 0], 3 * H, &pz[0, 0], &prh[0, 0], &spec)
    return z, rh


def _kernel_gru_n(floating[:, ::1] w, floating[:, ::1] rh, floating[:, ::1] gx, floating[:, ::1] z,
                  floating[:, ::1] h_prev, tuple cell=STANDARD["GRU"], str format="float"):
    """GRU with the reset before W_hn, second phase: w (H, H) the n rows, rh = r * h_prev; returns h'."""
    cdef Py_ssize_t n = h_prev.shape[0], H = h_prev.shape[1]
    _need(w.shape[0] == H and w.shape[1] == H and gx.shape[0] == n and gx.shape[1] == 3 * H, "w (H, H), gx (n, 3H)")
    _need(rh.shape[0] == z.shape[0] == n and rh.shape[1] == z.shape[1] == H, "rh, z (n, H)")
    cdef frnn_cell spec = _cell(cell)
    h = np.empty((n, H), np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] ph = h
    cdef Packed pw = pack(1, H, H, np.asarray(w), format)
    cdef _Rows rows = _Rows(format, np.asarray(rh))
    if n * H:
        _gru_n(n, H, 0, H, &pw.mat, &rows.rows, &gx[0, 0], 3 * H, &z[0, 0], &h_prev[0, 0], &ph[0, 0], &spec)
    return h


def _kernel_dense(floating[:, ::1] w, Py_ssize_t G, floating[:, ::1] v, floating[:, ::1] pre, tuple act,
                  double clip=0, str format="float", bint widen=True):
    """act(clip(pre + v w^T)) for w (G*H, K) in G gates, v (n, K), pre (n or 1 rows, G*H) or None; act (name,
    alpha, beta) of ACTIVATION_CODES, or None for none at all (the input projection's call: pre + v w^T); widen:
    pack()'s."""
    cdef Py_ssize_t n = v.shape[0], K = v.shape[1], H = w.shape[0] // G if G > 0 else 0
    cdef frnn_cell spec
    if act is not None:
        spec = _cell((act, act, act, clip, False, False))
    _need(G in (1, 3, 4) and w.shape[0] == G * H and w.shape[1] == K, "w (G*H, K) with G in 1, 3, 4")
    _need(pre is None or (pre.shape[1] == G * H and pre.shape[0] in (1, n)), "pre (n or 1, G*H)")
    cdef Packed pw = pack(G, H, K, np.asarray(w), format, widen)
    cdef _Rows rows = _Rows(format, np.asarray(v))
    out = np.empty((n, G * H), np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] po = out
    if n * H:
        _dense(n, G, H, 0, H, K, &pw.mat, &rows.rows, &pre[0, 0] if pre is not None else NULL,
               G * H if pre is not None and pre.shape[0] == n else 0, &spec if act is not None else NULL,
               &po[0, 0], G * H)
    return out


def _dense_packed(Packed panels, floating[:, ::1] v):
    """v (n, K) W^T for W already packed by pack(G, H, K, W, format): the input projection's kernel alone, with the
    conversion of v for a bf16 / int8 matrix (benchmarks)."""
    cdef Py_ssize_t n = v.shape[0], K = v.shape[1], G = panels.gates, H = panels.units
    _need(K == panels.depth and panels.itemsize == sizeof(floating), "v (n, K) of the panels' K and dtype")
    cdef _Rows rows = _Rows(panels.format, np.asarray(v))
    out = np.empty((n, G * H), np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] po = out
    if n * H * K:
        with nogil:
            _dense(n, G, H, 0, H, K, &panels.mat, &rows.rows, <floating *>NULL, 0, <const frnn_cell *>NULL,
                   &po[0, 0], G * H)
    return out


def _convert(str format, float[:, ::1] v):
    """The rows as the kernels convert them for a `format` product: (values, scales): bf16 values as float32 (and
    scales None), or int8 q as int32 (and the per-row scales). For tests against tests/reference.py."""
    cdef _Rows rows = _Rows(format, np.asarray(v))
    cdef Py_ssize_t n = v.shape[0], K = v.shape[1], ld = frnn_converted_ld(FORMATS[format], K)
    conv, scale = rows.keep[1], rows.keep[2]
    if format == "bfloat16":
        bits = conv[: n * ld * 2].view(np.uint16).reshape(n, ld)[:, :K].astype(np.uint32) << 16
        return bits.view(np.float32), None
    return conv[: n * ld].reshape(n, ld)[:, :K].astype(np.int32) - 128, scale[:n].copy()


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

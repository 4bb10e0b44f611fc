# ---- One layer's weights in the engine's layout (built by fastrnn._layout), and its forward call ----------------

def _pack(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, w, Py_ssize_t itemsize):
    """W (G*H x K, torch layout) -> a new read-only array of panels (layout in src_c/fastrnn_kernels.h)."""
    cdef Py_ssize_t size = frnn_packed_size(itemsize, G, H, K)
    out = np.empty(size, np.float32 if itemsize == 4 else np.float64)
    if itemsize == 4:
        frnn_pack_f32(G, H, K, <const float *>_data(w, G * H * K, 4, False, "w"), K,
                      <float *>_data(out, size, 4, True, "packed"))
    else:
        frnn_pack_f64(G, H, K, <const double *>_data(w, G * H * K, 8, False, "w"), K,
                      <double *>_data(out, size, 8, True, "packed"))
    out.flags.writeable = False
    return out


cdef class Layer:
    """One layer's weights in the engine's layout (built by fastrnn._layout), both directions.

    kind: 'RNN' (with nonlinearity 'tanh' or 'relu'), 'LSTM' or 'GRU' (fastrnn._kinds). w_ih (D*G*H, I) and bias
    (D*G*H or None) are the directions stacked so the input projection is one gemm; w_hh[d] (G*H, P), b_hn[d] (H,
    GRU only, or None), w_hr[d] (P, H, LSTM projection, or None). All arrays C-contiguous, of one float dtype.

    recurrent: 'auto' (default), 'packed' or 'blas': how a step with one batch row computes W_hh h.
    'packed' copies W_ih, W_hh (and W_hr) once into panels for the fused kernel; 'auto' does so while W_hh is
    at most tuning()['packed_max_bytes']. With panels, a step with up to `packed_rows` active rows takes them,
    a step with more takes BLAS gemm.
    """
    cdef LayerSpec spec
    cdef readonly Py_ssize_t itemsize
    cdef readonly str kind, nonlinearity
    cdef readonly object arrays           # keeps every weight array alive while spec points into them

    def __init__(self, str kind, w_ih, bias, list w_hh, list b_hn, list w_hr, str nonlinearity="tanh",
                 str recurrent="auto"):
        cdef Py_ssize_t d, D = len(w_hh)
        memset(&self.spec, 0, sizeof(LayerSpec))
        self.spec.kind = _kind_code(kind, nonlinearity)
        self.kind, self.nonlinearity = kind, nonlinearity
        if D not in (1, 2) or len(b_hn) != D or len(w_hr) != D:
            raise ValueError("Layer needs 1 or 2 directions")
        if recurrent not in ("auto", "packed", "blas"):
            raise ValueError(f"recurrent: expected 'auto', 'packed' or 'blas', got {recurrent!r}")
        cdef Py_ssize_t G = NUM_GATES[kind], H = w_hh[0].shape[0] // G, P = w_hh[0].shape[1]
        cdef Py_ssize_t I = w_ih.shape[1], s = w_ih.itemsize
        if w_ih.shape[0] != D * G * H or w_hh[0].shape[0] != G * H:
            raise ValueError("w_ih rows must be num_directions * gates * hidden_size")
        self.itemsize = s
        self.arrays = (w_ih, bias, w_hh, b_hn, w_hr)
        self.spec.num_directions, self.spec.input_size, self.spec.hidden_size = D, I, H
        self.spec.out_size, self.spec.gate_rows = P, G * H
        self.spec.w_ih = _data(w_ih, D * G * H * I, s, False, "w_ih")
        self.spec.bias = _data(bias, D * G * H, s, False, "bias") if bias is not None else NULL
        for d in range(D):
            self.spec.w_hh[d] = _data(w_hh[d], G * H * P, s, False, "w_hh")
            if b_hn[d] is not None:
                self.spec.b_hn[d] = _data(b_hn[d], H, s, False, "b_hn")
            if w_hr[d] is not None:
                self.spec.w_hr[d] = _data(w_hr[d], P * H, s, False, "w_hr")
            elif P != H:
                raise ValueError("w_hh columns must equal hidden_size without a projection")
        if recurrent == "packed" or (recurrent == "auto" and G * H * P * s <= _tuning.packed_max_bytes):
            self._pack_panels(w_ih, w_hh, w_hr)

    cdef _pack_panels(self, w_ih, list w_hh, list w_hr):
        """Copy W_ih, W_hh (and W_hr) of each direction into panels for the fused kernels."""
        cdef Py_ssize_t d, s = self.itemsize, H = self.spec.hidden_size, P = self.spec.out_size
        cdef Py_ssize_t GH = self.spec.gate_rows, G = GH // H, I = self.spec.input_size
        packed = []
        for d in range(self.spec.num_directions):
            panels = _pack(1, GH, I, w_ih[d * GH:(d + 1) * GH], s)
            self.spec.w_ih_pk[d] = _data(panels, panels.size, s, False, "w_ih packed")
            packed.append(panels)
            panels = _pack(G, H, P, w_hh[d], s)
            self.spec.w_hh_pk[d] = _data(panels, panels.size, s, False, "w_hh packed")
            packed.append(panels)
            if w_hr[d] is not None:
                panels = _pack(1, P, H, w_hr[d], s)
                self.spec.w_hr_pk[d] = _data(panels, panels.size, s, False, "w_hr packed")
                packed.append(panels)
        self.arrays += tuple(packed)
        self.spec.packed_rows = max(1, <Py_ssize_t>_tuning.packed_max_rows)

    @property
    def recurrent(self):
        """'packed' if one-row steps use the fused panel kernel, else 'blas'."""
        return "packed" if self.spec.w_hh_pk[0] != NULL else "blas"

    @property
    def packed_rows(self):
        """Most active rows a step runs through the panels (0: always BLAS)."""
        return self.spec.packed_rows

    @property
    def num_directions(self):
        return self.spec.num_directions

    @property
    def input_size(self):
        return self.spec.input_size

    @property
    def hidden_size(self):
        return self.spec.hidden_size

    @property
    def out_size(self):
        return self.spec.out_size

    @property
    def gate_rows(self):
        return self.spec.gate_rows

    def scratch_size(self, Py_ssize_t B):
        """Items of scratch `forward` needs for a batch of B rows (at least 1)."""
        return self._scratch_size(B)

    cdef Py_ssize_t _scratch_size(self, Py_ssize_t B):
        # each direction its own, since the two may run at once
        return self.spec.num_directions * _dir_scratch(&self.spec, B)

    def forward(self, x, Py_ssize_t T, Py_ssize_t B, bint batch_first, h, c, out, gates, scratch,
                active=None):
        """Run the layer over a whole sequence; see fastrnn/_engine.pyx for the layouts.

        x (T*B, I) input rows; h (D, B, P) and c (D, B, H, LSTM only) initial state, overwritten with
        the final state; out (T*B, D*P) receives the output; gates (T*B, D*G*H) and scratch are
        work space; active (T,) intp or None: rows alive at each step, rows sorted by decreasing length.
        """
        cdef Py_ssize_t D = self.spec.num_directions, s = self.itemsize, rows = T * B
        cdef Py_ssize_t H = self.spec.hidden_size, P = self.spec.out_size
        if T < 0 or B < 0:
            raise ValueError("T and B must be non-negative")
        if rows == 0:
            return
        cdef void *px = _data(x, rows * self.spec.input_size, s, False, "x")
        cdef void *ph = _data(h, D * B * P, s, True, "h")
        cdef void *pc = _data(c, D * B * H, s, True, "c") if self.spec.kind == KIND_LSTM else NULL
        cdef void *po = _data(out, rows * D * P, s, True, "out")
        cdef void *pg = _data(gates, rows * D * self.spec.gate_rows, s, True, "gates")
        cdef void *pscr = _data(scratch, self._scratch_size(B), s, True, "scratch")
        cdef const Py_ssize_t[::1] act
        cdef const Py_ssize_t *pa = NULL
        cdef void *pxu = NULL
        if active is not None:
            act = active
            keep = self._plan_ragged(act, T, B, <char *>pg, &pxu)
            pa = &act[0]
        if s == 4:
            with nogil:
                _run_layer(&self.spec, T, B, batch_first, <float *>px, <float *>ph, <float *>pc,
                           <float *>po, <float *>pg, <float *>pscr, pa, <float *>pxu)
        else:
            with nogil:
                _run_layer(&self.spec, T, B, batch_first, <double *>px, <double *>ph, <double *>pc,
                           <double *>po, <double *>pg, <double *>pscr, pa, <double *>pxu)

    cdef object _plan_ragged(self, const Py_ssize_t[::1] act, Py_ssize_t T, Py_ssize_t B, char *pg, void **pxu):
        """Check `active` (T entries in [0, B]) and decide whether the input projection skips the padded rows: when
        the rows never grow back and at most tuning skip_padded_fraction of the T*B rows are used, *pxu gets room
        for the used rows of x: behind the room their gates need at the front of `gates` when they fit there, else
        a new buffer, returned so the caller keeps it alive."""
        cdef Py_ssize_t t, used = 0, rows = T * B, s = self.itemsize
        cdef Py_ssize_t N = self.spec.num_directions * self.spec.gate_rows, I = self.spec.input_size
        cdef bint staircase = True
        if act.shape[0] != T:
            raise ValueError(f"active: expected {T} entries, got {act.shape[0]}")
        for t in range(T):
            if act[t] < 0 or act[t] > B:
                raise ValueError(f"active[{t}] = {act[t]} is outside [0, {B}]")
            used += act[t]
            staircase = staircase and (t == 0 or act[t] <= act[t - 1])
        pxu[0] = NULL
        if not (staircase and used < rows and used <= _tuning.skip_padded_fraction * rows):
            return None
        if used * (N + I) <= rows * N:
            pxu[0] = pg + (rows * N - used * I) * s
            return None
        x_used = np.empty(max(1, used * I), np.float32 if s == 4 else np.float64)
        pxu[0] = cnp.PyArray_DATA(x_used)
        return x_used

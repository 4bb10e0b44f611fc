# ---- One layer's weights in the engine's layout (built by fastrnn._layout), and its forward call ----------------

def pack(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, w):
    """W (G*H x K, torch layout: gate-major rows) -> a new read-only float array of panels (layout in
    src_c/fastrnn_kernels.h), of W's dtype (float32 or float64)."""
    cdef Py_ssize_t itemsize = w.dtype.itemsize, size
    _size(_size(G, H + 64, "pack"), max(K, 1), "pack")  # the panels' size, H padded to whole vectors, cannot wrap
    size = frnn_packed_size(itemsize, G, H, K)
    if w.shape != (G * H, K):
        raise ValueError(f"pack: expected a ({G * H}, {K}) matrix, got shape {w.shape}")
    out = np.empty(max(size, 1), np.float32 if itemsize == 4 else np.float64)
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

    kind: 'RNN', 'LSTM' or 'GRU' (fastrnn._kinds); sizes I (input), H (hidden), P (output: H, or an LSTM's
    proj_size). Per direction d: w_ih[d], w_hh[d] and w_hr[d] (LSTM projection, or None) already packed by pack()
    (G x H units of K = I, G x H of K = P, 1 x P of K = H); bias[d] (G*H: b_ih + b_hh, GRU's n gate b_ih only with
    linear before reset) or None; b_hn[d] (H, GRU) or None; all of one float dtype. The panels are the only copy
    of the weights the engine keeps. The cell, per direction: cells[d] = (f, g, h, clip, input_forget, standard)
    with each slot (name, alpha, beta) of ACTIVATION_CODES (fastrnn._layout builds it from the module's config);
    peep[d] (3H, LSTM peepholes) or None; GRU with reset_after=False: w_hh[d] holds the r, z gates (2 x H) and
    w_hn[d] the n gate's (1 x H); reverse: a one-direction layer that runs from its last step.
    """
    cdef LayerSpec spec
    cdef readonly Py_ssize_t itemsize
    cdef readonly str kind
    cdef readonly object arrays           # keeps every array alive while spec points into them
    cdef readonly tuple panels            # per direction {torch base name: (G, units, K, panels)}, to unpack

    def __init__(self, str kind, Py_ssize_t I, Py_ssize_t H, Py_ssize_t P, list w_ih, list w_hh, list w_hr,
                 list bias, list b_hn, *, list cells, list peep=None, list w_hn=None, bint reverse=False,
                 bint reset_after=True):
        cdef Py_ssize_t d, D = len(w_hh), G = NUM_GATES[kind]
        peep, w_hn = peep or [None] * D, w_hn or [None] * D
        if D not in (1, 2) or not (len(w_ih) == len(bias) == len(b_hn) == len(w_hr) == len(cells) == len(peep)
                                   == len(w_hn) == D):
            raise ValueError("Layer needs 1 or 2 directions, every argument a list of one entry per direction")
        if P != H and any(w is None for w in w_hr):
            raise ValueError("Layer: an output size other than hidden_size needs a projection")
        if reverse and D != 1:
            raise ValueError("Layer: reverse is for a one-direction layer")
        if kind == "GRU" and not reset_after and any(w is None for w in w_hn):
            raise ValueError("Layer: a GRU with the reset before W_hn needs w_hn")
        memset(&self.spec, 0, sizeof(LayerSpec))
        self.kind, self.itemsize = kind, w_hh[0].itemsize
        self.spec.kind, self.spec.reverse, self.spec.reset_after = _kind_code(kind), reverse, reset_after
        self.spec.num_directions, self.spec.input_size, self.spec.hidden_size = D, I, H
        self.spec.out_size, self.spec.gates, self.spec.gate_rows = P, G, G * H
        kept, panels = [], []
        Gh = 2 if kind == "GRU" and not reset_after else G  # gates packed in w_hh
        for d in range(D):
            self.spec.cell[d] = _cell(cells[d])
            packed = {"weight_ih": self._keep_panels(w_ih[d], G, H, I, &self.spec.w_ih[d], "w_ih"),
                      "weight_hh": self._keep_panels(w_hh[d], Gh, H, P, &self.spec.w_hh[d], "w_hh")}
            if w_hn[d] is not None:
                packed["weight_hn"] = self._keep_panels(w_hn[d], 1, H, H, &self.spec.w_hn[d], "w_hn")
            if w_hr[d] is not None:
                packed["weight_hr"] = self._keep_panels(w_hr[d], 1, P, H, &self.spec.w_hr[d], "w_hr")
            kept.extend(entry[3] for entry in packed.values())
            panels.append(packed)
            if bias[d] is not None:
                kept.append(self._keep(bias[d], &self.spec.bias[d], "bias", G * H))
            if b_hn[d] is not None:
                kept.append(self._keep(b_hn[d], &self.spec.b_hn[d], "b_hn", H))
            if peep[d] is not None:
                kept.append(self._keep(peep[d], &self.spec.peep[d], "peep", 3 * H))
        self.arrays, self.panels = tuple(kept), tuple(panels)

    cdef tuple _keep_panels(self, panels, Py_ssize_t G, Py_ssize_t units, Py_ssize_t K, void **slot, str name):
        return (G, units, K, self._keep(panels, slot, name, frnn_packed_size(self.itemsize, G, units, K)))

    cdef object _keep(self, array, void **slot, str name, Py_ssize_t count):
        slot[0] = _data(array, count, self.itemsize, False, name)
        return array

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

    def scratch_size(self, Py_ssize_t T, Py_ssize_t B):
        """Items of scratch `forward` needs for T steps of B rows (at least 1); bounded whatever T is."""
        return self._scratch_size(T, B)

    cdef Py_ssize_t _scratch_size(self, Py_ssize_t T, Py_ssize_t B) except -1:
        return self._scratch_for(_block_steps(&self.spec, max(T, 1), max(B, 1), self.itemsize), max(B, 1))

    cdef Py_ssize_t _scratch_for(self, Py_ssize_t Tb, Py_ssize_t B) except -1:
        """Items of scratch for blocks of Tb steps of B rows: each direction its own, since the two may run at once.
        The products are checked: B comes from the caller."""
        cdef const LayerSpec *L = &self.spec
        _size(L.num_directions, _size(B, _size(Tb, L.gate_rows, "scratch") + L.out_size + 2 * L.hidden_size,
                                      "scratch"), "scratch")
        return max(1, L.num_directions * _direction_scratch(L, Tb, B))

    def forward(self, x, Py_ssize_t T, Py_ssize_t B, bint batch_first, h, c, out, scratch, active=None):
        """Run the layer over a whole sequence; see fastrnn/_engine.pyx for the layouts.

        x (T*B, I) input rows; h (D, B, P) and c (D, B, H, LSTM only) initial state, overwritten with the final
        state; out (T*B, D*P) receives the output; scratch (scratch_size(T, B) items) is work space; active (T,)
        intp or None: rows alive at each step, rows sorted by decreasing length.
        """
        cdef Py_ssize_t D = self.spec.num_directions, s = self.itemsize, rows = _size(T, B, "T x B rows")
        cdef Py_ssize_t H = self.spec.hidden_size, P = self.spec.out_size, Tb
        if rows == 0:
            return
        cdef void *px = _data(x, _size(rows, self.spec.input_size, "x"), s, False, "x")
        cdef void *ph = _data(h, _size(_size(D, B, "h"), P, "h"), s, True, "h")
        cdef void *pc = _data(c, _size(_size(D, B, "c"), H, "c"), s, True, "c") if self.spec.kind == KIND_LSTM else NULL
        cdef void *po = _data(out, _size(rows, D * P, "out"), s, True, "out")
        Tb = _block_steps(&self.spec, T, B, s)  # read once: the scratch is checked for this block size and run with it
        cdef void *pscr = _data(scratch, self._scratch_for(Tb, B), s, True, "scratch")
        cdef const Py_ssize_t[::1] act
        cdef const Py_ssize_t *pa = NULL
        if active is not None:
            act = active
            _check_active(act, T, B)
            pa = &act[0]
        if s == 4:
            with nogil:
                _run_layer(&self.spec, T, B, Tb, batch_first, <float *>px, <float *>ph, <float *>pc, <float *>po,
                           <float *>pscr, pa)
        else:
            with nogil:
                _run_layer(&self.spec, T, B, Tb, batch_first, <double *>px, <double *>ph, <double *>pc, <double *>po,
                           <double *>pscr, pa)


cdef _check_active(const Py_ssize_t[::1] act, Py_ssize_t T, Py_ssize_t B):
    """`active`: T entries in [0, B], never growing (rows sorted by decreasing length), or a ValueError."""
    cdef Py_ssize_t t
    if act.shape[0] != T:
        raise ValueError(f"active: expected {T} entries, got {act.shape[0]}")
    for t in range(T):
        if act[t] < 0 or act[t] > B:
            raise ValueError(f"active[{t}] = {act[t]} is outside [0, {B}]")
        if t > 0 and act[t] > act[t - 1]:
            raise ValueError(f"active[{t}] = {act[t]} > active[{t - 1}] = {act[t - 1]}: rows must be sorted by length")


cdef frnn_cell _cell(tuple spec) except *:
    """(f, g, h, clip, input_forget, standard) -> the kernels' frnn_cell."""
    cdef frnn_cell cell
    cell.f, cell.g, cell.h = _act(spec[0]), _act(spec[1]), _act(spec[2])
    cell.clip, cell.input_forget, cell.standard = spec[3], spec[4], spec[5]
    return cell

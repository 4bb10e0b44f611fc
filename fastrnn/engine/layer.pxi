# ---- One layer's weights in the engine's layout (built by fastrnn._layout), and its forward call ----------------

# The weight formats by the names fastrnn uses for precisions; "float" is the layer's own dtype (float32/float64).
FORMATS = {"float": FRNN_FMT_FLOAT, "bfloat16": FRNN_FMT_BF16, "int8": FRNN_FMT_I8}
# A bfloat16 matrix whose panels widened to float32 take at most this many bytes also keeps them so (pack()).
WIDE_COPY_BYTES = FRNN_WIDE_COPY_BYTES


cdef class Packed:
    """One weight matrix in panels (layout and roundings in src_c/fastrnn_kernels.h): W of `gates` x `units` rows
    over `depth` columns, in `format` ("float", "bfloat16" or "int8"); `panels` (read-only array), and for int8
    `scale` and `sums`, one per row of W; for a small bfloat16 matrix `wide`, its panels widened to float32 (or
    None: src_c/fastrnn_kernels.h, FRNN_WIDE_COPY_BYTES)."""
    cdef frnn_mat mat
    cdef readonly str format
    cdef readonly Py_ssize_t gates, units, depth, itemsize
    cdef readonly object panels, scale, sums, wide

    @property
    def nbytes(self):
        return (self.panels.nbytes + (self.scale.nbytes + self.sums.nbytes if self.scale is not None else 0)
                + (self.wide.nbytes if self.wide is not None else 0))


def pack(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, w, str format="float", bint widen=True):
    """W (G*H x K, torch layout: gate-major rows; float32, or float64 for format "float") -> a Packed. widen=False:
    no widened copy of a small bfloat16 matrix (tests compare both product paths)."""
    if format not in FORMATS:
        raise ValueError(f"pack: format must be one of {sorted(FORMATS)}, got {format!r}")
    cdef int code = FORMATS[format]
    cdef Py_ssize_t itemsize = w.dtype.itemsize
    # The panels' bytes, in any format, are at most 8 x G x (H + 64) x (K + 4) (whole vectors of units, whole groups
    # of k): that product cannot wrap, nor then G * H * K below.
    _size(_size(_size(G, H + 64, "pack"), K + 4, "pack"), 8, "pack")
    if w.shape != (G * H, K):
        raise ValueError(f"pack: expected a ({G * H}, {K}) matrix, got shape {w.shape}")
    if code != FRNN_FMT_FLOAT and itemsize != 4:
        raise ValueError(f"pack: {format} weights are made from float32, got {w.dtype}")
    cdef Py_ssize_t size = frnn_packed_bytes(code, itemsize, G, H, K)
    cdef Packed out = Packed()
    out.format, out.gates, out.units, out.depth, out.itemsize = format, G, H, K, itemsize
    out.panels = _aligned_bytes(max(size, 64))
    cdef void *dst = _bytes(out.panels)
    cdef const void *src = _data(w, G * H * K, itemsize, False, "w")
    if code == FRNN_FMT_FLOAT and itemsize == 4:
        frnn_pack_f32(G, H, K, <const float *>src, K, <float *>dst)
    elif code == FRNN_FMT_FLOAT:
        frnn_pack_f64(G, H, K, <const double *>src, K, <double *>dst)
    elif code == FRNN_FMT_BF16:
        frnn_pack_bf16(G, H, K, <const float *>src, K, <uint16_t *>dst)
        if widen and 2 * size <= FRNN_WIDE_COPY_BYTES:
            out.wide = _aligned_bytes(2 * size)
            frnn_widen_bf16_panels(G, size // (G * 64), <const uint16_t *>dst, <float *>_bytes(out.wide))
            out.wide.flags.writeable = False
            out.mat.wide = _bytes(out.wide)
    else:
        out.scale, out.sums = np.empty(max(G * H, 1), np.float32), np.empty(max(G * H, 1), np.int32)
        frnn_pack_i8(G, H, K, <const float *>src, K, <int8_t *>dst, <float *>_bytes(out.scale),
                     <int32_t *>_bytes(out.sums))
        out.scale.flags.writeable = out.sums.flags.writeable = False
        out.mat.scale, out.mat.sums = <const float *>_bytes(out.scale), <const int32_t *>_bytes(out.sums)
    out.panels.flags.writeable = False
    out.mat.format, out.mat.panels = code, dst
    return out


def _aligned_bytes(Py_ssize_t size):
    """`size` bytes starting on a 64-byte line (a view into a slightly larger array). Every 64-byte vector the
    kernels load from the panels is then one cache line: numpy's large arrays start 16 bytes into a page, and there
    each load spans two lines, which doubled the L2 traffic of the weight-bound steps. From 2 MB on, the view starts
    on a 2 MB boundary and its whole 2 MB pages are advised as huge pages (frnn_advise_huge_pages): the slack
    before it is never touched, so it costs address space, not memory."""
    cdef size_t align = FRNN_HUGE_PAGE if <size_t>size >= FRNN_HUGE_PAGE else 64
    raw = np.empty(size + align, np.uint8)
    cdef Py_ssize_t skip = (align - <size_t>cnp.PyArray_DATA(raw) % align) % align
    out = raw[skip:skip + size]
    if align == FRNN_HUGE_PAGE:
        frnn_advise_huge_pages(cnp.PyArray_DATA(out), size)
    return out


cdef void *_bytes(cnp.ndarray a):
    """The data of an array this module just made (C-contiguous, owned)."""
    return cnp.PyArray_DATA(a)


cdef class Layer:
    """One layer's weights in the engine's layout (built by fastrnn._layout), both directions.

    kind: 'RNN', 'LSTM' or 'GRU' (fastrnn._kinds); sizes I (input), H (hidden), P (output: H, or an LSTM's
    proj_size). Per direction d: w_ih[d], w_hh[d] and w_hr[d] (LSTM projection, or None) already packed by pack()
    (G x H units of K = I, G x H of K = P, 1 x P of K = H), all in one format: "float" (the dtype of the other
    arrays, float32 or float64), or "bfloat16" / "int8" with float32 arrays; bias[d] (G*H: b_ih + b_hh, GRU's n gate b_ih only with
    linear before reset) or None; b_hn[d] (H, GRU) or None; all of one float dtype. The panels are the only copy
    of the weights the engine keeps. The cell, per direction: cells[d] = (f, g, h, clip, input_forget, standard)
    with each slot (name, alpha, beta) of ACTIVATION_CODES (fastrnn._layout builds it from the module's config);
    peep[d] (3H, LSTM peepholes) or None; GRU with reset_after=False: w_hh[d] holds the r, z gates (2 x H) and
    w_hn[d] the n gate's (1 x H); reverse: a one-direction layer that runs from its last step.
    """
    cdef LayerSpec spec
    cdef readonly Py_ssize_t itemsize
    cdef readonly str kind, format
    cdef readonly object arrays           # keeps every array alive while spec points into them
    cdef readonly tuple panels            # per direction {torch base name: Packed}, to unpack

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
        self.kind, self.itemsize, self.format = kind, _packed(w_hh[0], "w_hh").itemsize, w_hh[0].format
        self.spec.kind, self.spec.reverse, self.spec.reset_after = _kind_code(kind), reverse, reset_after
        self.spec.format = FORMATS[self.format]
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
            kept.extend(packed.values())
            panels.append(packed)
            if bias[d] is not None:
                kept.append(self._keep(bias[d], &self.spec.bias[d], "bias", G * H))
            if b_hn[d] is not None:
                kept.append(self._keep(b_hn[d], &self.spec.b_hn[d], "b_hn", H))
            if peep[d] is not None:
                kept.append(self._keep(peep[d], &self.spec.peep[d], "peep", 3 * H))
        self.arrays, self.panels = tuple(kept), tuple(panels)

    cdef Packed _keep_panels(self, packed, Py_ssize_t G, Py_ssize_t units, Py_ssize_t K, frnn_mat *slot, str name):
        cdef Packed p = _packed(packed, name)
        if (p.gates, p.units, p.depth) != (G, units, K):
            raise ValueError(f"Layer: {name} holds {p.gates} x {p.units} units of {p.depth}, expected "
                             f"{G} x {units} of {K}")
        if p.format != self.format or p.itemsize != self.itemsize:
            raise ValueError(f"Layer: {name} is {p.format} of itemsize {p.itemsize}, the layer's other weights "
                             f"{self.format} of itemsize {self.itemsize}")
        slot[0] = p.mat
        return p

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
        _size(L.num_directions, _scratch_bytes(L, Tb, B, self.itemsize), "scratch")
        return max(1, L.num_directions * _direction_scratch(L, Tb, B, self.itemsize))

    def forward(self, x, Py_ssize_t T, Py_ssize_t B, bint batch_first, h, c, out, scratch, active=None):
        """Run the layer over a whole sequence; see fastrnn/_engine.pyx for the layouts.

        x (T*B, I) input rows; h (D, B, P) and c (D, B, H, LSTM only) initial state, overwritten with the final
        state; out (T*B, D*P) receives the output; scratch (scratch_size(T, B) items) is work space; active (T,)
        intp or None: rows alive at each step, rows sorted by decreasing length.
        """
        cdef Py_ssize_t D = self.spec.num_directions, s = self.itemsize, rows = _size(T, B, "T x B rows")
        cdef Py_ssize_t H = self.spec.hidden_size, P = self.spec.out_size
        if rows == 0:
            return
        cdef void *px = _data(x, _size(rows, self.spec.input_size, "x"), s, False, "x")
        cdef void *ph = _data(h, _size(_size(D, B, "h"), P, "h"), s, True, "h")
        cdef void *pc = _data(c, _size(_size(D, B, "c"), H, "c"), s, True, "c") if self.spec.kind == KIND_LSTM else NULL
        cdef void *po = _data(out, _size(rows, D * P, "out"), s, True, "out")
        cdef Py_ssize_t items = self._scratch_size(T, B)
        cdef void *pscr = _data(scratch, items, s, True, "scratch")
        cdef const Py_ssize_t[::1] act
        cdef const Py_ssize_t *pa = NULL
        if active is not None:
            act = active
            _check_active(act, T, B)
            pa = &act[0]
        self._run(px, ph, pc, po, pscr, items, pa, T, B, batch_first)

    cdef int _run(self, void *px, void *ph, void *pc, void *po, void *pscr, Py_ssize_t scratch_items,
                  const Py_ssize_t *pa, Py_ssize_t T, Py_ssize_t B, bint batch_first) except -1:
        """forward on checked pointers (x, h, c, out: their sizes; active: its entries), scratch_items the items
        at pscr. The block size is read once, here: the scratch is checked for it and the layer runs with it (a
        set_tuning in another thread while the GIL is released cannot change it under the run)."""
        cdef Py_ssize_t Tb = _block_steps(&self.spec, T, B, self.itemsize)
        if self._scratch_for(Tb, B) > scratch_items:
            raise ValueError(f"engine buffer 'scratch': holds {scratch_items} items, needs {self._scratch_for(Tb, B)}")
        if self.itemsize == 4:
            with nogil:
                _run_layer(&self.spec, T, B, Tb, batch_first, <float *>px, <float *>ph, <float *>pc, <float *>po,
                           <float *>pscr, pa)
        else:
            with nogil:
                _run_layer(&self.spec, T, B, Tb, batch_first, <double *>px, <double *>ph, <double *>pc, <double *>po,
                           <double *>pscr, pa)
        return 0


cdef Packed _packed(object p, str name):
    if not isinstance(p, Packed):
        raise TypeError(f"Layer: {name} must be made by pack(), got {type(p).__name__}")
    return <Packed>p


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

# ---- Streaming: every layer of a unidirectional module stepped together, state and buffers owned -------------

cdef void _run_stack(const LayerSpec *specs, Py_ssize_t L, Py_ssize_t T, Py_ssize_t B, const floating *x,
                     floating *out, floating *h, floating *c, floating *gates, floating *scratch,
                     floating *between) noexcept nogil:
    """T steps of B rows through L unidirectional layers, step-major: step t runs layer 0..L-1 before
    step t + 1, each layer's input projection over its own B rows, so the arithmetic of a step never
    depends on how the steps were grouped into calls. One `between` buffer carries a layer's output to
    the next: _run_layer has read all of its input (into gates) before it writes its output."""
    cdef Py_ssize_t t, l, I0 = specs[0].input_size, P = specs[L - 1].out_size, H = specs[0].hidden_size
    cdef const floating *v
    cdef floating *dest
    for t in range(T):
        v = x + t * B * I0
        for l in range(L):
            dest = out + t * B * P if l == L - 1 else between
            _run_layer(&specs[l], 1, B, False, v, h + l * B * P, c + l * B * H if c != NULL else NULL,
                       dest, gates, scratch, <const Py_ssize_t *>NULL, <floating *>NULL)
            v = dest


cdef class Stack:
    """A unidirectional module's layers stepped together for streaming, with a fixed batch size.

    Owns the recurrent state, `h` (L, B, P) and, for LSTM, `c` (L, B, H) (numpy arrays: read, zero or set
    them in place), and every work buffer, so `run` allocates nothing and holds the GIL for no step.
    """
    cdef LayerSpec *specs
    cdef readonly Py_ssize_t num_layers, batch_size, input_size, out_size
    cdef readonly object layers           # keeps the weights the specs point into alive
    cdef readonly object h, c
    cdef object work                      # gates, scratch, between
    cdef void *ph
    cdef void *pc
    cdef void *pgates
    cdef void *pscratch
    cdef void *pbetween
    cdef int typenum

    def __cinit__(self):
        self.specs = NULL

    def __dealloc__(self):
        PyMem_Free(self.specs)

    def __init__(self, list layers, Py_ssize_t batch_size):
        cdef Layer layer, first
        cdef Py_ssize_t l, L = len(layers), B = batch_size
        if L < 1 or B < 1:
            raise ValueError("Stack needs at least one layer and batch_size >= 1")
        for l in range(L):
            if not isinstance(layers[l], Layer):
                raise TypeError(f"layers[{l}]: expected a Layer, got {type(layers[l]).__name__}")
        first = layers[0]
        for l in range(L):
            layer = layers[l]
            if layer.spec.num_directions != 1:
                raise ValueError("Stack: layers must be unidirectional")
            if (layer.itemsize != first.itemsize or layer.spec.kind != first.spec.kind
                    or layer.spec.hidden_size != first.spec.hidden_size
                    or layer.spec.out_size != first.spec.out_size):
                raise ValueError("Stack: layers must share kind, dtype, hidden and output sizes")
            if l > 0 and layer.spec.input_size != first.spec.out_size:
                raise ValueError(f"Stack: layers[{l}] takes {layer.spec.input_size} inputs, "
                                 f"layers[{l - 1}] gives {first.spec.out_size}")
        self.specs = <LayerSpec *>PyMem_Malloc(L * sizeof(LayerSpec))
        if self.specs == NULL:
            raise MemoryError()
        for l in range(L):
            self.specs[l] = (<Layer>layers[l]).spec
        self.layers = tuple(layers)
        self.num_layers, self.batch_size = L, B
        self.input_size, self.out_size = first.spec.input_size, first.spec.out_size
        dtype = np.float32 if first.itemsize == 4 else np.float64
        self.typenum = cnp.NPY_FLOAT32 if first.itemsize == 4 else cnp.NPY_FLOAT64
        H, P = first.spec.hidden_size, first.spec.out_size
        self.h = np.zeros((L, B, P), dtype)
        self.c = np.zeros((L, B, H), dtype) if first.spec.kind == KIND_LSTM else None
        gates = np.empty(B * first.spec.gate_rows, dtype)
        scratch = np.empty(max([(<Layer>layer)._scratch_size(B) for layer in layers]), dtype)
        between = np.empty(B * P, dtype)
        self.work = (gates, scratch, between)
        s = first.itemsize
        self.ph = _data(self.h, L * B * P, s, True, "h")
        self.pc = _data(self.c, L * B * H, s, True, "c") if self.c is not None else NULL
        self.pgates = _data(gates, gates.size, s, True, "gates")
        self.pscratch = _data(scratch, scratch.size, s, True, "scratch")
        self.pbetween = _data(between, between.size, s, True, "between")

    def run(self, x, out):
        """Run the steps of x (T, B, input_size) into out (T, B, out_size), carrying the state.

        Returns False, touching nothing, unless both are numpy arrays of the module's dtype, C-contiguous
        and aligned (out writeable): then the caller converts. Only the sizes are checked (T is read
        from x's size), so (T, input_size) serves for B = 1; the shapes are the caller's business."""
        cdef cnp.ndarray xa, oa
        if type(x) is not cnp.ndarray or type(out) is not cnp.ndarray:
            return False
        xa, oa = <cnp.ndarray>x, <cnp.ndarray>out
        if not (cnp.PyArray_TYPE(xa) == self.typenum and cnp.PyArray_TYPE(oa) == self.typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(xa) and cnp.PyArray_IS_C_CONTIGUOUS(oa)
                and cnp.PyArray_ISALIGNED(xa) and cnp.PyArray_ISALIGNED(oa)
                and cnp.PyArray_ISNOTSWAPPED(xa) and cnp.PyArray_ISNOTSWAPPED(oa)
                and cnp.PyArray_ISWRITEABLE(oa)):
            return False
        cdef Py_ssize_t BI = self.batch_size * self.input_size, n = cnp.PyArray_SIZE(xa)
        cdef Py_ssize_t T = n // BI
        if n != T * BI or cnp.PyArray_SIZE(oa) != T * self.batch_size * self.out_size:
            raise ValueError(f"Stack.run: x holds {n} values and out {cnp.PyArray_SIZE(oa)}; expected "
                             f"T * {BI} and T * {self.batch_size * self.out_size}")
        if T == 0:
            return True
        if self.typenum == cnp.NPY_FLOAT32:
            with nogil:
                _run_stack(self.specs, self.num_layers, T, self.batch_size, <const float *>cnp.PyArray_DATA(xa),
                           <float *>cnp.PyArray_DATA(oa), <float *>self.ph, <float *>self.pc,
                           <float *>self.pgates, <float *>self.pscratch, <float *>self.pbetween)
        else:
            with nogil:
                _run_stack(self.specs, self.num_layers, T, self.batch_size, <const double *>cnp.PyArray_DATA(xa),
                           <double *>cnp.PyArray_DATA(oa), <double *>self.ph, <double *>self.pc,
                           <double *>self.pgates, <double *>self.pscratch, <double *>self.pbetween)
        return True

# ---- Streaming: every layer of a unidirectional module stepped together, state and buffers owned -------------

cdef void _run_stack(Direction *dirs, Py_ssize_t L, Py_ssize_t T, Py_ssize_t B, const floating *x, floating *out,
                     floating *between) noexcept nogil:
    """T steps of B rows through L unidirectional layers, step-major: step t runs layer 0..L-1 before step t + 1,
    each layer's input projection over its own B rows, so the arithmetic of a step never depends on how the steps
    were grouped into calls. One `between` buffer carries a layer's output to the next: a layer has projected all
    of its input before it writes its output. The team (if any) is led by the caller of run()."""
    cdef Py_ssize_t t, l, I0 = dirs[0].L.input_size, P = dirs[L - 1].L.out_size
    cdef const floating *v
    cdef floating *dest
    cdef bint split = _stack_split(dirs, L, T, B)
    cdef bint team = split and frnn_team_begin()
    for t in range(T):
        v = x + t * B * I0
        for l in range(L):
            dest = out + t * B * P if l == L - 1 else between
            dirs[l].x, dirs[l].out = v, dest
            _run_direction(<floating *>NULL, &dirs[l], team)
            v = dest
    if team:
        frnn_team_end()


cdef inline bint _stack_split(const Direction *dirs, Py_ssize_t L, Py_ssize_t T, Py_ssize_t B) noexcept nogil:
    """Whether a streamed call is large enough to share its steps with the worker (the thresholds of _run_layer)."""
    cdef Py_ssize_t l
    cdef double step, largest = 0, total = 0
    for l in range(L):
        step = 2.0 * B * dirs[l].L.gate_rows * (dirs[l].L.out_size + dirs[l].L.input_size)
        largest, total = max(largest, step), total + step
    return (_num_threads >= 2 and _num_cpus >= 2 and largest >= _tuning.split_min_step_flops
            and T * total >= _tuning.split_min_call_flops)


cdef class Stack:
    """A unidirectional module's layers stepped together for streaming, with a fixed batch size.

    Owns the recurrent state, `h` (L, B, P) and, for LSTM, `c` (L, B, H) (numpy arrays: read, zero or set
    them in place), and every work buffer, so `run` allocates nothing and holds the GIL for no step.
    """
    cdef Direction *dirs                  # one per layer, pointing into the specs and the buffers below
    cdef LayerSpec *specs
    cdef readonly Py_ssize_t num_layers, batch_size, input_size, out_size
    cdef readonly object layers           # keeps the weights the specs point into alive
    cdef readonly object h, c
    cdef object work                      # scratch, between
    cdef void *pbetween
    cdef int typenum

    def __cinit__(self):
        self.specs = NULL
        self.dirs = NULL

    def __dealloc__(self):
        PyMem_Free(self.specs)
        PyMem_Free(self.dirs)

    def __init__(self, list layers, Py_ssize_t batch_size):
        cdef Py_ssize_t l, L = len(layers), B = batch_size
        _check_stack(layers, batch_size)
        first = <Layer>layers[0]
        self.specs = <LayerSpec *>PyMem_Malloc(L * sizeof(LayerSpec))
        self.dirs = <Direction *>PyMem_Malloc(L * sizeof(Direction))
        if self.specs == NULL or self.dirs == NULL:
            raise MemoryError()
        for l in range(L):
            self.specs[l] = (<Layer>layers[l]).spec
        self.layers = tuple(layers)
        self.num_layers, self.batch_size = L, B
        self.input_size, self.out_size = first.spec.input_size, first.spec.out_size
        s, H, P = first.itemsize, first.spec.hidden_size, first.spec.out_size
        dtype = np.float32 if s == 4 else np.float64
        self.typenum = cnp.NPY_FLOAT32 if s == 4 else cnp.NPY_FLOAT64
        for l in range(L):  # every buffer below is B rows of a layer's sizes: no size product may wrap
            _size(B, _size(L, self.specs[l].hidden_size + self.specs[l].out_size, "a layer's rows"), "Stack")
            _scratch_bytes(&self.specs[l], 1, B, s)
        self.h = np.zeros((L, B, P), dtype)
        self.c = np.zeros((L, B, H), dtype) if first.spec.kind == KIND_LSTM else None
        size = max([_direction_scratch(&self.specs[l], 1, B, s) for l in range(L)])
        scratch, between = np.empty(size, dtype), np.empty(B * P, dtype)
        self.work = (scratch, between)
        self.pbetween = _data(between, between.size, s, True, "between")
        self._point_directions(_data(self.h, L * B * P, s, True, "h"),
                               _data(self.c, L * B * H, s, True, "c") if self.c is not None else NULL,
                               _data(scratch, scratch.size, s, True, "scratch"))

    cdef _point_directions(self, void *ph, void *pc, void *pscratch):
        """Each layer's Direction: one step per block, its slice of the state, the shared scratch."""
        cdef Py_ssize_t l, B = self.batch_size, s = (<Layer>self.layers[0]).itemsize
        cdef const LayerSpec *spec
        for l in range(self.num_layers):
            spec = &self.specs[l]
            memset(&self.dirs[l], 0, sizeof(Direction))
            self.dirs[l].L, self.dirs[l].T, self.dirs[l].B, self.dirs[l].block_steps = spec, 1, B, 1
            self.dirs[l].h = <char *>ph + l * B * spec.out_size * s
            self.dirs[l].c = <char *>pc + l * B * spec.hidden_size * s if pc != NULL else NULL
            _lay_scratch(&self.dirs[l], spec, 1, B, s, _aligned(pscratch))

    def run(self, x, out):
        """Run the steps of x (T, B, input_size) into out (T, B, out_size), carrying the state.

        Returns False, touching nothing, unless both are numpy arrays of the module's dtype, C-contiguous
        and aligned (out writeable): then the caller converts. Only the sizes are checked (T is read
        from x's size), so (T, input_size) serves for B = 1; the shapes are the caller's business."""
        cdef cnp.ndarray xa, oa
        if not (_plain_array(x, self.typenum, False) and _plain_array(out, self.typenum, True)):
            return False
        xa, oa = <cnp.ndarray>x, <cnp.ndarray>out
        cdef Py_ssize_t BI = self.batch_size * self.input_size, n = cnp.PyArray_SIZE(xa)
        cdef Py_ssize_t T = n // BI
        if n != T * BI or cnp.PyArray_SIZE(oa) != T * self.batch_size * self.out_size:
            raise ValueError(f"Stack.run: x holds {n} values and out {cnp.PyArray_SIZE(oa)}; expected "
                             f"T * {BI} and T * {self.batch_size * self.out_size}")
        if T == 0:
            return True
        if self.typenum == cnp.NPY_FLOAT32:
            with nogil:
                _run_stack(self.dirs, self.num_layers, T, self.batch_size, <const float *>cnp.PyArray_DATA(xa),
                           <float *>cnp.PyArray_DATA(oa), <float *>self.pbetween)
        else:
            with nogil:
                _run_stack(self.dirs, self.num_layers, T, self.batch_size, <const double *>cnp.PyArray_DATA(xa),
                           <double *>cnp.PyArray_DATA(oa), <double *>self.pbetween)
        return True


def _check_stack(list layers, Py_ssize_t batch_size):
    """Layers a Stack can step together: unidirectional, of one kind, dtype and size, each feeding the next."""
    cdef Layer layer, first
    cdef Py_ssize_t l
    if len(layers) < 1 or batch_size < 1:
        raise ValueError("Stack needs at least one layer and batch_size >= 1")
    for l in range(len(layers)):
        if not isinstance(layers[l], Layer):
            raise TypeError(f"layers[{l}]: expected a Layer, got {type(layers[l]).__name__}")
    first = layers[0]
    for l in range(len(layers)):
        layer = layers[l]
        if layer.spec.num_directions != 1 or layer.spec.reverse:
            raise ValueError("Stack: layers must be unidirectional, running forward")
        if (layer.itemsize != first.itemsize or layer.spec.kind != first.spec.kind
                or layer.spec.hidden_size != first.spec.hidden_size or layer.spec.out_size != first.spec.out_size):
            raise ValueError("Stack: layers must share kind, dtype, hidden and output sizes")
        if l > 0 and layer.spec.input_size != first.spec.out_size:
            raise ValueError(f"Stack: layers[{l}] takes {layer.spec.input_size} inputs, "
                             f"layers[{l - 1}] gives {first.spec.out_size}")

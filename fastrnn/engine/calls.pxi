# ---- A module's call: its layers in turn over the whole sequence, work buffers reused from call to call ----------
# A new array of a few MB costs a page fault per 4 KB page on first touch (2,400 per call of a 2-layer BiLSTM H=256
# B=8 T=200, a tenth of its time in bfloat16), so a call's scratch and its middle layers' outputs come from a pool
# (a list) the module keeps. The layer loop runs here rather than in Python: each Python statement of it cost
# ~0.2-0.5 us, ~5 us per call, when a one-step LSTM 64 call computes for ~1 us. A list's pop and append hold the
# GIL, so concurrent calls never share a buffer; at most POOL_BUFFERS of at most POOL_BUFFER_BYTES stay in a pool.

POOL_BUFFERS = 3
POOL_BUFFER_BYTES = 8 << 20


cdef cnp.ndarray _take(list pool, Py_ssize_t items, int typenum):
    """A 1-D array of at least `items` items of typenum from the pool, or a new one (its contents: any)."""
    cdef cnp.ndarray buffer
    cdef cnp.npy_intp size = max(items, 1)
    try:
        buffer = pool.pop()
        if cnp.PyArray_SIZE(buffer) >= items and cnp.PyArray_TYPE(buffer) == typenum:
            return buffer
    except IndexError:
        pass
    return cnp.PyArray_EMPTY(1, &size, typenum, 0)


cdef void _give(list pool, cnp.ndarray buffer):
    """Keep a buffer from _take for the next call, if it is small enough and the pool is not full."""
    if cnp.PyArray_NBYTES(buffer) <= POOL_BUFFER_BYTES and len(pool) < POOL_BUFFERS:
        pool.append(buffer)


def run_layers(list layers, x, Py_ssize_t T, Py_ssize_t B, bint batch_first, h, c, active, list pool):
    """Every layer in turn over the T*B rows of x (the layouts of Layer.forward; x of any shape holding them, made
    C-contiguous in the layers' dtype here if it is not); returns the last layer's output, a new array of shape
    (B, T, D*P) if batch_first else (T, B, D*P) (zeros in the rows past a row's length, given `active`).

    h (L*D, B, P) and, for LSTM, c (L*D, B, H) (else None): the initial states of every layer, overwritten with
    the final ones. The layers: of one kind, dtype and sizes, each taking the previous one's output (D*P inputs).
    pool: the module's list of work buffers (_take, _give)."""
    cdef Py_ssize_t l, L = len(layers), rows = _size(T, B, "T x B rows"), scratch_items = 0
    if L == 0:
        raise ValueError("run_layers: no layer")
    cdef Layer layer, first = _layer(layers[0], 0)
    cdef Py_ssize_t s = first.itemsize, D = first.spec.num_directions, H = first.spec.hidden_size
    cdef Py_ssize_t P = first.spec.out_size, DP = D * P
    cdef int typenum = cnp.NPY_FLOAT32 if s == 4 else cnp.NPY_FLOAT64
    cdef bint lstm = first.spec.kind == KIND_LSTM
    for l in range(L):
        layer = _layer(layers[l], l)
        if (layer.itemsize != s or layer.spec.kind != first.spec.kind or layer.spec.num_directions != D
                or layer.spec.hidden_size != H or layer.spec.out_size != P):
            raise ValueError(f"run_layers: layers[{l}] differs from layers[0] in kind, dtype or size")
        if l > 0 and layer.spec.input_size != DP:
            raise ValueError(f"run_layers: layers[{l}] takes {layer.spec.input_size} inputs, layers[{l - 1}] gives {DP}")
        scratch_items = max(scratch_items, layer._scratch_size(T, B))
    cdef cnp.npy_intp shape[3]
    shape[0], shape[1], shape[2] = (B, T, DP) if batch_first else (T, B, DP)
    if active is not None:
        out = cnp.PyArray_ZEROS(3, shape, typenum, 0)
    else:
        out = cnp.PyArray_EMPTY(3, shape, typenum, 0)
    if not _plain_array(x, typenum, False):
        x = np.ascontiguousarray(x, dtype=np.float32 if s == 4 else np.float64)
    if rows == 0:
        return out
    cdef char *px = <char *>_data(x, _size(rows, first.spec.input_size, "x"), s, False, "x")
    cdef char *ph = <char *>_data(h, _size(_size(L * D, B, "h"), P, "h"), s, True, "h")
    cdef char *pc = <char *>_data(c, _size(_size(L * D, B, "c"), H, "c"), s, True, "c") if lstm else NULL
    cdef const Py_ssize_t[::1] act
    cdef const Py_ssize_t *pa = NULL
    if active is not None:
        act = active
        _check_active(act, T, B)
        pa = &act[0]
    cdef cnp.ndarray scratch = _take(pool, scratch_items, typenum), middle = None, previous = None
    cdef char *pscr = <char *>cnp.PyArray_DATA(scratch)
    cdef char *po
    for l in range(L):
        layer = <Layer>layers[l]
        if l == L - 1:
            po = <char *>cnp.PyArray_DATA(out)
        else:
            middle = _take(pool, rows * DP, typenum)
            po = <char *>cnp.PyArray_DATA(middle)
            if pa != NULL:  # rows past a length: never read by the next layer, zeroed as a new array's would be
                memset(po, 0, rows * DP * s)
        layer._run(px, ph + l * D * B * P * s, pc + l * D * B * H * s if lstm else NULL, po, pscr, scratch_items,
                   pa, T, B, batch_first)
        if previous is not None:  # the previous layer's output, now read
            _give(pool, previous)
        previous, px = middle, po
    _give(pool, scratch)
    return out


cdef Layer _layer(object layer, Py_ssize_t l):
    if not isinstance(layer, Layer):
        raise TypeError(f"run_layers: layers[{l}] must be a Layer, got {type(layer).__name__}")
    return <Layer>layer

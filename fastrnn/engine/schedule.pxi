# ---- Which thread runs what: both directions at once, one direction's phases split, or all on the caller --------
# With a budget of 2+ threads and 2+ CPUs, a call large enough leads a team with fastrnn's worker (src_c/worker.c):
# the two directions of a bidirectional layer as the two chunks of one phase (no per-step hand-off), or one
# direction's projections and steps split into chunks of units. The worker takes chunks only when it is there to
# take them, so a late or busy worker makes a call no slower than one thread by more than a chunk.

cdef inline Py_ssize_t _block_steps(const LayerSpec *L, Py_ssize_t T, Py_ssize_t B, Py_ssize_t itemsize) nogil:
    """Timesteps whose input projection a direction computes at once: tuning block_bytes of gate rows, or enough
    steps for block_rows rows if that is more; at most T, at least 1."""
    cdef double by_bytes = _tuning.block_bytes / (<double>B * L.gate_rows * itemsize)
    cdef double by_rows = ceil(_tuning.block_rows / <double>B)
    return max(1, <Py_ssize_t>min(<double>T, max(by_bytes, by_rows)))


cdef inline Py_ssize_t _segment(Py_ssize_t *end, Py_ssize_t bytes) noexcept nogil:
    """Reserve `bytes` (rounded up to 64) at offset *end; returns that offset."""
    cdef Py_ssize_t offset = end[0]
    end[0] += (bytes + 63) // 64 * 64
    return offset


cdef Py_ssize_t _lay_scratch(Direction *D, const LayerSpec *L, Py_ssize_t Tb, Py_ssize_t B, Py_ssize_t s,
                             char *base) noexcept nogil:
    """One direction's work space from `base`: the block's gate rows, the new h, the cell output of a projection
    (or GRU's r * h and z with the reset before W_hn), and for bf16 / int8 weights the converted rows of the
    block's input and of one step's product. Points D's buffers there (D may be NULL: only the size); returns
    its bytes. Unchecked: callers size it through _scratch_bytes first."""
    cdef Py_ssize_t at = 0
    cdef bint cell = L.w_hr[0].panels != NULL or L.w_hn[0].panels != NULL
    cdef Py_ssize_t f = L.format, widest = max(L.out_size, L.hidden_size)
    cdef Py_ssize_t gates = _segment(&at, Tb * B * L.gate_rows * s), h_new = _segment(&at, B * L.out_size * s)
    cdef Py_ssize_t cell_out = _segment(&at, B * L.hidden_size * s if cell else 0)
    cdef Py_ssize_t aux = _segment(&at, B * L.hidden_size * s if L.w_hn[0].panels != NULL else 0)
    cdef bint reduced = f != FRNN_FMT_FLOAT
    cdef Py_ssize_t x_conv = _segment(&at, frnn_converted_bytes(f, Tb * B, L.input_size) if reduced else 0)
    cdef Py_ssize_t x_scale = _segment(&at, Tb * B * 4 if reduced else 0)
    cdef Py_ssize_t v_conv = _segment(&at, frnn_converted_bytes(f, B, widest) if reduced else 0)
    cdef Py_ssize_t v_scale = _segment(&at, B * 4 if reduced else 0)
    if D != NULL:
        D.gates, D.h_new, D.cell, D.aux = base + gates, base + h_new, base + cell_out, base + aux
        D.x_conv, D.x_scale = base + x_conv, <float *>(base + x_scale)
        D.v_conv, D.v_scale = base + v_conv, <float *>(base + v_scale)
    return at


cdef Py_ssize_t _scratch_bytes(const LayerSpec *L, Py_ssize_t Tb, Py_ssize_t B, Py_ssize_t s) except -1:
    """A bound on one direction's scratch bytes (_lay_scratch), its products checked: B and Tb come from callers,
    and a wrapped size would pass the buffer checks and let a kernel run past the scratch. Per row of the block:
    the gate rows and the converted input (at most I + 63 values of at most s bytes: k padded to whole AMX tiles,
    and a 4-byte scale); per row: h_new, the cell output, z and the converted product rows (likewise padded); the
    15 readable rows past each converted buffer; 64 bytes of padding per segment and 63 of alignment."""
    cdef Py_ssize_t widest = max(L.out_size, L.hidden_size)
    cdef Py_ssize_t per_block_row = _size(L.gate_rows + L.input_size + 65, s, "scratch")
    cdef Py_ssize_t per_row = _size(2 * L.out_size + 2 * L.hidden_size + widest + 65, s, "scratch")
    cdef Py_ssize_t past = _size(FRNN_TILE_ROWS, _size(L.input_size + widest + 128, s, "scratch"), "scratch")
    return _size(B, _size(Tb, per_block_row, "scratch") + per_row, "scratch") + past + 8 * 64 + 63


cdef inline Py_ssize_t _direction_scratch(const LayerSpec *L, Py_ssize_t Tb, Py_ssize_t B,
                                          Py_ssize_t itemsize) noexcept nogil:
    """Items of scratch one direction needs for blocks of Tb steps of B rows (64-byte aligned segments: 63 bytes
    of slack)."""
    cdef Py_ssize_t bytes = _lay_scratch(NULL, L, Tb, B, itemsize, NULL) + 63
    return (bytes + itemsize - 1) // itemsize


cdef inline char *_aligned(void *p) noexcept nogil:
    return <char *>((<size_t>p + 63) // 64 * 64)


cdef void _direction_chunk_f32(void *dirs, long d) noexcept nogil:
    _run_direction(<float *>NULL, &(<Direction *>dirs)[d], False)


cdef void _direction_chunk_f64(void *dirs, long d) noexcept nogil:
    _run_direction(<double *>NULL, &(<Direction *>dirs)[d], False)


cdef void _run_layer(const LayerSpec *L, Py_ssize_t T, Py_ssize_t B, Py_ssize_t Tb, bint batch_first,
                     const floating *x, floating *h, floating *c, floating *out, floating *scratch,
                     const Py_ssize_t *active) noexcept nogil:
    """Every direction of one layer over T steps of B rows, in blocks of Tb steps (the block size the caller sized
    the scratch for, under the GIL: a concurrent set_tuning cannot change it here). Layouts in fastrnn/_engine.pyx."""
    cdef Py_ssize_t d, D = L.num_directions, H = L.hidden_size, P = L.out_size
    cdef Py_ssize_t size = _direction_scratch(L, Tb, B, sizeof(floating))
    cdef double step_flops = 2.0 * B * L.gate_rows * (P + L.input_size)  # a GRU's W_hn counted in gate_rows
    cdef bint two = _num_threads >= 2 and _num_cpus >= 2
    cdef bint parallel = two and D == 2 and T * step_flops >= _tuning.parallel_min_flops
    cdef bint split = (two and not parallel and step_flops >= _tuning.split_min_step_flops
                       and T * step_flops >= _tuning.split_min_call_flops)
    cdef bint team = (parallel or split) and frnn_team_begin()
    cdef Direction dirs[2]
    for d in range(D):
        dirs[d].L, dirs[d].d, dirs[d].batch_first, dirs[d].T, dirs[d].B = L, d, batch_first, T, B
        dirs[d].reverse, dirs[d].outward, dirs[d].fused_steps = d == 1 or L.reverse, 0, 0
        dirs[d].x, dirs[d].out, dirs[d].active, dirs[d].block_steps = x, out, active, Tb
        dirs[d].h, dirs[d].c = h + d * B * P, c + d * B * H if c != NULL else NULL
        _lay_scratch(&dirs[d], L, Tb, B, sizeof(floating), _aligned(scratch + d * size))
    if team and parallel:
        frnn_team_run(_direction_chunk_f32 if floating is float else _direction_chunk_f64, dirs, 2)
    else:
        for d in range(D):
            _run_direction(<floating *>NULL, &dirs[d], team and split)
    if team:
        frnn_team_end()


def _team_counts():
    """Tests: (phases the worker took part in, calls refused while it backed off) so far."""
    return frnn_team_shared_phases(), frnn_team_backoffs()


def _team_forgive():
    """Tests: end the worker's back-off (a loaded machine can make it late) before checking that it joins."""
    frnn_team_forgive()

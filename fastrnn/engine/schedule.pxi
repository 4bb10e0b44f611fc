# ---- Which thread runs what: both directions at once, one direction's phases split, or all on the caller --------
# With a budget of 2+ threads and 2+ CPUs, a call large enough leads a team with fastrnn's worker (src_c/worker.c):
# the two directions of a bidirectional layer as the two chunks of one phase (no per-step hand-off), or one
# direction's projections and steps split into chunks of units. The worker takes chunks only when it is there to
# take them, so a late or busy worker makes a call no slower than one thread by more than a chunk.

cdef inline Py_ssize_t _block_steps(const LayerSpec *L, Py_ssize_t T, Py_ssize_t B, Py_ssize_t itemsize) nogil:
    """Timesteps whose input projection a direction computes at once (tuning block_bytes of gate rows)."""
    return max(1, <Py_ssize_t>min(<double>T, _tuning.block_bytes / (<double>B * L.gate_rows * itemsize)))


cdef inline Py_ssize_t _direction_scratch(const LayerSpec *L, Py_ssize_t Tb, Py_ssize_t B) nogil:
    """Items of scratch one direction needs for blocks of Tb steps: the block's gate rows, the new h, the cell output
    of a projection (or GRU's r * h and z with the reset before W_hn)."""
    return (Tb * B * L.gate_rows + B * L.out_size
            + (B * L.hidden_size if L.w_hr[0] != NULL or L.w_hn[0] != NULL else 0)
            + (B * L.hidden_size if L.w_hn[0] != NULL else 0))


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
    cdef Py_ssize_t size = _direction_scratch(L, Tb, B)
    cdef double step_flops = 2.0 * B * L.gate_rows * (P + L.input_size)  # a GRU's W_hn counted in gate_rows
    cdef bint two = _num_threads >= 2 and _num_cpus >= 2
    cdef bint parallel = two and D == 2 and T * step_flops >= _tuning.parallel_min_flops
    cdef bint split = (two and not parallel and step_flops >= _tuning.split_min_step_flops
                       and T * step_flops >= _tuning.split_min_call_flops)
    cdef bint team = (parallel or split) and frnn_team_begin()
    cdef Direction dirs[2]
    for d in range(D):
        dirs[d].L, dirs[d].d, dirs[d].batch_first, dirs[d].T, dirs[d].B = L, d, batch_first, T, B
        dirs[d].reverse = d == 1 or L.reverse
        dirs[d].x, dirs[d].out, dirs[d].active, dirs[d].block_steps = x, out, active, Tb
        dirs[d].h, dirs[d].c = h + d * B * P, c + d * B * H if c != NULL else NULL
        dirs[d].gates = scratch + d * size
        dirs[d].h_new = scratch + d * size + Tb * B * L.gate_rows
        dirs[d].cell = scratch + d * size + Tb * B * L.gate_rows + B * P
        dirs[d].aux = scratch + d * size + Tb * B * L.gate_rows + B * P + B * H
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

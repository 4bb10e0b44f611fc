# ---- One direction of one layer over T steps: blocks of input projection, then the steps of each block -----------
# Each piece of work is a phase over whole panels of units, run by this thread alone or split into chunks shared
# with the worker (frnn_team_run): the input projection of a block, the recurrent step, the LSTM projection. Every
# unit's arithmetic is the same whichever thread computes it, so the results do not depend on the threads.

cdef inline void *_h_out(const Direction *D) noexcept nogil:
    """Where a step's last phase writes the new h: straight into the state D.h when nothing in the step reads the
    old h there (LSTM and RNN with bf16 / int8 weights: their products read the rows converted before the phase,
    their gate math no h), saving a copy per step; else D.h_new (float32 products read the old h in place, GRU's
    gate math reads it), copied to D.h when the step is done."""
    return D.h if D.L.format != FRNN_FMT_FLOAT and D.L.kind != KIND_GRU else D.h_new


cdef void _step_units(floating *typed, const Direction *D, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Step D.t for its D.n active rows, units j0..j1 of H: the dot products of the old h (D.rows) with W_hh and
    the gate math, into _h_out(D) (the cell output, before an LSTM projection; GRU with the reset before W_hn: z and
    r * h, for the candidate phase). The old h is read whole by every unit, so it stays put until the step is done
    (bf16 / int8 products read its converted copy, D.rows, which is why their new h may go straight to D.h)."""
    cdef const LayerSpec *L = D.L
    cdef Py_ssize_t n = D.n, H = L.hidden_size, P = L.out_size, GH = L.gate_rows
    cdef const floating *g = <const floating *>D.gates + (D.t - D.t0) * D.B * GH
    cdef const floating *h = <const floating *>D.h
    cdef const frnn_mat *w = &L.w_hh[D.d]
    cdef const frnn_cell *cell = &L.cell[D.d]
    cdef floating *c
    if L.kind == KIND_LSTM:
        c = <floating *>D.c
        _lstm_rec(n, H, j0, j1, P, w, &D.rows, g, GH, c, c,
                  <floating *>(D.cell if L.w_hr[D.d].panels != NULL else _h_out(D)), cell,
                  <const floating *>L.peep[D.d])
    elif L.kind == KIND_GRU and L.reset_after:
        _gru_rec(n, H, j0, j1, w, &D.rows, h, g, GH, <const floating *>L.b_hn[D.d], <floating *>D.h_new, cell)
    elif L.kind == KIND_GRU:
        _gru_rz(n, H, j0, j1, w, &D.rows, h, g, GH, <floating *>D.aux, <floating *>D.cell, cell)
    else:
        _dense(n, 1, H, j0, j1, P, w, &D.rows, g, GH, cell, <floating *>_h_out(D), H)


cdef void _candidate_units(floating *typed, const Direction *D, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """GRU with the reset before W_hn, step D.t, units j0..j1: n from (r * h) W_hn^T (r * h: D.rows), then h'."""
    cdef const LayerSpec *L = D.L
    _gru_n(D.n, L.hidden_size, j0, j1, &L.w_hn[D.d], &D.rows,
           <const floating *>D.gates + (D.t - D.t0) * D.B * L.gate_rows, L.gate_rows, <const floating *>D.aux,
           <const floating *>D.h, <floating *>D.h_new, &L.cell[D.d])


cdef void _projection_units(floating *typed, const Direction *D, Py_ssize_t p0, Py_ssize_t p1) noexcept nogil:
    """The LSTM projection of step D.t, outputs p0..p1 of P: the new h (_h_out) = cell W_hr^T (the cell output:
    D.rows)."""
    cdef const LayerSpec *L = D.L
    _dense(D.n, 1, L.out_size, p0, p1, L.hidden_size, &L.w_hr[D.d], &D.rows, <const floating *>NULL, 0,
           <const frnn_cell *>NULL, <floating *>_h_out(D), L.out_size)


cdef inline long _split_order(Py_ssize_t count, long i) noexcept nogil:
    """The chunk a split phase's claim i runs on an odd step. The caller claims 0, 1, .. and the worker count-1,
    count-2, .. (src_c/worker.c), so each core takes about the same half of the panels every step; on odd steps
    each half is taken from the middle out (the caller's half downwards, the worker's upwards, and the far ends
    of the other's half last), so each core starts a step on the panels its L2 kept from the previous one."""
    cdef long mid = count // 2
    return mid - 1 - i if i < mid else count - 1 + mid - i


cdef void _chunk(floating *typed, Direction *D, long i) noexcept nogil:
    """Chunk i of the current phase: units [i * chunk_units, (i + 1) * chunk_units) of it (a split recurrent
    phase on an odd step: chunk _split_order(i))."""
    cdef Py_ssize_t units = D.L.out_size if D.phase == PHASE_PROJECTION else D.L.hidden_size
    if D.outward:
        i = _split_order(D.outward, i)
    cdef Py_ssize_t j0 = i * D.chunk_units, j1 = min(units, j0 + D.chunk_units)
    if D.phase == PHASE_PROJECT:
        _project_block(typed, D, j0, j1)
    elif D.phase == PHASE_STEP:
        _step_units(typed, D, j0, j1)
    elif D.phase == PHASE_CANDIDATE:
        _candidate_units(typed, D, j0, j1)
    else:
        _projection_units(typed, D, j0, j1)


cdef void _chunk_f32(void *D, long i) noexcept nogil:
    _chunk(<float *>NULL, <Direction *>D, i)


cdef void _chunk_f64(void *D, long i) noexcept nogil:
    _chunk(<double *>NULL, <Direction *>D, i)


cdef inline void _run_phase(floating *typed, Direction *D, int phase, bint split) noexcept nogil:
    """One phase over every unit, after the rows its product reads are ready (converted once, by this thread, for
    bf16 / int8 weights)."""
    cdef const LayerSpec *L = D.L
    cdef Py_ssize_t units = L.out_size if phase == PHASE_PROJECTION else L.hidden_size, count
    if phase == PHASE_PROJECT:
        if L.format != FRNN_FMT_FLOAT:
            _convert_block(D)
    elif phase == PHASE_STEP:
        D.rows = _convert_rows(L.format, D.n, L.out_size, D.h, L.out_size, D.v_conv, D.v_scale)
    else:  # the candidate reads r * h, the projection the cell output: both in D.cell
        D.rows = _convert_rows(L.format, D.n, L.hidden_size, D.cell, L.hidden_size, D.v_conv, D.v_scale)
    D.phase = phase
    if split:
        count = (units + D.chunk_units - 1) // D.chunk_units
        D.outward = count if phase != PHASE_PROJECT and D.t & 1 and _tuning.split_sweep != 0 else 0
        frnn_team_run(_chunk_f32 if floating is float else _chunk_f64, D, count)
        D.outward = 0
    elif phase != PHASE_PROJECT and _recurrent_bytes(typed, L) >= _tuning.sweep_min_bytes:
        _sweep(typed, D, units)
    else:
        D.chunk_units = units
        _chunk(typed, D, 0)


cdef inline double _recurrent_bytes(floating *typed, const LayerSpec *L) noexcept nogil:
    """Bytes of the weights one step reads (W_hh, W_hn, W_hr) in the layer's format."""
    cdef double item = _format_bytes(L.format, sizeof(floating))
    return item * ((L.gate_rows + (L.hidden_size if L.w_hn[0].panels != NULL else 0)) * L.out_size
                   + (L.out_size * L.hidden_size if L.w_hr[0].panels != NULL else 0))


cdef inline void _sweep(floating *typed, Direction *D, Py_ssize_t units) noexcept nogil:
    """A phase by one thread, in sweep_chunks chunks taken in the opposite order on every other step: what one step
    read last is what L2 still holds, so the next step starts there (weights of about L2's size and more stream
    from L3 otherwise, every step). Chunks are whole panels: the order changes no unit's arithmetic."""
    cdef Py_ssize_t lanes = frnn_lanes(sizeof(floating)), panels = (units + lanes - 1) // lanes
    cdef Py_ssize_t chunks = max(1, <Py_ssize_t>_tuning.sweep_chunks), i, count
    D.chunk_units = (panels + chunks - 1) // chunks * lanes
    count = (units + D.chunk_units - 1) // D.chunk_units
    for i in range(count):
        _chunk(typed, D, count - 1 - i if D.t & 1 else i)


cdef inline double _step_bytes(floating *typed, const LayerSpec *L) noexcept nogil:
    """Bytes of the weights one step of a one-step block reads: W_ih and the recurrent ones."""
    return <double>_format_bytes(L.format, sizeof(floating)) * L.gate_rows * L.input_size + _recurrent_bytes(typed, L)


cdef inline void _fused_step(floating *typed, Direction *D) noexcept nogil:
    """A block of one step (D.t), by one thread: each chunk of units gets its input projection and its recurrent
    step together, so the chunks may run in any order; they run in the opposite order on every other such step.
    W_ih and W_hh are then read as one sweep: what the previous step read last is still in L2 (a streamed LSTM 256
    reads 2 MB per step, a 2 MB L2's size). The order changes no unit's arithmetic."""
    cdef const LayerSpec *L = D.L
    cdef Py_ssize_t lanes = frnn_lanes(sizeof(floating)), units = L.hidden_size, panels = (units + lanes - 1) // lanes
    cdef Py_ssize_t chunks = max(1, <Py_ssize_t>_tuning.sweep_chunks), i, k, count, j0, j1
    if L.format != FRNN_FMT_FLOAT:
        _convert_block(D)
    D.rows = _convert_rows(L.format, D.n, L.out_size, D.h, L.out_size, D.v_conv, D.v_scale)
    D.chunk_units = (panels + chunks - 1) // chunks * lanes
    count = (units + D.chunk_units - 1) // D.chunk_units
    for k in range(count):
        i = count - 1 - k if D.fused_steps & 1 else k
        j0 = i * D.chunk_units
        j1 = min(units, j0 + D.chunk_units)
        _project_block(typed, D, j0, j1)
        _step_units(typed, D, j0, j1)
    D.fused_steps += 1


cdef inline void _finish_step(floating *typed, const Direction *D) noexcept nogil:
    """The new h becomes the state (unless the step wrote it there: _h_out), and step t's output rows (time-major:
    row t*B + b; batch-major: b*T + t)."""
    cdef Py_ssize_t P = D.L.out_size, DP = D.L.num_directions * P
    cdef Py_ssize_t row0 = D.t if D.batch_first else D.t * D.B, ld = D.T * DP if D.batch_first else DP
    cdef const floating *h = <const floating *>_h_out(D)
    if h != <const floating *>D.h:
        _copy_rows(D.n, P, h, P, <floating *>D.h, P)
    _copy_rows(D.n, P, h, P, <floating *>D.out + row0 * DP + D.d * P, ld)


cdef inline Py_ssize_t _chunk_units(Py_ssize_t units, Py_ssize_t itemsize) noexcept nogil:
    """Units per chunk of a split phase: whole panels, about tuning split_chunks chunks of the units."""
    cdef Py_ssize_t lanes = frnn_lanes(itemsize), panels = (units + lanes - 1) // lanes
    cdef Py_ssize_t chunks = max(1, <Py_ssize_t>_tuning.split_chunks)
    return (panels + chunks - 1) // chunks * lanes


cdef void _run_direction(floating *typed, Direction *D, bint split) noexcept nogil:
    """The whole sequence of one direction, block by block (reverse: from the last block, each backwards)."""
    cdef Py_ssize_t k, s, T = D.T, Tb = D.block_steps, blocks = (D.T + D.block_steps - 1) // D.block_steps
    cdef bint reverse = D.reverse, projection = D.L.w_hr[D.d].panels != NULL
    cdef bint candidate = D.L.w_hn[D.d].panels != NULL
    if split:
        D.chunk_units = _chunk_units(D.L.hidden_size, sizeof(floating))
    cdef bint fuse = Tb == 1 and not split and _step_bytes(typed, D.L) >= _tuning.fuse_min_bytes
    for k in range(blocks):
        D.t0 = max(0, T - (k + 1) * Tb) if reverse else k * Tb
        D.t1 = T - k * Tb if reverse else min(T, (k + 1) * Tb)
        if not fuse:
            _run_phase(typed, D, PHASE_PROJECT, split)
        for s in range(D.t1 - D.t0):
            D.t = D.t1 - 1 - s if reverse else D.t0 + s
            D.n = D.active[D.t] if D.active != NULL else D.B
            if D.n == 0:
                continue
            if fuse:
                _fused_step(typed, D)
            else:
                _run_phase(typed, D, PHASE_STEP, split)
            if candidate:
                _run_phase(typed, D, PHASE_CANDIDATE, split)
            if projection:
                _run_phase(typed, D, PHASE_PROJECTION, split)
            _finish_step(typed, D)

# ---- What the time loop knows of one layer, and of one direction's run over a sequence ---------------------------

# Kind codes of the time loop. Layer maps fastrnn's vocabulary (fastrnn._kinds: kind, nonlinearity) to them once.
cdef enum:
    KIND_RNN = 0
    KIND_LSTM = 1
    KIND_GRU = 2


cdef int _kind_code(str kind, str nonlinearity, int *act) except -1:
    """The time loop's code for a kind, and *act the RNN's activation."""
    act[0] = FRNN_ACT_RELU if nonlinearity == "relu" else FRNN_ACT_TANH
    if kind == "RNN" and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Layer: an RNN's nonlinearity is 'tanh' or 'relu', got {nonlinearity!r}")
    if kind not in ("RNN", "LSTM", "GRU"):
        raise ValueError(f"Layer: unknown kind {kind!r}")
    return KIND_LSTM if kind == "LSTM" else KIND_GRU if kind == "GRU" else KIND_RNN


cdef struct LayerSpec:
    int kind
    int act                   # RNN: FRNN_ACT_TANH or FRNN_ACT_RELU
    Py_ssize_t num_directions, input_size, hidden_size, out_size, gates, gate_rows   # gate_rows = gates * H
    # Weights per direction, packed in panels (src_c/fastrnn_kernels.h): the only copy the engine keeps.
    void *w_ih[2]             # G gates x H units, K = input_size
    void *w_hh[2]             # G gates x H units, K = out_size
    void *w_hr[2]             # LSTM projection: 1 x P units, K = H; or NULL
    void *bias[2]             # (G*H) b_ih + b_hh (GRU: b_hh of r, z only), or NULL
    void *b_hn[2]             # GRU's b_hn (H), or NULL


# What a chunk of a phase computes (the team's chunk functions switch on it).
cdef enum:
    PHASE_PROJECT = 0         # the input projection of the block [t0, t1), units of a chunk
    PHASE_STEP = 1            # the recurrent step t: dot products with W_hh and the gate math, units of a chunk
    PHASE_PROJECTION = 2      # the LSTM projection of step t, outputs of a chunk


cdef struct Direction:
    # One direction of one layer over a whole sequence: what its time loop reads and writes.
    const LayerSpec *L
    int d                     # 0 forward, 1 reverse (columns d*P of out; runs from the last step)
    bint batch_first
    Py_ssize_t T, B
    const void *x             # (T*B, I) rows in the caller's order (t*B + b, or b*T + t)
    void *out                 # (T*B, D*P) rows; this direction writes columns d*P .. d*P + P
    void *h                   # (B, P): the initial state on entry, the final state on return
    void *c                   # (B, H) LSTM cell state, or NULL
    const Py_ssize_t *active  # rows alive at each step (rows sorted by decreasing length), or NULL
    Py_ssize_t block_steps    # timesteps projected at once
    void *gates               # (block_steps * B, G*H) the block's input projection, row (t - t0) * B + b
    void *h_new               # (B, P) the step's new h, while the step's units still read the old
    void *cell                # (B, H) LSTM cell output before the projection
    # The phase being run, read by the chunk functions:
    int phase
    Py_ssize_t t0, t1, t, n   # block [t0, t1); step t with n active rows
    Py_ssize_t chunk_units    # units per chunk (whole panels)

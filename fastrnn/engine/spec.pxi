# ---- What the time loop knows of one layer, and of one direction's run over a sequence ---------------------------

# Kind codes of the time loop. Layer maps fastrnn's vocabulary (fastrnn._kinds: kind, nonlinearity) to them once.
cdef enum:
    KIND_RNN = 0
    KIND_LSTM = 1
    KIND_GRU = 2


cdef int _kind_code(str kind) except -1:
    if kind not in ("RNN", "LSTM", "GRU"):
        raise ValueError(f"Layer: unknown kind {kind!r}")
    return KIND_LSTM if kind == "LSTM" else KIND_GRU if kind == "GRU" else KIND_RNN


# The activations the kernels compute, by the names fastrnn.activations uses: the codes of src_c/fastrnn_kernels.h.
ACTIVATION_CODES = {
    "tanh": FRNN_ACT_TANH, "relu": FRNN_ACT_RELU, "identity": FRNN_ACT_IDENTITY, "sigmoid": FRNN_ACT_SIGMOID,
    "affine": FRNN_ACT_AFFINE, "leaky_relu": FRNN_ACT_LEAKY_RELU, "thresholded_relu": FRNN_ACT_THRESHOLDED_RELU,
    "scaled_tanh": FRNN_ACT_SCALED_TANH, "hard_sigmoid": FRNN_ACT_HARD_SIGMOID, "elu": FRNN_ACT_ELU,
    "softsign": FRNN_ACT_SOFTSIGN, "softplus": FRNN_ACT_SOFTPLUS, "step": FRNN_ACT_STEP,
}


cdef frnn_act _act(tuple entry) except *:
    """(name, alpha, beta) -> the kernels' frnn_act."""
    cdef frnn_act act
    act.code, act.alpha, act.beta = ACTIVATION_CODES[entry[0]], entry[1], entry[2]
    return act


cdef struct LayerSpec:
    int kind
    int format                # the weights' format (FRNN_FMT_*): float (the layer's dtype), bfloat16 or int8
    bint reverse              # a one-direction layer that runs from its last step (ONNX "reverse", Keras go_backwards)
    bint reset_after          # GRU: linear before reset (torch's), else the reset is applied before W_hn
    Py_ssize_t num_directions, input_size, hidden_size, out_size, gates, gate_rows   # gate_rows = gates * H
    frnn_cell cell[2]         # per direction: activations, clip, coupled gates (src_c/fastrnn_kernels.h)
    # Weights per direction, packed in panels (src_c/fastrnn_kernels.h): the only copy the engine keeps.
    frnn_mat w_ih[2]          # G gates x H units, K = input_size
    frnn_mat w_hh[2]          # G gates x H units, K = out_size (GRU with the reset before: r, z only, 2 x H)
    frnn_mat w_hn[2]          # GRU with the reset before: the n gate's, 1 x H, K = H; else panels NULL
    frnn_mat w_hr[2]          # LSTM projection: 1 x P units, K = H; or panels NULL
    void *bias[2]             # (G*H) b_ih + b_hh (GRU linear before reset: b_hh of r, z only), or NULL
    void *b_hn[2]             # GRU's b_hn (H) with linear before reset, or NULL
    void *peep[2]             # LSTM peepholes (3H: i, f, o), or NULL


# What a chunk of a phase computes (the team's chunk functions switch on it).
cdef enum:
    PHASE_PROJECT = 0         # the input projection of the block [t0, t1), units of a chunk
    PHASE_STEP = 1            # the recurrent step t: dot products with W_hh and the gate math, units of a chunk
    PHASE_CANDIDATE = 2       # GRU with the reset before W_hn: the candidate's product and h', units of a chunk
    PHASE_PROJECTION = 3      # the LSTM projection of step t, outputs of a chunk


cdef struct Direction:
    # One direction of one layer over a whole sequence: what its time loop reads and writes.
    const LayerSpec *L
    int d                     # 0 forward, 1 reverse (columns d*P of out)
    bint reverse              # runs from the last step
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
    void *cell                # (B, H) LSTM cell output before the projection; GRU's r * h with the reset before
    void *aux                 # (B, H) GRU's z with the reset before
    # bf16 / int8 weights: the rows their products read, converted once per phase (src_c/fastrnn_kernels.h)
    void *x_conv              # (block_steps * B, I) the block's input rows (block order: see _convert_block)
    float *x_scale            # their int8 scales
    void *v_conv              # (B, max(P, H)) the rows of the step's current product: h, r * h or the cell output
    float *v_scale
    # The phase being run, read by the chunk functions:
    int phase
    Py_ssize_t t0, t1, t, n   # block [t0, t1); step t with n active rows
    Py_ssize_t chunk_units    # units per chunk (whole panels)
    Py_ssize_t outward        # chunks of a split recurrent phase on an odd step (0: none): see _split_order
    Py_ssize_t fused_steps    # one-step blocks run by _fused_step so far (their sweep order alternates)
    frnn_rows rows            # what the phase's product reads (PHASE_STEP: h; CANDIDATE: r * h; PROJECTION: cell)

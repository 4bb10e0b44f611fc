# ---- What the time loop knows of one layer: its cell kind and where its weights are --------------------------------

# Kind codes of the time loop. Layer maps fastrnn's vocabulary (fastrnn._kinds: kind, nonlinearity) to them once.
cdef enum:
    KIND_RNN_TANH = 0
    KIND_RNN_RELU = 1
    KIND_LSTM = 2
    KIND_GRU = 3


cdef int _kind_code(str kind, str nonlinearity) except -1:
    if kind == "LSTM":
        return KIND_LSTM
    if kind == "GRU":
        return KIND_GRU
    if kind == "RNN" and nonlinearity in ("tanh", "relu"):
        return KIND_RNN_TANH if nonlinearity == "tanh" else KIND_RNN_RELU
    raise ValueError(f"Layer: unknown kind {kind!r} (nonlinearity {nonlinearity!r})")


cdef struct LayerSpec:
    int kind
    Py_ssize_t num_directions, input_size, hidden_size, out_size, gate_rows
    void *w_ih            # (D*G*H, I): both directions stacked, so the input projection is one gemm
    void *bias            # (D*G*H) summed biases, or NULL
    void *w_hh[2]         # (G*H, P) per direction
    void *b_hn[2]         # (H) GRU's b_hn per direction, or NULL
    void *w_hr[2]         # (P, H) LSTM projection per direction, or NULL
    void *w_hh_pk[2]      # W_hh in panels for the fused step, or NULL (BLAS path only)
    void *w_hr_pk[2]      # W_hr in panels, with w_hh_pk and a projection
    void *w_ih_pk[2]      # W_ih of each direction in panels, with w_hh_pk: few-row input projections
    Py_ssize_t packed_rows   # steps with at most this many active rows take the panels, more take BLAS

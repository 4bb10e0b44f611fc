# ---- The thread budget and every tuning threshold of the engine, in one place -----------------------------------
# Each threshold is a field of `_tuning`, read by the engine only; `tuning()` lists them and `set_tuning(name=...)`
# is their one setter (benchmarks sweep them, tests force each path). The figures were measured with
# `fastrnn bench --sweep` (bench/README.md) and are explained in bench/FLOOR.md.

cdef struct Tuning:
    # Least work (flops of one direction's time loop) worth running the two directions of a bidirectional layer
    # at once on the worker thread: waking it and the final join cost ~10-50 us.
    double parallel_min_flops
    # Variable-length batches: the input projection skips the padded rows when at most this fraction of the T*B
    # rows is used, and runs one gemm over all rows otherwise (measured break-even 0.85-0.90).
    double skip_padded_fraction
    # Least recurrent work (flops: 2 * rows * gate rows * P) worth splitting one direction's steps by hidden units
    # across two threads, per step and per call. Per step: LSTM 192 at one row (3e5) gains 1.3-1.5x, LSTM/GRU 128
    # (1.3e5, 1.0e5) about break even (two barriers per step). Per call: waking the worker costs ~20 us, so a
    # streamed LSTM 256 step (5e5) loses, LSTM 512 (2.1e6) gains.
    double split_min_step_flops
    double split_min_call_flops
    # Largest W_hh (bytes) packed into panels for the fused kernel (load-time choice; above it, BLAS gemv).
    double packed_max_bytes
    # Most active rows a step runs through the panels before BLAS gemm wins (the rows crossover).
    double packed_max_rows


cdef Tuning _tuning = Tuning(parallel_min_flops=4e6, skip_padded_fraction=0.85, split_min_step_flops=2.5e5,
                             split_min_call_flops=1.5e6, packed_max_bytes=64 << 20, packed_max_rows=40)


def tuning():
    """The engine's tuning thresholds, {name: value} (see engine/tuning.pxi for what each decides)."""
    return dict(_tuning)


def set_tuning(**values):
    """Set thresholds by name (tests force a path, benchmarks sweep them); returns the old values of those names,
    so `set_tuning(**old)` restores them. packed_max_* are read when a Layer is built."""
    global _tuning
    current = dict(_tuning)
    unknown = sorted(set(values) - set(current))
    if unknown:
        raise ValueError(f"set_tuning: unknown threshold {unknown[0]!r}; expected one of {sorted(current)}")
    old = {name: current[name] for name in values}
    current.update({name: float(value) for name, value in values.items()})
    _tuning = current
    return old


# ---- threads ----
# Threads the engine may use (fastrnn.set_num_threads): with 2 or more, the two directions of a bidirectional layer
# run at once, or one direction's steps are split, one side on fastrnn's persistent worker (src_c/worker.c).
cdef int _num_threads = 1
# CPUs this process may run on, read whenever the budget is set: the split's barriers spin, so two threads sharing
# one CPU would wait out each other's time slices at every step.
cdef int _num_cpus = 1


def _cpus_allowed():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_num_threads(int n):
    """The engine's own thread budget (fastrnn.set_num_threads also caps the BLAS)."""
    global _num_threads, _num_cpus
    _num_threads = max(1, n)
    _num_cpus = _cpus_allowed()


def get_num_threads():
    return _num_threads


set_num_threads(_cpus_allowed())

# ---- The thread budget and every tuning threshold of the engine, in one place -----------------------------------
# Each threshold is a field of `_tuning`, read by the engine only; `tuning()` lists them and `set_tuning(name=...)`
# is their one setter (benchmarks sweep them, tests force each path). The figures were measured with
# `fastrnn bench --sweep` (bench/README.md) and are explained in bench/FLOOR.md.

cdef struct Tuning:
    # Least work (flops of one direction's time loop) worth running the two directions of a bidirectional layer
    # at once, one on the worker thread: its wake-up and the final wait cost ~10-50 us when it was asleep.
    double parallel_min_flops
    # Least work worth splitting one direction's steps by hidden units across the team, per step (flops: 2 * rows
    # * gate rows * P) and per call. Each step pays a phase hand-off (~0.2-0.5 us) for half the step's work.
    double split_min_step_flops
    double split_min_call_flops
    # Chunks per phase when a step is split: more balance the two threads better, fewer cost less hand-off.
    double split_chunks
    # A direction computes the input projection of a block of timesteps at once: at most block_bytes of gate rows
    # (bounds the scratch whatever T is, and leaves L2 to the weights: a 2 MB block beside 2-4 MB of weights
    # pushed them out to L3), unless that is fewer than block_rows rows (B x steps), each panel of W_ih then
    # serving too few rows. Same-process A/B against 2 MB blocks (20 rounds, T=100, 1 thread): float32 LSTM 512
    # B=64 -4%, GRU 512 B=64 -3%, LSTM 256 B=16 -5%; bfloat16 GRU 512 B=64 -8%, LSTM +2% (noise ~5%); at 2 threads
    # 0 to -4%; B=1 unchanged (T=100 stays one block).
    double block_bytes
    double block_rows
    # 1: bf16 products of 2+ rows on the tiers with VDPBF16PS widen the weights to float32 FMAs (src_c/products.h):
    # Intel runs VDPBF16PS at about half its FMA rate, AMD Zen 4/5 at twice. Default: by the CPU's vendor.
    double widen_bf16
    # Bytes of recurrent weights from which one thread alternates the order of its panels every step (timeloop.pxi
    # _sweep), in sweep_chunks calls: the step starts on the weights the previous one left in L2. Default: 3/4 of
    # a core's L2 (below, the weights stay in L2 anyway); measured on a 2 MB L2, B=1 T=100, 1 thread: GRU 512
    # float32 -25%, LSTM 512 float32 -29%, LSTM 1024 int8 -13%, LSTM 256 float32 (1 MB) +1%.
    double sweep_min_bytes
    double sweep_chunks
    # Bytes of a step's weights (W_ih and the recurrent ones) from which one thread runs a block of one step (every
    # streamed step) chunk by chunk, each chunk's input projection and recurrent step together, in the opposite
    # order on every other step (timeloop.pxi _fused_step): both matrices are swept, so W_ih + W_hh about L2's size
    # stay mostly in L2 from step to step instead of streaming from L3. Default: sweep_min_bytes.
    double fuse_min_bytes
    # 1: a split recurrent phase takes each core's half of the panels from the middle out on odd steps
    # (timeloop.pxi _split_order), so each core starts a step on what its L2 kept. Same-process A/B, 2 threads,
    # B=1 T=100: LSTM 512 float32 -21%, LSTM 1024 -6%, GRU 512 -6%; B=64 within noise.
    double split_sweep


def _l2_bytes():
    """One core's L2 cache in bytes, from Linux's sysfs; 1 MB where it does not say."""
    import glob
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(index + "/level") as level, open(index + "/size") as size:
                if level.read().strip() == "2":
                    text = size.read().strip().upper()
                    return int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20}[text[-1]] if text[-1] in "KM" else int(text)
        except (OSError, ValueError):
            continue
    return 1 << 20


cdef Tuning _tuning = Tuning(parallel_min_flops=4e6, split_min_step_flops=2.5e5, split_min_call_flops=4e5,
                             split_chunks=8, block_bytes=1 << 19, block_rows=128,
                             widen_bf16=frnn_cpu_widens_bf16(),
                             sweep_min_bytes=0.75 * _l2_bytes(), sweep_chunks=16,
                             fuse_min_bytes=0.75 * _l2_bytes(), split_sweep=1)
frnn_widen_bf16 = _tuning.widen_bf16 != 0  # the kernels read the C global; set_tuning keeps it in step


def tuning():
    """The engine's tuning thresholds, {name: value} (see engine/tuning.pxi for what each decides)."""
    return dict(_tuning)


def set_tuning(**values):
    """Set thresholds by name (tests force a path, benchmarks sweep them); returns the old values of those names,
    so `set_tuning(**old)` restores them."""
    global _tuning, frnn_widen_bf16
    current = dict(_tuning)
    unknown = sorted(set(values) - set(current))
    if unknown:
        raise ValueError(f"set_tuning: unknown threshold {unknown[0]!r}; expected one of {sorted(current)}")
    old = {name: current[name] for name in values}
    for name, value in values.items():
        value = float(value)
        if not 0 <= value < float("inf"):  # also refuses NaN: the engine turns these into sizes and counts
            raise ValueError(f"set_tuning: {name} must be a finite number >= 0, got {value!r}")
        current[name] = value
    _tuning = current
    frnn_widen_bf16 = _tuning.widen_bf16 != 0
    return old


# ---- threads ----
# Threads the engine may use (fastrnn.set_num_threads): with 2 or more, the two directions of a bidirectional layer
# run at once, or one direction's steps are split into chunks shared with fastrnn's persistent worker (src_c/worker.c).
cdef int _num_threads = 1
# CPUs this process may run on, read whenever the budget is set: with one CPU the worker could only take time slices
# from the caller.
cdef int _num_cpus = 1


def _cpus_allowed():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_num_threads(int n):
    """The engine's thread budget (what fastrnn.set_num_threads sets)."""
    global _num_threads, _num_cpus
    _num_threads = max(1, n)
    _num_cpus = _cpus_allowed()


def get_num_threads():
    return _num_threads


set_num_threads(_cpus_allowed())

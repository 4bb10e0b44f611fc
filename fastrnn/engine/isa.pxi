# ---- Which kernel tier runs: chosen once at import, capped by FASTRNN_ISA ---------------------------------------
# The tiers are compiled into src_c (one file each, see src_c/dispatch.c); the active one's table of kernels is
# `_K`, which every trampoline of kernels.pxi calls through.

cdef const frnn_kernels *_K = frnn_active_kernels()

TIERS = tuple(frnn_tier_name(t).decode() for t in range(frnn_tier_count()))


def supported_tiers():
    """The tiers this CPU and OS run, in order of preference (test-only tiers included)."""
    return tuple(name for t, name in enumerate(TIERS) if frnn_tier_supported(t))


def cpu_isa():
    """The tier chosen by default on this CPU: the best supported one that is not test-only."""
    return TIERS[_best_tier()]


def isa():
    """The tier the kernels use now."""
    return TIERS[frnn_active_tier()]


def set_isa(str name):
    """Use the kernels of tier `name` from now on (tests and benchmarks; users cap it with FASTRNN_ISA)."""
    global _K
    if name not in TIERS:
        raise ValueError(f"isa: expected one of {TIERS}, got {name!r}")
    if frnn_use_tier(TIERS.index(name)) != 0:
        raise ValueError(f"isa: this CPU cannot run {name!r} (it runs {supported_tiers()})")
    _K = frnn_active_kernels()


cdef int _best_tier():
    cdef int t, best = 0
    for t in range(frnn_tier_count()):
        if frnn_tier_selectable(t):
            best = t
    return best


def _init_isa():
    """The best selectable tier, or the one FASTRNN_ISA names if this CPU runs it (a cap, for users whose CPU
    reports what it runs badly, and for comparing tiers)."""
    requested = os.environ.get("FASTRNN_ISA", "").strip().lower()
    best = TIERS[_best_tier()]
    if requested and requested not in TIERS:
        warnings.warn(f"FASTRNN_ISA={requested!r} is not one of {TIERS}; using {best!r}", RuntimeWarning)
        requested = ""
    if requested and requested not in supported_tiers():
        warnings.warn(f"FASTRNN_ISA={requested!r}: this CPU cannot run it; using {best!r}", RuntimeWarning)
        requested = ""
    set_isa(requested or best)


_init_isa()

"""The memory a request needs against the memory this machine has, checked before anything is allocated or looped
over: an absurd size (`fastrnn.RNN(10, 10, num_layers=10**9)`, a batch whose output would take terabytes) is
refused at once, saying what was asked and what it needs, instead of running for minutes or failing deep inside.

The bound is the machine's RAM (or its cgroup's memory limit, when lower): what could never fit, not what happens to
be free now. Counts are lower bounds (the weights or outputs alone), so nothing that fits is refused.
"""
from __future__ import annotations

import functools
import os

# The cgroup limits (v2, v1) that cap a container's memory below the machine's RAM.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


@functools.lru_cache(maxsize=None)
def machine_memory():
    """Bytes of memory this process could ever get: the RAM, or its cgroup's limit when lower."""
    try:
        limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no sysconf: a bound no machine reaches (still no overflow)
        limit = 1 << 50
    for path in _CGROUP_LIMITS:
        try:
            with open(path) as file:
                text = file.read().strip()
        except OSError:
            continue
        if text.isdigit():
            limit = min(limit, int(text))
    return limit


def describe(nbytes):
    """1536 -> '1.5 KB' (powers of 1024, as `free -h` counts)."""
    value, unit = float(nbytes), "bytes"
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"):
        if value < 1024 or unit == "YB":
            break
        value /= 1024
    return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def check(nbytes, request, error=ValueError):
    """Raise `error` if `nbytes` is more than this machine's memory. request() -> (what was asked, what the bytes are
    for), the message's parts: formatted only for a refusal, since calls check their sizes every time."""
    limit = machine_memory()
    if nbytes > limit:
        what, purpose = request()
        raise error(f"{what}: needs at least {describe(nbytes)} {purpose}, more than this machine's memory "
                    f"({describe(limit)})")

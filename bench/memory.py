"""Memory a user pays, each case in a fresh process (peak resident set size over the process's size after import):

    python bench/memory.py load      # fastrnn.load of a 100 MB torch.save file (nn.LSTM(1024, 1024, 3 layers)),
                                     # then one call: peak / file size (the weights must be resident once)
    python bench/memory.py long      # LSTM(80, 256) on one sequence of T = 400,000 (B = 1): scratch beyond the
                                     # input and output arrays, fastrnn and torch (needs torch)

The model file is written once with torch (in its own process) to a temporary directory.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


def run(code, *args):
    """Run `code` in a fresh python; it prints the numbers this script reports."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


LOAD = """
import sys, resource, numpy as np
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import fastrnn
x = np.ones((10, 1, 1024), np.float32)
base = peak()
module = fastrnn.load(sys.argv[1])
after_load = peak()
module(x)
after_call = peak()
print(base, after_load, after_call)
"""

LONG = """
import sys, resource, numpy as np
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
engine = sys.argv[1]
T = 400_000
x = np.random.default_rng(0).standard_normal((T, 1, 80), dtype=np.float32)  # no float64 temporary in the peak
if engine == "torch":
    import torch
    torch.set_num_threads(1)
    m = torch.nn.LSTM(80, 256).eval()
    xt = torch.from_numpy(x)
    base = peak()
    with torch.inference_mode():
        out = m(xt)[0].numpy()
else:
    import fastrnn
    fastrnn.set_num_threads(1)
    m = fastrnn.LSTM(80, 256)
    m(x[:2])
    base = peak()
    out = m(x)[0]
print(base, peak(), out.nbytes / 2**20)
"""


def load_case():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lstm.pt")
        run("import sys, torch; torch.manual_seed(0); "
            "torch.save(torch.nn.LSTM(1024, 1024, num_layers=3).state_dict(), sys.argv[1])", path)
        size = os.path.getsize(path) / 2**20
        base, after_load, after_call = map(float, run(LOAD, path).split())
        print(f"file {size:.1f} MB; peak over import: after load {after_load - base:.1f} MB "
              f"({(after_load - base) / size:.2f}x the file), after the first call {after_call - base:.1f} MB "
              f"({(after_call - base) / size:.2f}x)")


def long_case():
    for engine in ("fastrnn", "torch"):
        base, peak, out_mb = map(float, run(LONG, engine).split())
        print(f"{engine}: peak over the input and model {peak - base:.1f} MB, of which the output array "
              f"{out_mb:.1f} MB: scratch beyond the output {peak - base - out_mb:.1f} MB")


if __name__ == "__main__":
    {"load": load_case, "long": long_case}[sys.argv[1] if len(sys.argv) > 1 else "load"]()

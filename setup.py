"""Build of fastrnn's compiled engine: fastrnn/_engine.pyx (+ its include files in fastrnn/engine/) and the C
kernels in src_c/ (one file per instruction-set tier, src_c/tier_*.c).

Environment switches (portable, optimised defaults):
  FASTRNN_NATIVE=1  add -march=native (faster on the build machine, not portable to older CPUs)
  FASTRNN_DEBUG=1   -O0 -g and Cython's bounds, wraparound, initialisation and None checks, to find an engine crash
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("FASTRNN_DEBUG") == "1"
compile_args = ["-O0", "-g"] if debug else ["-O3"]
if os.environ.get("FASTRNN_NATIVE") == "1":
    compile_args.append("-march=native")

# The only place the directives are set (no `# cython:` line in the sources may override them).
directives = {"language_level": 3, "boundscheck": debug, "wraparound": debug, "initializedcheck": debug,
              "nonecheck": debug, "cdivision": not debug}

extensions = [
    Extension(
        "fastrnn._engine",
        sources=["fastrnn/_engine.pyx", *sorted(glob.glob("src_c/*.c"))],
        include_dirs=["src_c", numpy.get_include()],
        # the kernel bodies and the engine's parts live in headers and include files: without these, editing one
        # rebuilds nothing
        depends=sorted(glob.glob("src_c/*.h") + glob.glob("fastrnn/engine/*.pxi"))
        + ["fastrnn/_kernels.pxd"],
        extra_compile_args=compile_args + ["-pthread"],
        extra_link_args=["-pthread"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("FASTRNN_DEBUG_BUILD", "1" if debug else "0")],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))

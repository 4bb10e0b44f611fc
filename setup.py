"""Build of fastrnn's compiled engine: fastrnn/_engine.pyx (+ its include files in fastrnn/engine/) and the C
kernels in src_c/ (one file per instruction-set tier, src_c/tier_*.c).

Environment switches (portable, optimised defaults):
  FASTRNN_NATIVE=1  add -march=native (faster on the build machine, not portable to older CPUs)
  FASTRNN_DEBUG=1   -O0 -g and Cython's bounds, wraparound, initialisation and None checks, to find an engine crash
  FASTRNN_SANITIZE=1  AddressSanitizer and UndefinedBehaviorSanitizer in the extension (compile and link), any
                    report fatal; combines with FASTRNN_DEBUG=1. Python itself is not instrumented, so run with
                    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 (.ci/sanitize)
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
link_args = []
if os.environ.get("FASTRNN_SANITIZE") == "1":
    sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args += sanitize
    link_args += sanitize

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
        extra_link_args=link_args + ["-pthread"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("FASTRNN_DEBUG_BUILD", "1" if debug else "0")],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))

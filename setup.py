"""Build of fastrnn's compiled engine: fastrnn/_engine.pyx + the C kernels in src_c/.

Environment switches (portable, optimised defaults):
  FASTRNN_NATIVE=1  add -march=native (faster on the build machine, not portable to older CPUs)
  FASTRNN_DEBUG=1   -O0 -g and Cython bounds/None checks, to find an engine crash
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

directives = {"language_level": 3}
if debug:
    directives.update(boundscheck=True, wraparound=True, initializedcheck=True, nonecheck=True)

extensions = [
    Extension(
        "fastrnn._engine",
        sources=["fastrnn/_engine.pyx", "src_c/kernels.c", "src_c/worker.c"],
        include_dirs=["src_c", numpy.get_include()],
        # the kernel bodies live in headers: without these, editing one rebuilds nothing
        depends=sorted(glob.glob("src_c/*.h")) + ["fastrnn/_kernels.pxd", "fastrnn/_blas.pxd"],
        extra_compile_args=compile_args + ["-pthread"],
        extra_link_args=["-pthread"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))

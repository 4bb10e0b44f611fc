# The one BLAS seam of fastrnn: row-major gemm/gemv over float and double, backed by scipy's bundled
# BLAS (scipy.linalg.cython_blas). Everything else in the engine thinks in C order; the operand swap
# that Fortran-order BLAS needs happens here and nowhere else. Swapping the BLAS means editing this file.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                      const floating *a, int lda, const floating *b, int ldb, floating beta,
                      floating *c, int ldc) noexcept nogil:
    """C (m x n, row stride ldc) = alpha * op(A) @ op(B) + beta * C, all row-major.

    Row-major C is column-major C^T = op(B)^T op(A)^T, so BLAS gets the operands swapped.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *>b, &ldb, <double *>a, &lda, &beta, c, &ldc)


cdef inline void gemv(int m, int k, floating alpha, const floating *a, int lda, const floating *x,
                      floating beta, floating *y) noexcept nogil:
    """y (m) = alpha * A (m x k, row-major, row stride lda) @ x + beta * y; x, y contiguous."""
    cdef char t = b'T'
    cdef int one = 1
    if floating is float:
        sgemv(&t, &k, &m, &alpha, <float *>a, &lda, <float *>x, &one, &beta, y, &one)
    else:
        dgemv(&t, &k, &m, &alpha, <double *>a, &lda, <double *>x, &one, &beta, y, &one)

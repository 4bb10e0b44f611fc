# ---- Raw pointers into the caller's arrays, checked so the engine can never read or write out of bounds ----

cdef extern from *:
    """
    static inline int frnn_mul_overflows(Py_ssize_t a, Py_ssize_t b, Py_ssize_t *product)
    {
        return __builtin_mul_overflow(a, b, product);
    }
    """
    bint frnn_mul_overflows(Py_ssize_t a, Py_ssize_t b, Py_ssize_t *product) nogil


cdef Py_ssize_t _size(Py_ssize_t a, Py_ssize_t b, str what) except -1:
    """a * b items of `what`: sizes come from callers, so no product of them may wrap around (a wrapped count
    would pass the checks below and let a kernel run past a buffer)."""
    cdef Py_ssize_t product
    if a < 0 or b < 0:
        raise ValueError(f"{what}: negative size {a} x {b}")
    if frnn_mul_overflows(a, b, &product):
        raise OverflowError(f"{what}: {a} x {b} items is more than any buffer can hold")
    return product


cdef inline bint _plain_array(object a, int typenum, bint writable):
    """Whether `a` is a numpy array the kernels can take as it stands: exactly ndarray, of typenum, C-contiguous,
    aligned, native byte order (and writeable, if asked)."""
    cdef cnp.ndarray arr
    if type(a) is not cnp.ndarray:
        return False
    arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr) and (not writable or cnp.PyArray_ISWRITEABLE(arr)))


cdef void *_data(object a, Py_ssize_t count, Py_ssize_t itemsize, bint writable, str name) except NULL:
    """Pointer to the data of a C-contiguous buffer holding at least `count` items of `itemsize`.

    The engine trusts the Python layer for shapes, but checks sizes here so a wrong call can never
    read or write out of bounds. The pointer stays valid while the caller holds the array.
    A well-formed numpy array is checked through its struct (tens of ns: this runs six times per
    Layer.forward, which matters for one-step streaming calls); anything else goes through the buffer
    protocol, which also words the errors."""
    if (_plain_array(a, cnp.NPY_FLOAT32 if itemsize == 4 else cnp.NPY_FLOAT64, writable)
            and cnp.PyArray_NBYTES(<cnp.ndarray>a) >= _size(count, itemsize, name)):
        return cnp.PyArray_DATA(<cnp.ndarray>a)
    return _buffer_data(a, count, itemsize, writable, name)


cdef void *_buffer_data(object a, Py_ssize_t count, Py_ssize_t itemsize, bint writable, str name) except NULL:
    cdef Py_buffer view
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)
    PyObject_GetBuffer(a, &view, flags)
    try:
        fmt = <bytes>view.format if view.format != NULL else b''
        fmt = fmt[len(fmt) - 1:]
        if view.itemsize != itemsize or fmt not in (b'f', b'd'):
            raise TypeError(f"engine buffer {name!r}: expected {itemsize}-byte floats, got format {fmt!r}")
        if view.len < _size(count, itemsize, name):
            raise ValueError(f"engine buffer {name!r}: holds {view.len // itemsize} items, needs {count}")
        return view.buf
    finally:
        PyBuffer_Release(&view)

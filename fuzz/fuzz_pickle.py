"""Fuzz target: fastrnn's pickle interpreter on its own, fed raw bytes (no zip, no CRC in the way).

Every storage the pickle names exists (a fake storage table accepts any well-formed persistent id, zip-style
with 5 fields or legacy-style with 6), so the fuzzer reaches the tensor checks, the checkpoint selection and
the copy out of the storage. Each storage is a zero buffer followed by an inaccessible page: a view that the
checks let through but that reaches past its storage segfaults instead of reading silently out of bounds.

    python fuzz/fuzz_pickle.py [libFuzzer flags] CORPUS_DIR...   (fuzz/run.py passes the right ones)
"""
import io
import sys

import atheris
from _instrumented import READER_MODULES

with atheris.instrument_imports(include=READER_MODULES):
    from fastrnn import _torchfile
    from fastrnn._torchfile import PARSE_ERRORS, LoadError, Tensor, TorchFile, _Reader, _StorageView, _Unpickler
    from fastrnn._readers import _select

import _harness

_MAX_MATERIALISED = 1 << 20  # bytes of storage given real (zero) bytes; larger ones are only checked


class FakeArchive:
    """Stands in for an open TorchFile: the same storage registry and copy-out code, storages made of zeros."""

    _register = TorchFile._register
    _legacy_storage = TorchFile._legacy_storage
    _view = TorchFile._view

    def __init__(self):
        self._storages = {}
        self._order = "<"

    def storage(self, pid, where):
        if isinstance(pid, tuple) and len(pid) == 6:
            return self._legacy_storage(pid, where)
        dtype, key, numel = _torchfile._storage_ref(pid, where, 5)
        return _StorageView(self._register(key, dtype, numel, where), 0, numel)


def one_input(data):
    archive = FakeArchive()
    try:
        root = _Unpickler(_Reader(io.BytesIO(data), 0, len(data), "fuzz"), archive.storage).load()
        tensors, _source = _select(root, lambda v: isinstance(v, Tensor), "fuzz")
        for tensor in tensors.values():
            storage = tensor.storage.storage
            if storage.nbytes <= _MAX_MATERIALISED:
                array = archive._view(_harness.guarded_zeros(storage.nbytes), tensor)
                if array.shape != tensor.shape or array.dtype != tensor.dtype:
                    raise _harness.Finding(f"{tensor}: got an array of {array.shape} {array.dtype}")
    except LoadError:
        raise
    except PARSE_ERRORS as exc:  # what TorchFile.__init__ and TorchFile.read turn into LoadError
        raise LoadError(str(exc)) from None


def test_one_input(data):
    _harness.check(data, lambda: one_input(data))


if __name__ == "__main__":
    _harness.start()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

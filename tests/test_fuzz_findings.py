"""Regression tests for what the fuzzers (fuzz/) found: each input is constructed here, small and explicit, and
each test failed before its fix. Every one must end in a LoadError that says what was wrong and where."""
from __future__ import annotations

import io
import struct
import zipfile

import pytest

import fastrnn
from fastrnn import LoadError


def npy(header, body=b""):
    """An .npy member with this header text (version 1.0, padded as numpy pads it)."""
    header = header + b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


def write_npz(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_npz_header_with_unbalanced_brackets(tmp_path):
    """numpy's header tokenizer raised tokenize.TokenError, which is not a ValueError (fuzz_npz, first minute)."""
    path = write_npz(tmp_path / "w.npz", {"w.npy": npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, }",
                                                     b"\0" * 8)})
    with pytest.raises(LoadError, match=r"w\.npz: unusable npz file \(TokenError"):
        fastrnn.load_state_dict(path)


def test_npz_member_that_is_not_npy(tmp_path):
    """np.load returns a member without the .npy magic as bytes, which reached the caller as a 'tensor'
    (AttributeError: 'bytes' object has no attribute 'shape'; fuzz_npz)."""
    path = write_npz(tmp_path / "w.npz", {"a.npy": npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                                                     b"\0" * 4), "b.npy": b"not an array"})
    with pytest.raises(LoadError, match=r"w\.npz: npz member b\.npy is not an \.npy array"):
        fastrnn.load_state_dict(path)


def test_npz_dtype_numpy_cannot_parse(tmp_path):
    """A descr such as '(2,f4' made numpy's dtype parser (ast.literal_eval) raise SyntaxError (fuzz_npz)."""
    path = write_npz(tmp_path / "w.npz", {"w.npy": npy(b"{'descr': '(2,f4', 'fortran_order': False, 'shape': (1,), }",
                                                     b"\0" * 8)})
    with pytest.raises(LoadError, match=r"w\.npz: unusable npz file \(SyntaxError"):
        fastrnn.load_state_dict(path)

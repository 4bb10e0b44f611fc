"""Regression tests for what the fuzzers (fuzz/) found: each input is constructed here, small and explicit, and
each test failed before its fix. Every one must end in a LoadError that says what was wrong and where."""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastrnn
from fastrnn import LoadError

from torchfile_fixtures import write_zip


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


def peak_allocation(action):
    """(exception raised by action, peak bytes traced while it ran); numpy's buffers are traced too."""
    tracemalloc.start()
    try:
        action()
    except Exception as exc:  # noqa: BLE001 -- returned for the caller to check
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, tracemalloc.get_traced_memory()[1]


def test_npz_member_declaring_more_bytes_than_the_file(tmp_path):
    """A stored member whose central-directory entry claims 812 MB in an 826-byte file: zipfile allocated the
    claimed size up front (fuzz_npz, caught by the allocation bound). Now refused before any read."""
    path = write_npz(tmp_path / "w.npz", {"w.npy": npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                                                     b"\0" * 4)})
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 20:central + 28] = struct.pack("<II", 812408680, 812408680)  # compressed and uncompressed sizes
    path.write_bytes(bytes(data))
    exc, peak = peak_allocation(lambda: fastrnn.load_state_dict(path))
    assert isinstance(exc, LoadError), exc
    assert "npz member w.npy declares 812408680 bytes at offset 0, past the end of the" in str(exc)
    assert peak < 16 << 20, peak


def test_npz_shape_larger_than_its_data(tmp_path):
    """An .npy header declaring 10**5 x 10**5 float64 over 8 bytes of data: numpy allocates the declared
    80 GB (np.ndarray(count)) before reading. Same class as above, constructed: refused from the header."""
    path = write_npz(tmp_path / "w.npz", {"w.npy": npy(b"{'descr': '<f8', 'fortran_order': False, "
                                                     b"'shape': (100000, 100000), }", b"\0" * 8)})
    exc, peak = peak_allocation(lambda: fastrnn.load_state_dict(path))
    assert isinstance(exc, LoadError), exc
    assert "npz member w.npy declares shape (100000, 100000) of float64 (80000000000 bytes) but holds 8 bytes" \
        in str(exc)
    assert peak < 16 << 20, peak


# -- torch files: found while writing the pickle target and its dictionary (constructed, not from a fuzz run) --
LEGACY_HEAD = (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
               + pickle.dumps({"protocol_version": 1001}, protocol=2))


def test_legacy_view_of_an_untyped_storage_counts_bytes(tmp_path):
    """A legacy view ('v', 12, 4) of an UntypedStorage starts 12 *bytes* in; the copy-out used 12 as an index
    in float32 elements, past the storage, and returned 0.0 read from outside it (a silent out-of-bounds read)."""
    main = (b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v3\n(("
            b"X\x07\x00\x00\x00storagectorch.storage\nUntypedStorage\nX\x04\x00\x00\x00rootX\x03\x00\x00\x00cpuK\x10"
            b"X\x01\x00\x00\x00vK\x0cK\x04\x87tQK\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)R"
            b"ctorch\nfloat32\ntRs.")
    path = tmp_path / "untyped_view.pt"
    path.write_bytes(LEGACY_HEAD + main + pickle.dumps(["root"], protocol=2) + struct.pack("<q", 16)
                     + np.arange(4, dtype=np.float32).tobytes())
    np.testing.assert_array_equal(fastrnn.load_state_dict(path)["w"], [3.0])


def doubled_tuple(levels):
    """Pickle ops leaving t on the stack, t = (1, 1) doubled `levels` times through the memo: 2**levels ints."""
    return b"K\x01K\x01\x86q\x00" + b"h\x00\x86q\x00" * levels


def load_error_within(seconds, path):
    """The LoadError message of load_state_dict(path), run in a child process that is killed (failing the test)
    after `seconds`: a hang inside hash() or repr() is C code, which no signal handler interrupts."""
    code = ("import sys, fastrnn\ntry:\n    fastrnn.load_state_dict(sys.argv[1])\n"
            "except fastrnn.LoadError as exc:\n    print(exc)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__)))
    try:
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              timeout=seconds, cwd=root)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"load_state_dict({path}) still running after {seconds} s (a hang)") from None
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_memo_doubled_tuple_in_a_message_is_bounded(tmp_path):
    """A 400-byte data.pkl whose tensor size is a tuple doubled 40 times by the memo: the error message's
    repr (cut to 200 characters only after being built) hung on 2**41 items."""
    pickle_bytes = (b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(("
                    b"X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00"
                    + doubled_tuple(40) + b"K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.")
    path = write_zip(tmp_path / "dag.pt", {"data.pkl": pickle_bytes, "version": b"3\n", "data/0": b"\0" * 16})
    assert "tensor size must be a tuple of non-negative ints, got ((((...)" in load_error_within(10, path)


def test_memo_doubled_tuple_as_a_dict_key_is_refused(tmp_path):
    """The same tuple as a dict key: hashing a tuple walks every item (2**41), so SETITEM hung."""
    pickle_bytes = b"\x80\x02}" + doubled_tuple(40) + b"Ns."
    path = write_zip(tmp_path / "key.pt", {"data.pkl": pickle_bytes, "version": b"3\n"})
    assert "dict key of type tuple; state_dicts and checkpoints use str or int keys" in load_error_within(10, path)


def test_expanded_view_is_held_to_the_output_limit(tmp_path):
    """One float expanded (stride 0) to 5 * 10**7 elements: 200 MB of results from a 1 KB file. The old limit
    (4x the file + 1 GiB) let it through; the bound of fuzz/_harness.py flags it. output_limit is 64 MiB + 4x."""
    from torchfile_fixtures import StorageRef, TensorRef, crafted_pt
    expanded = TensorRef(StorageRef("FloatStorage", "0", 1), 0, (5 * 10**7,), (0,))
    path = crafted_pt(tmp_path / "expanded.pt", {"w": expanded}, {"0": b"\0" * 4})
    exc, peak = peak_allocation(lambda: fastrnn.load_state_dict(path))
    assert isinstance(exc, LoadError) and "the tensors would need 200000000 bytes, implausible for a" in str(exc), exc
    assert peak < 16 << 20, peak


def test_deflated_record_is_held_to_the_output_limit(tmp_path):
    """A deflated data.pkl that inflates to 100 MB from a ~100 KB file (deflate gives ~1000:1): within the old
    ratio check, so it was inflated in full before the pickle was even looked at."""
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02\xff" + b"\0" * (100 << 20))  # refused at byte 2 anyway
        archive.writestr("archive/version", b"3\n")
    exc, peak = peak_allocation(lambda: fastrnn.load_state_dict(path))
    assert isinstance(exc, LoadError) and "record archive/data.pkl declares an impossible size" in str(exc), exc
    assert peak < 16 << 20, peak



def test_load_of_a_loaded_dict_with_weights_that_are_not_numbers(tmp_path):
    """An npz cell whose weight_hh has dtype '|V4' loads (load_state_dict is faithful to the file), but then
    load() of that dict raised TypeError from the mapping route where the path route raises LoadError (fuzz_npz,
    in the long run)."""
    real = npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", b"\0" * 16)
    void = npy(b"{'descr': '|V4', 'fortran_order': False, 'shape': (2, 2), }", b"\0" * 16)
    state = fastrnn.load_state_dict(write_npz(tmp_path / "w.npz", {"weight_ih.npy": real, "weight_hh.npy": void}))
    with pytest.raises(LoadError, match=r"state_dict\['weight_hh'\]: expected an array of real numbers, got dtype"):
        fastrnn.load(state)

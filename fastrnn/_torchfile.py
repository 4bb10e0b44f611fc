"""Reading `torch.save` files without torch and without running anything from the file: the containers.

Two containers (as torch/serialization.py writes them):
  * zip (torch >= 1.6): <folder>/data.pkl, <folder>/data/<key> (raw storage bytes), version, byteorder;
  * legacy stream (_use_new_zipfile_serialization=False): magic, protocol, sys_info, main pickle, storage
    keys, then per storage an int64 element count and the raw little-endian bytes.

The pickles are run by `_Unpickler` (fastrnn._pickle_vm), a small opcode interpreter of our own: it knows the
opcodes a state_dict uses and maps the handful of globals a state_dict names (OrderedDict, torch's
tensor/parameter rebuild functions, storage classes, dtypes, torch.Size) to inert stand-ins
(fastrnn._pickle_globals). Every other global is refused by name at the moment it is referenced; nothing
named in the file is ever imported, looked up or called.

Tensors come out of the pickle as `Tensor` placeholders (storage, offset, shape, stride), validated against
their storage before any data is touched; `TorchFile.read` turns chosen placeholders into numpy arrays,
reading each storage once through a memory map and copying every tensor straight out of it.
"""
from __future__ import annotations

import io
import math
import mmap
import os
import struct
import zipfile
import zlib

import numpy as np

from fastrnn._errors import PARSE_ERRORS, LoadError, _shown
from fastrnn._pickle_globals import Tensor  # noqa: F401  (imported from here by _readers and fuzz/)
from fastrnn._pickle_globals import Storage, _is_int, _storage_ref, _StorageView, raw_dtype
from fastrnn._pickle_vm import _Reader, _Unpickler

LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."


def output_limit(file_size):
    """The most bytes a reader may allocate for what a file declares (tensors, uncompressed records): 64 MiB
    plus 4x the file's size. Real weights need about 1x; the slack covers expanded (stride-0) buffers and
    compressed records. Anything declaring more is refused before allocating, so a few bytes of header cannot
    ask for gigabytes."""
    return (64 << 20) + 4 * file_size


class TorchFile:
    """An open torch.save file: `root` is the unpickled object graph with `Tensor` placeholders; `read`
    turns placeholders into numpy arrays. Use as a context manager."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = open(self.path, "rb")
        self._zip = self._map = None
        self._storages = {}
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            head = self._file.read(len(LEGACY_MAGIC))
            if head.startswith(b"PK\x03\x04"):
                self._open_zip()
            elif head == LEGACY_MAGIC:
                self._open_legacy()
            else:
                raise LoadError(f"{self.path}: not a torch.save file")
        except LoadError:
            self.close()
            raise
        except PARSE_ERRORS as exc:
            self.close()
            raise LoadError(f"{self.path}: corrupt torch file ({type(exc).__name__}: {exc})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if self._zip is not None:
            self._zip.close()
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # an array still views it (only after an error); it closes when that goes
                pass
        self._file.close()

    # -- zip container ---------------------------------------------------------------------------------------
    def _open_zip(self):
        self._zip = zipfile.ZipFile(self._file)
        infos = {info.filename: info for info in self._zip.infolist()}
        folders = {name.split("/", 1)[0] for name in infos}
        if len(folders) != 1 or not all("/" in name for name in infos):
            raise LoadError(f"{self.path}: zip records are not all in one top-level folder, so this is not a "
                            f"torch.save file")
        folder = folders.pop()
        self._records = {name[len(folder) + 1:]: info for name, info in infos.items()}
        self._folder = folder
        if "constants.pkl" in self._records or any(name.startswith("code/") for name in self._records):
            raise LoadError(f"{self.path}: a TorchScript archive (torch.jit.save); save the module's "
                            f"state_dict() with torch.save instead")
        version = self._small_record(".data/version") or self._small_record("version")
        if version is None:
            raise LoadError(f"{self.path}: missing record {folder}/version")
        if not version.strip().isdigit() or not 1 <= int(version) <= 10:
            raise LoadError(f"{self.path}: unsupported serialization version {version.strip()[:20]!r}")
        byteorder = self._small_record("byteorder")
        byteorder = "little" if byteorder is None else byteorder.strip()
        if byteorder not in ("little", "big"):
            raise LoadError(f"{self.path}: invalid byteorder record {byteorder[:20]!r}")
        self._order = "<" if byteorder == "little" else ">"
        if "data.pkl" not in self._records:
            raise LoadError(f"{self.path}: missing record {folder}/data.pkl")
        pickle = self._member_bytes(self._records["data.pkl"])
        where = f"{self.path}:{folder}/data.pkl"
        self.root = _Unpickler(_Reader(io.BytesIO(pickle), 0, len(pickle), where), self._zip_storage).load()

    def _small_record(self, name):
        info = self._records.get(name)
        if info is None:
            return None
        if info.file_size > 64:
            raise LoadError(f"{self.path}: record {self._folder}/{name} is {info.file_size} bytes, expected a few")
        return self._member_bytes(info).decode("ascii")

    def _member_bytes(self, info):
        """A whole record via zipfile (handles deflate, checks the CRC), sizes bounded first."""
        # deflate expands at most ~1032x; anything claiming more is corrupt, and must not drive an allocation
        if (info.file_size > 1100 * info.compress_size + 1024 or info.compress_size > self.size
                or info.file_size > output_limit(self.size)):
            raise LoadError(f"{self.path}: record {info.filename} declares an impossible size")
        data = self._zip.read(info)
        if len(data) != info.file_size:
            raise LoadError(f"{self.path}: record {info.filename} is truncated")
        return data

    def _zip_storage(self, pid, where):
        dtype, key, numel = _storage_ref(pid, where, 5)
        storage = self._register(key, dtype, numel, where)
        if storage.record is None:
            info = self._records.get(f"data/{key}")
            if info is None:
                raise LoadError(f"{where}: missing storage record {self._folder}/data/{key}")
            if info.file_size != storage.nbytes:
                raise LoadError(f"{self.path}: record {info.filename} holds {info.file_size} bytes but the pickle "
                                f"declares {numel} elements ({storage.nbytes} bytes)")
            storage.record = info
        return _StorageView(storage, 0, numel)

    def _register(self, key, dtype, numel, where):
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = Storage(key, dtype, numel)
        elif storage.dtype != dtype or storage.numel != numel:
            raise LoadError(f"{where}: storage {key!r} is declared twice with different dtype or size")
        return storage

    def _storage_bytes(self, storage):
        """(raw uint8 bytes of a storage, file offset if they are memory-mapped else None)."""
        if isinstance(storage.record, int):  # legacy: an offset in the file
            return self._mapped(storage.record, storage.nbytes, f"storage {storage.key!r}"), storage.record
        info = storage.record
        if info.compress_type != zipfile.ZIP_STORED:
            return np.frombuffer(self._member_bytes(info), dtype=np.uint8), None
        if info.flag_bits & 0x1:
            raise LoadError(f"{self.path}: record {info.filename} is encrypted")
        # Payload offset from the local header (whose own size fields are zero in torch files; the central
        # directory's are the real ones).
        self._file.seek(info.header_offset)
        local = self._file.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise LoadError(f"{self.path}: bad local header for record {info.filename}")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        raw = self._mapped(start, info.file_size, f"record {info.filename}")
        if zlib.crc32(raw) != info.CRC:
            raise LoadError(f"{self.path}: record {info.filename} fails its CRC check (the file is corrupt)")
        return raw, start

    def _mapped(self, start, nbytes, what):
        """A read-only view of file bytes [start, start + nbytes) through a memory map: no read buffer, and
        the results are copied straight out of the page cache."""
        if start < 0 or start + nbytes > self.size:
            raise LoadError(f"{self.path}: {what} ({nbytes} bytes at offset {start}) runs past the end of the file")
        if self._map is None:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        return np.frombuffer(self._map, dtype=np.uint8, count=nbytes, offset=start)

    def _release(self, start, nbytes):
        """Drop mapped pages we are done with from this process (they stay in the page cache), so the
        peak memory is the results, not results + file."""
        if self._map is not None and nbytes and hasattr(self._map, "madvise"):
            first = start // mmap.PAGESIZE * mmap.PAGESIZE
            self._map.madvise(mmap.MADV_DONTNEED, first, min(start + nbytes, self.size) - first)

    # -- legacy stream ---------------------------------------------------------------------------------------
    def _open_legacy(self):
        self._order = "<"  # legacy storages are always little-endian
        reader = _Reader(self._file, len(LEGACY_MAGIC), self.size, f"{self.path} (legacy torch.save format)")
        protocol = _Unpickler(reader).load()
        if protocol != 1001 or not _is_int(protocol):
            raise LoadError(f"{self.path}: unsupported legacy protocol version {_shown(protocol)}")
        if not isinstance(_Unpickler(reader).load(), dict):
            raise LoadError(f"{self.path}: malformed legacy header (sys_info is not a dict)")
        self.root = _Unpickler(reader, self._legacy_storage).load()
        keys = _Unpickler(reader).load()
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise LoadError(f"{self.path}: malformed legacy storage key list")
        pos = reader.pos
        for key in keys:
            storage = self._storages.get(key)
            if storage is None:
                raise LoadError(f"{self.path}: storage {_shown(key)} at byte {pos} is not referenced by the pickle")
            header = self._read_bytes(pos, 8, f"storage {key!r} header")
            (count,) = struct.unpack("<q", header)
            if count != storage.numel:
                raise LoadError(f"{self.path}: storage {key!r} at byte {pos} holds {count} elements but the pickle "
                                f"declares {storage.numel}")
            storage.record = pos + 8
            pos += 8 + storage.nbytes
            if pos > self.size:
                raise LoadError(f"{self.path}: storage {key!r} runs past the end of the file (truncated)")
        for storage in self._storages.values():
            if storage.record is None:
                raise LoadError(f"{self.path}: missing storage record for key {storage.key!r}")

    def _read_bytes(self, start, n, what):
        self._file.seek(start)
        data = self._file.read(n)
        if len(data) != n:
            raise LoadError(f"{self.path}: {what} at byte {start} is truncated")
        return data

    def _legacy_storage(self, pid, where):
        dtype, key, numel = _storage_ref(pid, where, 6)
        storage = self._register(key, dtype, numel, where)
        view = pid[5]
        if view is None:
            return _StorageView(storage, 0, numel)
        # old files: (view_key, offset, view_numel), a sub-range of the root storage
        if (not isinstance(view, tuple) or len(view) != 3 or not isinstance(view[0], str)
                or not all(_is_int(v) and v >= 0 for v in view[1:]) or view[1] + view[2] > numel):
            raise LoadError(f"{where}: malformed storage view {_shown(view)} of storage {key!r}")
        return _StorageView(storage, view[1], view[2])

    # -- tensors -----------------------------------------------------------------------------------------------
    def read(self, tensors, max_bytes=None):
        """numpy arrays for `tensors` (placeholders from `root`), each its own array: every storage is mapped
        once, its tensors copied out, and its pages released before the next one, so memory stays near the
        size of the results."""
        wanted = sum(math.prod(t.shape) * t.dtype.itemsize for t in tensors)
        limit = output_limit(self.size) if max_bytes is None else max_bytes
        if wanted > limit:
            raise LoadError(f"{self.path}: the tensors would need {wanted} bytes, implausible for a "
                            f"{self.size}-byte file (expanded views?)")
        groups = {}
        for index, tensor in enumerate(tensors):
            groups.setdefault(id(tensor.storage.storage), []).append(index)
        out = [None] * len(tensors)
        try:
            for indices in groups.values():
                storage = tensors[indices[0]].storage.storage
                raw, mapped_at = self._storage_bytes(storage)
                for index in indices:
                    out[index] = self._view(raw, tensors[index])
                del raw
                if mapped_at is not None:
                    self._release(mapped_at, storage.nbytes)
        except PARSE_ERRORS as exc:
            raise LoadError(f"{self.path}: corrupt torch file ({type(exc).__name__}: {exc})") from None
        return out

    def _view(self, raw, tensor):
        """The tensor as a new C-contiguous array copied out of its storage's bytes (never aliasing them)."""
        dtype = raw_dtype(tensor.dtype_name).newbyteorder(self._order)
        if math.prod(tensor.shape) == 0:
            return np.empty(tensor.shape, dtype=tensor.dtype)
        # In bytes: a legacy view's start counts elements of its storage (bytes for an UntypedStorage), the
        # tensor's offset elements of its own dtype. np.ndarray checks the view against the buffer once more.
        first = tensor.storage.start * tensor.storage.storage.itemsize + tensor.offset * dtype.itemsize
        view = np.ndarray(tensor.shape, dtype, buffer=raw, offset=first,
                          strides=tuple(s * dtype.itemsize for s in tensor.stride))
        if tensor.dtype_name == "bfloat16":
            return (view.astype(np.uint32) << 16).view(np.float32)
        return np.array(view, dtype=dtype.newbyteorder("="), order="C")

"""Builders of torch.save-format files for the loading tests.

Real files come from torch.save itself. Crafted ones (views that do not fit, big-endian records, deflated or
missing records, hostile pickles) are written here: the pickle through a pickle.Pickler that emits torch's own
rebuild calls and persistent ids, the zip through zipfile, so torch.load can serve as the oracle for them too.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile


class StorageRef:
    """A storage in a crafted pickle: torch storage class name, record key, element count."""

    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class TensorRef:
    """A `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict(), *extra)` call."""

    def __init__(self, storage, offset, size, stride, *extra):
        self.storage, self.offset, self.size, self.stride, self.extra = storage, offset, size, stride, extra


def crafted_pickle(obj):
    import torch

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, StorageRef):
                return ("storage", getattr(torch, value.cls), value.key, "cpu", value.numel)
            return None

        def reducer_override(self, value):
            if isinstance(value, TensorRef):
                args = (value.storage, value.offset, tuple(value.size), tuple(value.stride), False,
                        collections.OrderedDict()) + value.extra
                return torch._utils._rebuild_tensor_v2, args
            return NotImplemented

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def write_zip(path, records, folder="archive", compression=zipfile.ZIP_STORED):
    """A torch-style zip: every record under one folder; `records` maps relative names to bytes."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in records.items():
            archive.writestr(f"{folder}/{name}", data)
    return path


def crafted_pt(path, obj, data, byteorder="little", pickle_bytes=None, extra=None):
    """A zip torch file holding `obj` (with StorageRef/TensorRef inside) and `data` {key: raw bytes}."""
    records = {"data.pkl": crafted_pickle(obj) if pickle_bytes is None else pickle_bytes,
               "byteorder": byteorder.encode(), "version": b"3\n"}
    records.update({f"data/{key}": raw for key, raw in data.items()})
    records.update(extra or {})
    return write_zip(path, records)


def read_records(path):
    """{relative name: bytes} and the folder of a torch zip file."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        folder = names[0].split("/", 1)[0]
        return {name.split("/", 1)[1]: archive.read(name) for name in names}, folder


def rezip(src, dst, replace=None, drop=(), compression=zipfile.ZIP_STORED):
    """Copy a torch zip with some records replaced or dropped (or every record deflated)."""
    records, folder = read_records(src)
    records.update(replace or {})
    for name in drop:
        del records[name]
    return write_zip(dst, records, folder, compression)


class Payload:
    """Unpickling this runs a shell command: the classic pickle attack."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def legacy_with(path, sys_info_pickle=None, main_pickle=None):
    """A legacy-format stream whose sys_info or main pickle is replaced by the given bytes."""
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    version = pickle.dumps(1001, protocol=2)
    sys_info = sys_info_pickle or pickle.dumps({"protocol_version": 1001, "little_endian": True,
                                                "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2)
    main = main_pickle or pickle.dumps({}, protocol=2)
    with open(path, "wb") as file:
        file.write(magic + version + sys_info + main + pickle.dumps([], protocol=2))
    return path

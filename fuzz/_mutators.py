"""Structure-aware mutators: they mutate what lies inside a container and rebuild the container around it, so
the fuzzer explores pickles, npy headers and safetensors headers instead of dying on a CRC or a length prefix.

Each returns a complete file (corpus entries and crash reproducers are ordinary files). A small share of
mutations go to the raw bytes, so the container code (zip directories, local headers, length fields) is fuzzed
too. `atheris.Mutate` is libFuzzer's own mutator; it uses the -dict tokens.
"""
from __future__ import annotations

import io
import random
import struct
import zipfile

import atheris

from fastrnn._torchfile import LEGACY_MAGIC

_RAW_SHARE = 0.1


def _zip_members(data):
    """[(name, bytes, compress_type)] of a readable zip, or None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(info.filename, archive.read(info), info.compress_type) for info in archive.infolist()]
    except Exception:  # noqa: BLE001 -- any unreadable zip: mutate its raw bytes instead
        return None


def _write_zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, compression in members:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def _mutate_member(name, data, rng, max_size):
    if name.endswith(".npy") and data.startswith(b"\x93NUMPY") and rng.random() < 0.7:
        return _mutate_npy_header(data, rng, max_size)
    return atheris.Mutate(data, min(max_size, 2 * len(data) + 64))


def _mutate_npy_header(data, rng, max_size):
    """Mutate the header text of an .npy member; usually fix its length field so numpy reads the dict."""
    major = data[6] if len(data) > 6 else 1
    size_format = "<H" if major == 1 else "<I"
    start = 8 + struct.calcsize(size_format)
    if len(data) < start:
        return atheris.Mutate(data, max_size)
    (length,) = struct.unpack(size_format, data[8:start])
    header, body = data[start:start + length], data[start + length:]
    header = atheris.Mutate(header, max(2 * len(header), 64))
    if rng.random() < 0.8 and len(header) < (1 << (8 * struct.calcsize(size_format))):
        length = len(header)
    return data[:8] + struct.pack(size_format, length) + header + body


def mutate_zip(data, max_size, seed):
    """A torch.save zip or an npz: mutate one member (mostly data.pkl or an npy header), or the member list."""
    rng = random.Random(seed)
    members = _zip_members(data) if rng.random() >= _RAW_SHARE else None
    if not members:
        return atheris.Mutate(data, max_size)
    index = rng.randrange(len(members))
    pickles = [i for i, (name, _, _) in enumerate(members) if name.endswith(".pkl")]
    if pickles and rng.random() < 0.5:
        index = rng.choice(pickles)
    name, payload, compression = members[index]
    action = rng.random()
    if action < 0.8:
        members[index] = (name, _mutate_member(name, payload, rng, max_size), compression)
    elif action < 0.85:
        del members[index]
    elif action < 0.9:
        members[index] = (atheris.Mutate(name.encode(), 128).decode("utf-8", "replace") or "x", payload, compression)
    elif action < 0.95:
        members.append((f"{name.rsplit('/', 1)[0]}/{rng.randrange(20)}", payload, compression))
    else:
        toggled = zipfile.ZIP_STORED if compression == zipfile.ZIP_DEFLATED else zipfile.ZIP_DEFLATED
        members[index] = (name, payload, toggled)
    out = _write_zip(members)
    return out if len(out) <= max_size else atheris.Mutate(data, max_size)


def mutate_legacy(data, max_size, seed):
    """A legacy torch.save stream: keep the fixed magic (checked byte for byte) and mutate what follows."""
    rng = random.Random(seed)
    if not data.startswith(LEGACY_MAGIC) or rng.random() < _RAW_SHARE:
        return atheris.Mutate(data, max_size)
    return LEGACY_MAGIC + atheris.Mutate(data[len(LEGACY_MAGIC):], max_size - len(LEGACY_MAGIC))


def mutate_safetensors(data, max_size, seed):
    """A safetensors file: mutate the JSON header (keeping the length prefix right) or the data after it."""
    rng = random.Random(seed)
    if len(data) < 8 or rng.random() < _RAW_SHARE:
        return atheris.Mutate(data, max_size)
    (length,) = struct.unpack("<Q", data[:8])
    header, body = data[8:8 + length], data[8 + length:]
    if rng.random() < 0.8:
        header = atheris.Mutate(header, max(max_size - 8 - len(body), 2))
    else:
        body = atheris.Mutate(body, max(max_size - 8 - len(header), 0))
    out = struct.pack("<Q", len(header)) + header + body
    return out if len(out) <= max_size else atheris.Mutate(data, max_size)

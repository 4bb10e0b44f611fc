"""LoadError, the one error for a file (or mapping) that cannot be loaded, and how values from a file are shown
in its messages."""
from __future__ import annotations

import reprlib
import struct
import zipfile
import zlib


class LoadError(ValueError):
    """A file (or mapping) that cannot be loaded: the message says what was wrong and where."""


# Everything a hostile or damaged file can make the standard library raise while we parse it.
PARSE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, EOFError, UnicodeDecodeError,
                OverflowError, MemoryError, ValueError, KeyError, IndexError, TypeError, NotImplementedError,
                RuntimeError, OSError, zlib.error)


# For values from a file in messages: the memo lets ~5 pickle bytes double a tuple ((t, t), then again), so a
# plain repr of a 400-byte pickle can need 2**40 items. reprlib stops at a few levels and items.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 80, 80


def _shown(value):
    return _SHORT.repr(value)

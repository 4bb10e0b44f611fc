"""A pickle interpreter of our own, for the pickles in torch.save files: it never runs code from a file.

`_Unpickler` knows only the opcodes torch.save uses for tensors and state_dicts (protocol 2, plus protocol 4's
string, memo, frame and STACK_GLOBAL opcodes); any other opcode is refused. Globals resolve through the
allowlist of fastrnn._pickle_globals, REDUCE calls only what that allowlist builds, and persistent ids
(storages) go to the caller's `persistent_load`. `_Reader` bounds every read by the end of the pickle.
"""
from __future__ import annotations

import struct
from collections import OrderedDict

from fastrnn._errors import LoadError
from fastrnn._pickle_globals import _key, _reduce, _resolve_global

_MAX_LINE = 1024  # GLOBAL module/name lines
_MAX_MARKS = 100_000


class _Reader:
    """Bounded sequential reads from a file object between `pos` and `end`; short data is a LoadError."""

    def __init__(self, file, pos, end, where):
        self.file, self.pos, self.end, self.where = file, pos, end, where
        file.seek(pos)

    def read(self, n):
        if n > self.end - self.pos:
            raise LoadError(f"{self.where}: truncated at byte {self.pos} (needs {n} more bytes)")
        data = self.file.read(n)
        if len(data) != n:
            raise LoadError(f"{self.where}: truncated at byte {self.pos}")
        self.pos += n
        return data

    def readline(self):
        start, chars = self.pos, []
        while True:
            byte = self.read(1)
            if byte == b"\n":
                return b"".join(chars).decode("utf-8")
            chars.append(byte)
            if len(chars) > _MAX_LINE:
                raise LoadError(f"{self.where}: over-long text line at byte {start}")


class _Unpickler:
    """Runs one pickle with only the opcodes torch.save uses (protocol 2, plus protocol 4's string, memo,
    frame and STACK_GLOBAL opcodes, which resolve globals through the same allowlist)."""

    def __init__(self, reader, persistent_load=None):
        self.reader, self.persistent_load = reader, persistent_load
        self.where = reader.where

    def load(self):
        r = self.reader
        stack, marks, memo = [], [], {}

        def pop():
            if not stack:
                raise LoadError(f"{here}: pickle stack underflow")
            return stack.pop()

        def pop_mark():
            nonlocal stack
            if not marks:
                raise LoadError(f"{here}: pickle MARK missing")
            items, stack = stack, marks.pop()
            return items

        def top(kind, what):
            if not stack or not isinstance(stack[-1], kind):
                raise LoadError(f"{here}: {what} on {type(stack[-1]).__name__ if stack else 'nothing'}")
            return stack[-1]

        unpack = struct.unpack
        while True:
            here = f"{self.where} (pickle byte {r.pos})"
            op = r.read(1)
            if op == b".":  # STOP
                if len(stack) != 1 or marks:
                    raise LoadError(f"{here}: malformed pickle (STOP with {len(stack)} items on the stack)")
                return stack[0]
            if op == b"\x80":  # PROTO
                if r.read(1)[0] not in (2, 3, 4, 5):
                    raise LoadError(f"{here}: unsupported pickle protocol")
            elif op == b"\x95":  # FRAME: a length hint only
                r.read(8)
            elif op == b"(":  # MARK
                if len(marks) >= _MAX_MARKS:
                    raise LoadError(f"{here}: pickle nested too deeply")
                marks.append(stack)
                stack = []
            elif op == b"c":  # GLOBAL
                module = r.readline()
                stack.append(_resolve_global(module, r.readline(), here))
            elif op == b"\x93":  # STACK_GLOBAL
                name, module = pop(), pop()
                if not isinstance(module, str) or not isinstance(name, str):
                    raise LoadError(f"{here}: STACK_GLOBAL needs two strings")
                stack.append(_resolve_global(module, name, here))
            elif op == b"R":  # REDUCE
                args = pop()
                stack.append(_reduce(pop(), args, here))
            elif op == b"b":  # BUILD: only OrderedDict's attribute dict (state_dict()._metadata), which we drop
                state = pop()
                if not isinstance(top(dict, "BUILD"), OrderedDict) or not isinstance(state, dict):
                    raise LoadError(f"{here}: BUILD is only allowed on an OrderedDict with a dict state")
            elif op == b"Q":  # BINPERSID
                pid = pop()
                if self.persistent_load is None:
                    raise LoadError(f"{here}: unexpected storage reference")
                stack.append(self.persistent_load(pid, here))
            elif op == b"}":
                stack.append({})
            elif op == b"]":
                stack.append([])
            elif op == b")":
                stack.append(())
            elif op == b"t":
                items = tuple(pop_mark())  # before naming `stack`: pop_mark rebinds it
                stack.append(items)
            elif op in (b"\x85", b"\x86", b"\x87"):  # TUPLE1/2/3
                n = op[0] - 0x84
                if len(stack) < n:
                    raise LoadError(f"{here}: pickle stack underflow")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif op == b"s":  # SETITEM
                value, key = pop(), pop()
                top(dict, "SETITEM")[_key(key, here)] = value
            elif op == b"u":  # SETITEMS
                items = pop_mark()
                target = top(dict, "SETITEMS")
                if len(items) % 2:
                    raise LoadError(f"{here}: SETITEMS with an odd number of items")
                for i in range(0, len(items), 2):
                    target[_key(items[i], here)] = items[i + 1]
            elif op == b"a":  # APPEND
                value = pop()
                top(list, "APPEND").append(value)
            elif op == b"e":  # APPENDS
                items = pop_mark()
                top(list, "APPENDS").extend(items)
            elif op == b"X":
                stack.append(r.read(unpack("<I", r.read(4))[0]).decode("utf-8", "surrogatepass"))
            elif op == b"\x8c":  # SHORT_BINUNICODE
                stack.append(r.read(r.read(1)[0]).decode("utf-8", "surrogatepass"))
            elif op == b"U":  # SHORT_BINSTRING (Python 2 str)
                stack.append(r.read(r.read(1)[0]).decode("ascii"))
            elif op == b"J":
                stack.append(unpack("<i", r.read(4))[0])
            elif op == b"K":
                stack.append(r.read(1)[0])
            elif op == b"M":
                stack.append(unpack("<H", r.read(2))[0])
            elif op == b"\x8a":  # LONG1
                stack.append(int.from_bytes(r.read(r.read(1)[0]), "little", signed=True))
            elif op == b"G":
                stack.append(unpack(">d", r.read(8))[0])
            elif op == b"\x88":
                stack.append(True)
            elif op == b"\x89":
                stack.append(False)
            elif op == b"N":
                stack.append(None)
            elif op in (b"q", b"r", b"\x94"):  # BINPUT, LONG_BINPUT, MEMOIZE
                index = r.read(1)[0] if op == b"q" else unpack("<I", r.read(4))[0] if op == b"r" else len(memo)
                if not stack:
                    raise LoadError(f"{here}: memo store from an empty stack")
                memo[index] = stack[-1]
            elif op in (b"h", b"j"):  # BINGET, LONG_BINGET
                index = r.read(1)[0] if op == b"h" else unpack("<I", r.read(4))[0]
                if index not in memo:
                    raise LoadError(f"{here}: memo entry {index} used before it was stored")
                stack.append(memo[index])
            else:
                raise LoadError(f"{here}: unsupported pickle opcode {op!r}; fastrnn reads only the opcodes "
                                f"torch.save uses for tensors and state_dicts")

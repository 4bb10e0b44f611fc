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
    frame and STACK_GLOBAL opcodes, which resolve globals through the same allowlist).

    One handler per opcode, found by a dict lookup in `_DISPATCH`. The state of a run: `stack` (the items
    since the last MARK), `marks` (the stacks MARK set aside), `memo`, and `start`, the pickle byte where the
    current opcode begins, which every message names (`here`)."""

    def __init__(self, reader, persistent_load=None):
        self.reader, self.persistent_load = reader, persistent_load
        self.where = reader.where

    def load(self):
        reader, dispatch = self.reader, _DISPATCH
        self.stack, self.marks, self.memo = [], [], {}
        while True:
            self.start = reader.pos
            op = reader.read(1)
            if op == b".":  # STOP
                return self.op_stop()
            handler = dispatch.get(op)
            if handler is None:
                raise LoadError(f"{self.here}: unsupported pickle opcode {op!r}; fastrnn reads only the opcodes "
                                f"torch.save uses for tensors and state_dicts")
            handler(self)

    @property
    def here(self):
        """Where the current opcode begins, for messages (built only when it is used)."""
        return f"{self.where} (pickle byte {self.start})"

    # -- the stack -------------------------------------------------------------------------------------------
    def pop(self):
        if not self.stack:
            raise LoadError(f"{self.here}: pickle stack underflow")
        return self.stack.pop()

    def pop_mark(self):
        """The items pushed since the last MARK; the stack MARK set aside is the stack again."""
        if not self.marks:
            raise LoadError(f"{self.here}: pickle MARK missing")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def top(self, kind, what):
        stack = self.stack
        if not stack or not isinstance(stack[-1], kind):
            raise LoadError(f"{self.here}: {what} on {type(stack[-1]).__name__ if stack else 'nothing'}")
        return stack[-1]

    # -- framing ---------------------------------------------------------------------------------------------
    def op_stop(self):
        if len(self.stack) != 1 or self.marks:
            raise LoadError(f"{self.here}: malformed pickle (STOP with {len(self.stack)} items on the stack)")
        return self.stack[0]

    def op_proto(self):
        if self.reader.read(1)[0] not in (2, 3, 4, 5):
            raise LoadError(f"{self.here}: unsupported pickle protocol")

    def op_frame(self):  # a length hint only
        self.reader.read(8)

    def op_mark(self):
        if len(self.marks) >= _MAX_MARKS:
            raise LoadError(f"{self.here}: pickle nested too deeply")
        self.marks.append(self.stack)
        self.stack = []

    # -- globals, calls and storages: only what fastrnn._pickle_globals allows --------------------------------
    def op_global(self):
        module = self.reader.readline()
        self.stack.append(_resolve_global(module, self.reader.readline(), self.here))

    def op_stack_global(self):
        name, module = self.pop(), self.pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise LoadError(f"{self.here}: STACK_GLOBAL needs two strings")
        self.stack.append(_resolve_global(module, name, self.here))

    def op_reduce(self):
        args = self.pop()
        func = self.pop()
        self.stack.append(_reduce(func, args, self.here))

    def op_build(self):  # only OrderedDict's attribute dict (state_dict()._metadata), which we drop
        state = self.pop()
        if not isinstance(self.top(dict, "BUILD"), OrderedDict) or not isinstance(state, dict):
            raise LoadError(f"{self.here}: BUILD is only allowed on an OrderedDict with a dict state")

    def op_binpersid(self):
        pid = self.pop()
        if self.persistent_load is None:
            raise LoadError(f"{self.here}: unexpected storage reference")
        self.stack.append(self.persistent_load(pid, self.here))

    # -- containers ------------------------------------------------------------------------------------------
    def op_empty_dict(self):
        self.stack.append({})

    def op_empty_list(self):
        self.stack.append([])

    def op_tuple(self):
        items = tuple(self.pop_mark())  # before naming `self.stack`: pop_mark rebinds it
        self.stack.append(items)

    def op_setitem(self):
        value, key = self.pop(), self.pop()
        target = self.top(dict, "SETITEM")
        target[_key(key, self.here)] = value

    def op_setitems(self):
        items = self.pop_mark()
        target = self.top(dict, "SETITEMS")
        if len(items) % 2:
            raise LoadError(f"{self.here}: SETITEMS with an odd number of items")
        here = self.here
        for i in range(0, len(items), 2):
            target[_key(items[i], here)] = items[i + 1]

    def op_append(self):
        value = self.pop()
        self.top(list, "APPEND").append(value)

    def op_appends(self):
        items = self.pop_mark()
        self.top(list, "APPENDS").extend(items)

    # -- strings and numbers ---------------------------------------------------------------------------------
    def op_binunicode(self):
        read = self.reader.read
        self.stack.append(read(_U32.unpack(read(4))[0]).decode("utf-8", "surrogatepass"))

    def op_short_binunicode(self):
        read = self.reader.read
        self.stack.append(read(read(1)[0]).decode("utf-8", "surrogatepass"))

    def op_short_binstring(self):  # a Python 2 str
        read = self.reader.read
        self.stack.append(read(read(1)[0]).decode("ascii"))

    def op_binint1(self):
        self.stack.append(self.reader.read(1)[0])

    def op_long1(self):
        read = self.reader.read
        self.stack.append(int.from_bytes(read(read(1)[0]), "little", signed=True))

    # -- the memo --------------------------------------------------------------------------------------------
    def memo_put(self, index):
        if not self.stack:
            raise LoadError(f"{self.here}: memo store from an empty stack")
        self.memo[index] = self.stack[-1]

    def memo_get(self, index):
        if index not in self.memo:
            raise LoadError(f"{self.here}: memo entry {index} used before it was stored")
        self.stack.append(self.memo[index])

    def op_binput(self):
        self.memo_put(self.reader.read(1)[0])

    def op_long_binput(self):
        self.memo_put(_U32.unpack(self.reader.read(4))[0])

    def op_memoize(self):
        self.memo_put(len(self.memo))

    def op_binget(self):
        self.memo_get(self.reader.read(1)[0])

    def op_long_binget(self):
        self.memo_get(_U32.unpack(self.reader.read(4))[0])


_U32 = struct.Struct("<I")


def _push(value):
    """The handler of an opcode that pushes an immutable constant."""
    def handler(vm):
        vm.stack.append(value)
    return handler


def _push_unpacked(fmt):
    """The handler of an opcode followed by one fixed-size number in `struct` format `fmt`."""
    number = struct.Struct(fmt)

    def handler(vm):
        vm.stack.append(number.unpack(vm.reader.read(number.size))[0])
    return handler


def _tuple_of(n):
    """TUPLE1, TUPLE2, TUPLE3: the top n items as one tuple."""
    def handler(vm):
        stack = vm.stack
        if len(stack) < n:
            raise LoadError(f"{vm.here}: pickle stack underflow")
        items = tuple(stack[-n:])
        del stack[-n:]
        stack.append(items)
    return handler


# opcode -> handler; STOP ends `load` itself. Everything not listed is refused.
_DISPATCH = {
    b"\x80": _Unpickler.op_proto,           # PROTO
    b"\x95": _Unpickler.op_frame,           # FRAME
    b"(": _Unpickler.op_mark,               # MARK
    b"c": _Unpickler.op_global,             # GLOBAL
    b"\x93": _Unpickler.op_stack_global,    # STACK_GLOBAL
    b"R": _Unpickler.op_reduce,             # REDUCE
    b"b": _Unpickler.op_build,              # BUILD
    b"Q": _Unpickler.op_binpersid,          # BINPERSID
    b"}": _Unpickler.op_empty_dict,         # EMPTY_DICT
    b"]": _Unpickler.op_empty_list,         # EMPTY_LIST
    b")": _push(()),                        # EMPTY_TUPLE
    b"t": _Unpickler.op_tuple,              # TUPLE
    b"\x85": _tuple_of(1),                  # TUPLE1
    b"\x86": _tuple_of(2),                  # TUPLE2
    b"\x87": _tuple_of(3),                  # TUPLE3
    b"s": _Unpickler.op_setitem,            # SETITEM
    b"u": _Unpickler.op_setitems,           # SETITEMS
    b"a": _Unpickler.op_append,             # APPEND
    b"e": _Unpickler.op_appends,            # APPENDS
    b"X": _Unpickler.op_binunicode,         # BINUNICODE
    b"\x8c": _Unpickler.op_short_binunicode,  # SHORT_BINUNICODE
    b"U": _Unpickler.op_short_binstring,    # SHORT_BINSTRING
    b"J": _push_unpacked("<i"),             # BININT
    b"K": _Unpickler.op_binint1,            # BININT1
    b"M": _push_unpacked("<H"),             # BININT2
    b"\x8a": _Unpickler.op_long1,           # LONG1
    b"G": _push_unpacked(">d"),             # BINFLOAT
    b"\x88": _push(True),                   # NEWTRUE
    b"\x89": _push(False),                  # NEWFALSE
    b"N": _push(None),                      # NONE
    b"q": _Unpickler.op_binput,             # BINPUT
    b"r": _Unpickler.op_long_binput,        # LONG_BINPUT
    b"\x94": _Unpickler.op_memoize,         # MEMOIZE
    b"h": _Unpickler.op_binget,             # BINGET
    b"j": _Unpickler.op_long_binget,        # LONG_BINGET
}

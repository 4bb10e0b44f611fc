"""What the sequence modules (fastrnn.modules) and the cells (fastrnn.cells) share: parameters under torch's names,
state_dict round trips, the engine's packed layers (built on first use), pickling, streams and initial states."""
from __future__ import annotations

import math
import threading
from collections import OrderedDict, namedtuple

import numpy as np

from fastrnn import _layout, _memory
from fastrnn._convert import to_numpy
from fastrnn._kinds import NUM_GATES
from fastrnn._torchfile import LoadError
from fastrnn._torch_names import VECTORS, base
from fastrnn.streaming import Stream

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(LoadError, KeyError, TypeError):
    """Weights a module cannot take (load_state_dict): missing or unexpected keys, wrong shapes, values that are not
    arrays of real numbers. StateDictError(module, problems): `module` the module's repr, `problems` every problem
    found; the message shows them all.

    A LoadError (so a ValueError, which wrong shapes raised before), and also a KeyError and a TypeError: the
    exceptions load_state_dict raised for keys and for non-numeric values before it reported every problem at once,
    so `except` clauses written for those keep working."""

    def __init__(self, module, problems):
        super().__init__(module, tuple(problems))  # the args pickle (a dask worker's error reaches the client)

    @property
    def module(self):
        return self.args[0]

    @property
    def problems(self):
        return list(self.args[1])

    def __str__(self):  # KeyError's __str__ would show a repr, in quotes
        problems = self.args[1]
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        return f"Error loading state_dict into {self.module}, {count}:\n" + "\n".join(f"  {p}" for p in problems)


_DTYPES = {np.dtype(np.float32), np.dtype(np.float64)}


def check_dtype(dtype):
    if dtype is None:  # torch's factory default
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in _DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


# A module's precision -> the engine's weight format (fastrnn._engine.FORMATS). bfloat16 and int8 store the weights
# in that format and compute everything else in float32 (README "Precision").
PRECISION_FORMATS = {"float32": "float", "float64": "float", "bfloat16": "bfloat16", "int8": "int8"}


def check_precision(precision, dtype, config):
    """The module's precision: None is its dtype's; 'bfloat16' and 'int8' compute in float32 and need the
    kernels (named activations, not Python callables)."""
    if precision is None:
        return dtype.name
    if not isinstance(precision, str) or precision not in PRECISION_FORMATS:
        raise ValueError(f"precision: expected 'float32', 'bfloat16' or 'int8' (or 'float64' with dtype float64), "
                         f"got {precision!r}")
    if (precision == "float64") != (dtype == np.float64):
        raise ValueError(f"precision={precision!r} with dtype={dtype.name}: "
                         + ("bfloat16 and int8 weights compute in float32; pass dtype=np.float32"
                            if dtype == np.float64 else "a float64 module computes in float64; pass dtype=np.float64"))
    if precision in ("bfloat16", "int8") and config.slow:
        raise ValueError(f"precision={precision!r}: Python callable activations run in float on fastrnn's slow "
                         f"path, which has no {precision} weights; use named activations (fastrnn.activations)")
    return precision


def semantics_repr(config):
    """repr() parts for the options beyond torch's that differ from the defaults."""
    from fastrnn.activations import describe

    return [f"activations={describe(config.activations)}" if name == "activations" else f"{name}={value!r}"
            for name, value in config.semantics().items()]


class Module:
    """Parameters under torch names, state_dict round trips, and the engine's layers built from them.

    The weights live in one place at a time: torch-named arrays (`_pending`) until the engine's layers are built on
    first use, then the engine's panels alone (plus the small biases), from which state_dict() and the parameter
    attributes are unpacked exactly; bfloat16 and int8 panels cannot give the float weights back, so those modules
    keep them too. A subclass sets `config` (fastrnn.config.RNNConfig), `dtype` and `precision`, then calls
    `_init_params`.

    Threads: `_pending`, `_packed` and `_biases` change together under `_lock`, so threads calling one module see one
    set of weights whole: the first calls wait for one of them to pack (or draw) the weights, and a
    load_state_dict waits for a pack in progress, which then cannot put the old weights back. A call reads the
    packed layers once and runs on them whatever is loaded meanwhile."""

    def _init_params(self, shapes, hidden_size, dtype):
        """The parameters' names and shapes; their values are drawn on first use (torch's default initialisation,
        so an unloaded module behaves like a fresh torch one), never for a module that receives its weights first
        (fastrnn.load would otherwise hold a random copy of the model beside the real one)."""
        self._shapes = OrderedDict(shapes)
        self._lock = threading.RLock()
        self._set_weights(None)

    def _random_weights(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        rng = np.random.default_rng()
        pending = OrderedDict()
        for name, shape in self._shapes.items():
            value = rng.random(shape, dtype=self.dtype)  # drawn in the module's dtype: no float64 detour
            value *= 2 * bound
            value -= bound
            value.flags.writeable = False
            pending[name] = value
        return pending

    def _set_weights(self, pending):
        """New torch-named weights (read-only arrays the module owns; None: random), packed on first use."""
        with self._lock:
            self._pending, self._biases, self._packed = pending, {}, None

    @property
    def _reduced(self):
        """bfloat16 or int8 weights: rounded in the engine, so the module also keeps the float32 ones (state_dict
        gives back what it was given)."""
        return self.precision in ("bfloat16", "int8")

    @property
    def _layers(self):
        """The engine's layers, built on first use from the pending weights, which are then dropped: a module made
        only to receive a state_dict (as fastrnn.load does) is packed once, with its real weights."""
        packed = self.__dict__.get("_packed")
        if packed is None:
            with self._lock:  # one thread packs, any other waits for its layers
                packed = self._packed
                if packed is None:
                    cfg, pending = self.config, self._weights()
                    layers = 1 if cfg.cell else cfg.num_layers
                    packed = [self._pack_layer(layer, pending.get) for layer in range(layers)]
                    self._biases = OrderedDict((k, v) for k, v in pending.items() if base(k) in VECTORS)
                    self._packed, self._pending = packed, pending if self._reduced else None
        return packed

    def _pack_layer(self, layer, get):
        """The engine's Layer `layer` from get(torch name) -> array or None."""
        return _layout.pack_layer(self.config, get, layer, self.dtype, PRECISION_FORMATS[self.precision])

    def _weights(self):
        """Every parameter under its torch name, in torch's order (read-only arrays; unpacked after packing)."""
        with self._lock:
            if self._pending is None and self._packed is None:
                self._pending = self._random_weights()
            if self._pending is not None:
                return self._pending
            found, packed = dict(self._biases), self._packed
        for index, layer in enumerate(packed):
            found.update(_layout.unpack_layer(layer, index, self.config.cell))
        for value in found.values():
            value.flags.writeable = False
        return OrderedDict((name, found[name]) for name in self._shapes)

    def __getstate__(self):
        # The packed layers hold raw pointers: pickle the torch-named weights, repack on first use.
        skip = ("_packed", "_pending", "_biases", "_lock", "_pool")  # _pool: work buffers (engine/calls.pxi)
        state = {k: v for k, v in self.__dict__.items() if k not in skip}
        state["_pending"] = self._weights()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("precision", np.dtype(self.dtype).name)  # pickled before precisions existed
        self._lock = threading.RLock()
        self._set_weights(state["_pending"])

    def __getattr__(self, name):
        shapes = self.__dict__.get("_shapes")
        if shapes is not None and name in shapes:
            return self._weights()[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        # Assigning a parameter attribute would shadow the weights the engine packed and be silently ignored.
        shapes = self.__dict__.get("_shapes")
        if shapes is not None and name in shapes:
            raise AttributeError(f"{name}: parameters are set through load_state_dict({{{name!r}: array}}, "
                                 f"strict=False), which checks the shape and repacks the engine's weights")
        object.__setattr__(self, name, value)

    def named_parameters(self):
        """(torch name, array) pairs in torch's order; the arrays are read-only."""
        return iter(self._weights().items())

    def eval(self):
        """For torch-style code: fastrnn modules are always in inference mode (dropout never applies)."""
        return self

    def state_dict(self):
        """The parameters as an OrderedDict of numpy arrays (copies) under torch's names."""
        return OrderedDict((name, value.copy()) for name, value in self._weights().items())

    def load_state_dict(self, state_dict, strict=True, *, _adopt=False):
        """Copy parameters from a mapping of torch names to arrays (numpy, torch tensors, array-likes).

        With strict=True (the default) a missing or unexpected key is an error; a wrong shape or a value that is not
        an array of real numbers always is. Every problem is reported at once, in one StateDictError (a LoadError).
        Nothing is changed unless every value is usable. Returns (missing_keys, unexpected_keys).
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"state_dict: expected a mapping of names to arrays, got {type(state_dict).__name__}")
        missing = [name for name in self._shapes if name not in state_dict]
        unexpected = [key for key in state_dict.keys() if key not in self._shapes]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        given = OrderedDict()
        for name, shape in self._shapes.items():
            if name in state_dict:
                try:
                    given[name] = self._own(state_dict[name], name, shape, _adopt)
                except StateDictError as exc:
                    problems.extend(exc.problems)
        if problems:
            raise StateDictError(repr(self), problems)
        with self._lock:  # strict=False keeps the other weights: those of now, not of a concurrent load's past
            new = OrderedDict(self._weights() if missing else ())
            new.update(given)
            self._set_weights(OrderedDict((name, new[name]) for name in self._shapes))
        return IncompatibleKeys(missing, unexpected)

    def _own(self, value, name, shape, adopt):
        """`value` as a read-only C-contiguous array of the module's dtype that nobody else holds (adopt: fastrnn.load's
        arrays read from a file are kept as they are, not copied); StateDictError naming the key if it is unusable."""
        try:
            value = to_numpy(value, repr(name))
        except TypeError as exc:
            raise StateDictError(repr(self), [str(exc)]) from None
        if value.shape != shape:
            raise StateDictError(repr(self), [f"{name!r}: expected shape {shape}, got {value.shape}"])
        owned = adopt and value.dtype == self.dtype and value.flags.c_contiguous and value.flags.owndata
        value = value if owned else np.array(value, dtype=self.dtype, order="C", copy=True)
        value.flags.writeable = False
        return value

    def _load_layers(self, read, adopt):
        """fastrnn.load's path: read(names) -> {name: array}, one matrix at a time, each packed into the engine's
        panels at once and dropped, so the weights are never resident twice (peak: the panels + one matrix).
        adopt: the arrays are the module's to keep (read from a file), not the caller's."""
        biases = OrderedDict((name, self._own(value, name, self._shapes[name], adopt))
                             for name, value in read([n for n in self._shapes if base(n) in VECTORS]).items())

        kept = {}

        def get(name):
            if name in biases or name not in self._shapes:
                return biases.get(name)
            value = self._own(read([name])[name], name, self._shapes[name], adopt)
            if self._reduced:
                kept[name] = value
            return value

        cfg = self.config
        packed = [self._pack_layer(layer, get) for layer in range(1 if cfg.cell else cfg.num_layers)]
        kept.update(biases)
        pending = OrderedDict((name, kept[name]) for name in self._shapes) if self._reduced else None
        with self._lock:
            self._packed, self._pending, self._biases = packed, pending, biases

    def stream(self, batch_size=1, initial=None):
        """A Stream that carries this module's state across calls (see fastrnn.streaming.Stream).

        initial: the starting state in the layout the module returns (h_n, or (h_n, c_n) for LSTM);
        zeros if None. Not available for bidirectional modules.
        The stream runs the weights the module has when it is created; after load_state_dict, make a new one.
        """
        from fastrnn import _engine, _slow

        if self.config.slow:
            make_stack = lambda B: _slow.Stack(self.config, self._weights(), B, self.dtype)  # noqa: E731
        else:
            make_stack = lambda B: _engine.Stack(list(self._layers), B)  # noqa: E731
        return Stream(self.config, make_stack, self.dtype, getattr(self, "batch_first", False), batch_size, initial)

    def _check_call_memory(self, T, B, what):
        """MemoryError naming what() (the input) if a call of T steps of B rows could not fit in this machine's
        memory, before anything is allocated: counted are the last layer's output and the one before it (the next
        layer's input), and one step's gate rows."""
        per_step, per_row = self.__dict__.get("_call_bytes") or self._count_call_bytes()
        if (T * per_step + per_row) * B > _memory.machine_memory():
            _memory.check((T * per_step + per_row) * B,
                          lambda: (what(), f"for the outputs and work buffers of {self!r}"), MemoryError)

    def _count_call_bytes(self):
        """(bytes per step and batch row, bytes per batch row) of a call, computed once per module."""
        cfg, itemsize = self.config, self.dtype.itemsize
        D, layers = 2 if cfg.bidirectional else 1, 1 if cfg.cell else cfg.num_layers
        self._call_bytes = (D * cfg.out_size * min(layers, 2) * itemsize,
                            D * NUM_GATES[cfg.kind] * cfg.hidden_size * itemsize)
        return self._call_bytes

    def _state(self, value, name, shape, unbatched):
        """An initial state as a fresh C-contiguous array of `shape` (the batched shape), zeros if None."""
        if value is None:
            return np.zeros(shape, dtype=self.dtype)
        array = value if type(value) is np.ndarray else to_numpy(value, name)
        expected = shape[:-2] + shape[-1:] if unbatched else shape
        if array.shape != expected:
            kind = "unbatched " if unbatched else ""
            raise ValueError(f"{name}: expected shape {expected} for {kind}input, got {array.shape}")
        return np.array(array.reshape(shape), dtype=self.dtype, order="C", copy=True)

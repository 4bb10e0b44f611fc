"""What the sequence modules (fastrnn.modules) and the cells (fastrnn.cells) share: parameters under torch's names,
state_dict round trips, the engine's packed layers (built on first use), pickling, streams and initial states."""
from __future__ import annotations

import math
from collections import OrderedDict, namedtuple

import numpy as np

from fastrnn import _layout
from fastrnn._convert import to_numpy
from fastrnn.streaming import Stream

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

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


class Module:
    """Parameters under torch names, state_dict round trips, and the engine's layers built from them.

    A subclass sets `config` (fastrnn.config.RNNConfig), `dtype` and the parameters (`_init_params`), and says how
    its layers are packed (`_pack`)."""

    def _init_params(self, shapes, hidden_size, dtype):
        # torch's default initialisation, so an unloaded module behaves like a fresh torch one.
        bound = 1.0 / math.sqrt(hidden_size)
        rng = np.random.default_rng()
        self._params = OrderedDict()
        for name, shape in shapes.items():
            value = rng.random(shape, dtype=dtype)  # drawn in the module's dtype: no float64 detour
            value *= 2 * bound
            value -= bound
            value.flags.writeable = False
            self._params[name] = value
        self._packed = None

    def _pack(self):
        """The engine's layers for the current parameters."""
        cfg = self.config
        layers = 1 if cfg.cell else cfg.num_layers
        directions = 2 if cfg.bidirectional else 1
        return [_layout.pack_layer(cfg.kind, cfg.nonlinearity, self._params, layer, directions, self.dtype, cfg.cell)
                for layer in range(layers)]

    # The engine's packed weights are built on first use and rebuilt after load_state_dict, so a module
    # made only to receive a state_dict (as fastrnn.load does) is packed once, with its real weights.
    @property
    def _layers(self):
        packed = self.__dict__.get("_packed")
        if packed is None:
            packed = self._packed = self._pack()
        return packed

    def __getstate__(self):
        # The packed layers hold raw pointers: pickle the torch-named parameters, repack on first use.
        return {k: v for k, v in self.__dict__.items() if k != "_packed"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._packed = None

    def __getattr__(self, name):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        # Assigning a parameter attribute would shadow the weights the engine packed and be silently ignored.
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            raise AttributeError(f"{name}: parameters are set through load_state_dict({{{name!r}: array}}, "
                                 f"strict=False), which checks the shape and repacks the engine's weights")
        object.__setattr__(self, name, value)

    def named_parameters(self):
        """(torch name, array) pairs in torch's order; the arrays are read-only."""
        return iter(self._params.items())

    def eval(self):
        """For torch-style code: fastrnn modules are always in inference mode (dropout never applies)."""
        return self

    def state_dict(self):
        """The parameters as an OrderedDict of numpy arrays (copies) under torch's names."""
        return OrderedDict((name, value.copy()) for name, value in self._params.items())

    def load_state_dict(self, state_dict, strict=True, *, _adopt=False):
        """Copy parameters from a mapping of torch names to arrays (numpy, torch tensors, array-likes).

        With strict=True (the default) a missing or unexpected key is an error; a wrong shape always is.
        Nothing is changed unless every value is usable. Returns (missing_keys, unexpected_keys).
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"state_dict: expected a mapping of names to arrays, got {type(state_dict).__name__}")
        missing = [name for name in self._params if name not in state_dict]
        unexpected = [key for key in state_dict.keys() if key not in self._params]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                parts.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
            raise KeyError(f"Error loading state_dict into {self!r}: " + "; ".join(parts))
        new = OrderedDict(self._params)
        for name, current in self._params.items():
            if name not in state_dict:
                continue
            value = to_numpy(state_dict[name], f"state_dict[{name!r}]")
            if value.shape != current.shape:
                raise ValueError(
                    f"state_dict[{name!r}]: expected shape {current.shape}, got {value.shape} for {self!r}"
                )
            # _adopt (fastrnn.load's private fast path): arrays nobody else holds are kept, not copied.
            owned = _adopt and value.dtype == self.dtype and value.flags.c_contiguous and value.flags.owndata
            value = value if owned else np.array(value, dtype=self.dtype, order="C", copy=True)
            value.flags.writeable = False
            new[name] = value
        self._params = new
        self._packed = None
        return IncompatibleKeys(missing, unexpected)

    def stream(self, batch_size=1, initial=None):
        """A Stream that carries this module's state across calls (see fastrnn.streaming.Stream).

        initial: the starting state in the layout the module returns (h_n, or (h_n, c_n) for LSTM);
        zeros if None. Not available for bidirectional modules.
        The stream runs the weights the module has when it is created; after load_state_dict, make a new one.
        """
        return Stream(self.config, self._layers, self.dtype, getattr(self, "batch_first", False), batch_size,
                      initial)

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

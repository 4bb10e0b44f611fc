"""Turning what users pass (numpy arrays, torch tensors, lists) into numpy arrays, with errors that
name the argument. torch is never imported here: a tensor is recognised by its methods."""
from __future__ import annotations

import numpy as np


def to_numpy(value, name):
    """`value` as a numpy array of real numbers (any float/int dtype); TypeError naming `name` if not."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        tensor = value.detach().cpu()
        if not tensor.dtype.is_floating_point and tensor.dtype.is_complex:
            raise TypeError(f"{name}: expected a real-valued array, got a tensor of dtype {tensor.dtype}")
        if str(tensor.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            tensor = tensor.float()
        value = tensor.numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name}: expected an array of real numbers, got {type(value).__name__} ({exc})") from None
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {array.dtype}")
    return array


def check_int(name, value, minimum, wrong_type=TypeError):
    """`value` as an int >= minimum (not a bool, not a float); the error names `name`. A value of the wrong type
    raises `wrong_type` (constructors: TypeError, as torch does; set_num_threads and stream(): ValueError), one
    below `minimum` ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise wrong_type(f"{name}: expected an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def lstm_state_pair(value, name, owner="LSTM"):
    """An LSTM's state argument split into (h, c): a 2-sequence, or (None, None) for None; TypeError otherwise."""
    if value is None:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a tuple (h0, c0) for {owner}, got {type(value).__name__}")
    return value[0], value[1]

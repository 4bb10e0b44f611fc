"""from_torch: a live torch module -> the equivalent fastrnn module. The only place fastrnn imports torch, and
only when called."""
from __future__ import annotations

import numpy as np

from fastrnn._kinds import from_torch_mode
from fastrnn.config import RNNConfig


def from_torch(module, dtype=None, precision=None):
    """The fastrnn equivalent of a torch.nn RNN/LSTM/GRU/RNNCell/LSTMCell/GRUCell, or of the only such module
    inside `module` (an encoder, a whole model). Every constructor option is copied (batch_first, dropout,
    proj_size, nonlinearity, ...), then the weights.

    dtype: np.float32 or np.float64; None (default) means float64 for a float64 module, float32 otherwise.
    precision: None (the dtype's), 'float32', 'bfloat16' or 'int8' (README "Precision").
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"fastrnn.from_torch needs torch ({exc}); without torch, save the weights with torch.save "
                          f"and use fastrnn.load(path)") from None

    kinds = (torch.nn.RNNBase, torch.nn.RNNCellBase)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, kinds):
        target = module
    else:
        found = [(name, sub) for name, sub in module.named_modules() if isinstance(sub, kinds)]
        if len(found) != 1:
            listing = ", ".join(f"{name!r} ({type(sub).__name__})" for name, sub in found)
            raise ValueError(f"module: expected exactly one RNN/LSTM/GRU or cell inside "
                             f"{type(module).__name__}, found {len(found)}{': ' + listing if found else ''}; "
                             f"pass the one you want")
        target = found[0][1]
    if dtype is None:
        weight = next(target.parameters())
        float64 = weight.dtype == torch.float64 and precision in (None, "float64")
        dtype = np.float64 if float64 else np.float32
    result = torch_config(torch, target).build(batch_first=getattr(target, "batch_first", False),
                                               dtype=dtype, dropout=getattr(target, "dropout", 0.0),
                                               precision=precision)
    result.load_state_dict(target.state_dict())  # tensors are detached and copied by load_state_dict
    return result


def torch_config(torch, m):
    """The RNNConfig of a torch RNN module or cell."""
    if isinstance(m, torch.nn.RNNCellBase):
        nn = torch.nn
        kind = "LSTM" if isinstance(m, nn.LSTMCell) else "GRU" if isinstance(m, nn.GRUCell) else "RNN"
        return RNNConfig(kind, True, m.input_size, m.hidden_size, bias=m.bias,
                         nonlinearity=getattr(m, "nonlinearity", "tanh"))
    if m.mode not in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"):
        raise ValueError(f"module: unsupported RNN mode {m.mode!r}")
    kind, nonlinearity = from_torch_mode(m.mode)
    return RNNConfig(kind, False, m.input_size, m.hidden_size, m.num_layers, m.bidirectional,
                     getattr(m, "proj_size", 0), m.bias, nonlinearity)

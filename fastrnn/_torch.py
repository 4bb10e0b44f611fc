"""from_torch: a live torch module -> the equivalent fastrnn module. The only place fastrnn imports torch, and
only when called."""
from __future__ import annotations

import numpy as np

from fastrnn.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell


def from_torch(module, dtype=None):
    """The fastrnn equivalent of a torch.nn RNN/LSTM/GRU/RNNCell/LSTMCell/GRUCell, or of the only such module
    inside `module` (an encoder, a whole model). Every constructor option is copied (batch_first, dropout,
    proj_size, nonlinearity, ...), then the weights.

    dtype: np.float32 or np.float64; None (default) means float64 for a float64 module, float32 otherwise.
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
        dtype = np.float64 if weight.dtype == torch.float64 else np.float32
    result = _build(torch, target, dtype)
    result.load_state_dict(target.state_dict())  # tensors are detached and copied by load_state_dict
    return result


def _build(torch, m, dtype):
    nn = torch.nn
    if isinstance(m, nn.RNNCellBase):
        if isinstance(m, nn.RNNCell):
            return RNNCell(m.input_size, m.hidden_size, bias=m.bias, nonlinearity=m.nonlinearity, dtype=dtype)
        cls = LSTMCell if isinstance(m, nn.LSTMCell) else GRUCell
        return cls(m.input_size, m.hidden_size, bias=m.bias, dtype=dtype)
    common = dict(num_layers=m.num_layers, bias=m.bias, batch_first=m.batch_first, dropout=m.dropout,
                  bidirectional=m.bidirectional, dtype=dtype)
    if m.mode == "LSTM":
        return LSTM(m.input_size, m.hidden_size, proj_size=m.proj_size, **common)
    if m.mode == "GRU":
        return GRU(m.input_size, m.hidden_size, **common)
    if m.mode in ("RNN_TANH", "RNN_RELU"):
        return RNN(m.input_size, m.hidden_size, nonlinearity="tanh" if m.mode == "RNN_TANH" else "relu", **common)
    raise ValueError(f"module: unsupported RNN mode {m.mode!r}")

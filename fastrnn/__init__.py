"""fastrnn: fast CPU inference for PyTorch-trained RNN, LSTM and GRU models, on numpy, without torch."""
from fastrnn import _check_build  # noqa: F401  (first: a clear error if the engine is not built)
from fastrnn._base import StateDictError
from fastrnn._threads import get_num_threads, set_num_threads
from fastrnn._torch import from_torch
from fastrnn.cells import GRUCell, LSTMCell, RNNCell
from fastrnn.config import RNNConfig
from fastrnn.loading import LoadError, find_rnns, load, load_state_dict
from fastrnn.modules import GRU, LSTM, RNN

__version__ = "0.1.0"

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNConfig", "set_num_threads",
           "get_num_threads", "LoadError", "StateDictError", "load", "load_state_dict", "find_rnns", "from_torch"]

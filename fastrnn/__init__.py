"""fastrnn: fast CPU inference for PyTorch-trained RNN, LSTM and GRU models, on numpy, without torch."""
from fastrnn._threads import get_num_threads, set_num_threads
from fastrnn._torch import from_torch
from fastrnn.loading import LoadError, find_rnns, load, load_state_dict
from fastrnn.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__version__ = "0.1.0"

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "set_num_threads", "get_num_threads",
           "LoadError", "load", "load_state_dict", "find_rnns", "from_torch"]

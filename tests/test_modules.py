"""torch.nn-style conveniences of the module classes."""
import numpy as np
import pytest

import fastrnn


def test_parameter_assignment_is_refused_not_silently_ignored():
    m = fastrnn.LSTM(3, 4)
    with pytest.raises(AttributeError, match="load_state_dict"):
        m.weight_ih_l0 = np.zeros((16, 3), np.float32)
    assert m.eval() is m
    assert [name for name, _ in m.named_parameters()] == list(m.state_dict())
    with pytest.raises(ValueError):
        m.weight_hh_l0[0, 0] = 1.0  # read-only: an in-place edit would not reach the packed weights either

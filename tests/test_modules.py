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


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_reused_work_buffers_change_no_result(kind, rng, seed):
    """Calls reuse the module's work buffers (engine/calls.pxi _take / _give): a call after others of other shapes,
    with and without lengths, gives what a new module gives, bit for bit; the buffers never go into a pickle; the
    returned arrays are new ones."""
    import pickle
    kwargs = dict(num_layers=3, bidirectional=True)
    used = getattr(fastrnn, kind)(6, 9, **kwargs)
    state = used.state_dict()
    calls = [(rng.standard_normal((40, 5, 6)).astype(np.float32) * 3, None),
             (rng.standard_normal((13, 4, 6)).astype(np.float32), np.array([13, 2, 7, 1])),
             (rng.standard_normal((30, 3, 6)).astype(np.float32), None),
             (rng.standard_normal((17, 5, 6)).astype(np.float32), np.array([3, 17, 1, 9, 16]))]
    outputs = []
    for x, lengths in calls * 2:
        out, _ = used(x, lengths=lengths)
        fresh = getattr(fastrnn, kind)(6, 9, **kwargs)
        fresh.load_state_dict(state)
        want, _ = fresh(x, lengths=lengths)
        assert np.array_equal(out, want), f"{kind} T={x.shape[0]} lengths={lengths} (seed={seed})"
        assert all(out is not o and not np.shares_memory(out, o) for o in outputs)
        outputs.append(out)
    assert used.__dict__.get("_pool"), "the module kept no work buffer"
    assert "_pool" not in pickle.loads(pickle.dumps(used)).__dict__

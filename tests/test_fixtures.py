"""The loader and the modules against torch's own results on committed files (tests/fixtures, written by
tests/fixtures/make_fixtures.py with torch), so a machine without torch still checks them against torch."""
from __future__ import annotations

import os

import numpy as np
import pytest

import fastrnn
from conftest import assert_close
from fixtures.make_fixtures import IO_KEYS, LOAD_KWARGS

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
EXPECTED = np.load(os.path.join(HERE, "expected.npz"))
FILES = sorted({key.split("::")[0] for key in EXPECTED.files})


def expected_for(name):
    prefix = f"{name}::"
    return {key[len(prefix):]: EXPECTED[key] for key in EXPECTED.files if key.startswith(prefix)}


@pytest.mark.parametrize("name", FILES)
def test_load_state_dict_gives_what_torch_load_gives(name):
    got = fastrnn.load_state_dict(os.path.join(HERE, name))
    want = {key: value for key, value in expected_for(name).items() if key not in IO_KEYS}
    assert set(got) == set(want), f"{name}: keys {sorted(got)} != {sorted(want)}"
    for key, value in want.items():
        assert got[key].dtype == value.dtype, f"{name}::{key}: dtype {got[key].dtype} != {value.dtype}"
        assert got[key].shape == value.shape, f"{name}::{key}: shape {got[key].shape} != {value.shape}"
        np.testing.assert_array_equal(got[key], value, err_msg=f"{name}::{key}")


@pytest.mark.parametrize("name", sorted(LOAD_KWARGS))
def test_loaded_module_computes_what_torch_computed(name):
    load_kwargs = LOAD_KWARGS[name]
    want = expected_for(name)
    dtype = np.float64 if want["input"].dtype == np.float64 else np.float32
    module = fastrnn.load(os.path.join(HERE, name), dtype=dtype, **load_kwargs)
    if module.config.cell:
        got = module(want["input"])
        got = got[0] if isinstance(got, tuple) else got
        assert_close(got, want["output"], dtype, f"{name} h'")
        return
    out, states = module(want["input"])
    assert_close(out, want["output"], dtype, f"{name} output")
    for state_name, state in zip(("h_n", "c_n"), states if isinstance(states, tuple) else (states,)):
        assert_close(state, want[state_name], dtype, f"{name} {state_name}")

"""`fastrnn bench --precision`: the reduced-precision peers (torch's dynamic int8, OpenVINO's default bf16), every
engine's error vs torch float32 in the table, the precision suite (issues 11 and 12). Tiny sizes, one round."""
import json

import numpy as np
import pytest

from fastrnn import cli
from fastrnn.benchmark import cases, peers, report

TINY_HERE = ["bench", "--hidden-size", "16", "--input-size", "8", "--seq-len", "6", "--repeat", "1", "--in-process"]


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install 'fastrnn[bench]')")


def _bf16_hardware():
    return bool({"avx512_bf16", "amx_bf16"} & set(report.cpu_flags()))


# ---------------------------------------------------------------------------------------------- torch-int8

@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("stream", [False, True])
def test_torch_int8_is_quantized_and_close_to_float32(kind, stream):
    _torch()
    from torch.ao.nn.quantized import dynamic

    case = cases.case(kind, 24, 32, batch=2, seq_len=12, stream=stream, weight_bound=0.1)
    state_dict = cases.random_state_dict(case)
    module, engine = peers.torch_int8_module(case, state_dict)
    assert isinstance(module, (dynamic.LSTM, dynamic.GRU)), type(module)
    assert engine in peers.QUANTIZED_ENGINES
    (runner,), missing = peers.make_peers(case, state_dict, 1, ["torch-int8"])
    assert not missing and runner.precision == "int8" and "qint8" in runner.note
    x = cases.check_input(case)
    out = peers.run_check(runner, case, x)
    reference = peers.torch_reference(case, state_dict, x)
    error = np.max(np.abs(out - reference))
    assert 0 < error < 0.3, error  # zero: quantize_dynamic was a no-op


def test_torch_int8_unavailable_for_rnn_and_projection():
    _torch()
    unsupported = ((cases.case("RNN", 8, 16), "not nn.RNN"), (cases.case("LSTM", 8, 16, proj_size=4), "proj_size"))
    for case, reason in unsupported:
        runners, missing = peers.make_peers(case, cases.random_state_dict(case), 1, ["torch-int8"])
        assert not runners and reason in missing["torch-int8"]


# ---------------------------------------------------------------------------------------------- openvino-bf16

def test_openvino_default_precision_is_reported():
    _torch()
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'fastrnn[bench]')")
    case = cases.case("LSTM", 32, 64, batch=4, seq_len=20, weight_bound=0.1)
    state_dict = cases.random_state_dict(case)
    runners, missing = peers.make_peers(case, state_dict, 1, ["openvino", "openvino-bf16"])
    assert not missing, missing
    f32, default = runners
    assert f32.precision == "float32" and "chosen by OpenVINO" in default.note
    x = cases.check_input(case)
    reference = peers.torch_reference(case, state_dict, x)
    assert np.max(np.abs(peers.run_check(f32, case, x) - reference)) < 1e-5
    if _bf16_hardware():  # OpenVINO computes in bf16 by default where the CPU has it
        assert default.precision == "bfloat16"
        assert 1e-5 < np.max(np.abs(peers.run_check(default, case, x) - reference)) < 0.1
    else:
        assert default.precision in ("float32", "bfloat16")


# ---------------------------------------------------------------------------------------------- the command

def test_bench_int8_table_gives_every_engine_error(tmp_path, capsys):
    _torch()
    path = tmp_path / "b.json"
    assert cli.main([*TINY_HERE, "--precision", "int8", "--peers", "torch-int8", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fastrnn err" in out and "torch-int8 err" in out and "torch-int8 (int8): " in out
    (row,) = json.loads(path.read_text())["rows"]
    assert row["config"]["precision"] == "int8"
    theirs = row["engines"]["torch-int8"]
    assert theirs["precision"] == "int8" and theirs["us_per_call_median"] > 0
    assert 0 < theirs["max_abs_diff_vs_torch"] < 0.3
    # the reference is torch float32 although torch itself is not timed
    assert 0 < row["engines"]["fastrnn"]["max_abs_diff_vs_torch"] < 0.1


def test_bench_precision_adds_the_reduced_peer_by_default(tmp_path):
    assert peers.default_peers() == list(peers.PEERS)
    assert peers.default_peers("float32") == list(peers.PEERS)
    assert peers.default_peers("bfloat16") == [*peers.PEERS, "openvino-bf16"]
    assert peers.default_peers("int8") == [*peers.PEERS, "torch-int8"]
    path = tmp_path / "b.json"
    assert cli.main([*TINY_HERE, "--kind", "rnn", "--precision", "int8", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["engines"] == ["fastrnn", *peers.PEERS, "torch-int8"]
    (row,) = data["rows"]
    assert "unavailable" in row["engines"]["torch-int8"]


def test_float32_table_keeps_one_error_column(capsys):
    assert cli.main([*TINY_HERE, "--peers", "none"]) == 0
    out = capsys.readouterr().out
    assert "max abs diff vs torch" in out and "fastrnn err" not in out


@pytest.mark.parametrize("argv, message", [
    (["bench", "--precision", "float16"], "invalid choice: 'float16'"),
    (["bench", "--peers", "torch-int4"], "unknown peer 'torch-int4'"),
    (["bench", "--suite", "issues"], "invalid choice: 'issues'"),
])
def test_unknown_names_are_named(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["bench", "--suite", "precision", "--batch", "2"], "drop --batch"),
    (["bench", "--suite", "precision", "--model"], "drop --suite precision"),
    (["bench", "--precision", "bfloat16", "--dtype", "float64"], "drop --dtype float64"),
])
def test_precision_bad_combinations_exit_1(argv, message, capsys):
    assert cli.main(argv) == 1
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- the suite

def test_precision_suite_is_the_issue_configs():
    suite = cases.precision_suite("int8")
    assert [c.label for c in suite] == [
        "LSTM I512 H512 B64 T100 int8", "GRU I512 H512 B64 T100 int8", "LSTM I128 H256 L2 bi B8 T200 int8",
        "LSTM I1024 H1024 B1 T100 int8", "LSTM I256 H256 B1 T100 int8", "LSTM I256 H256 B1 stream int8"]
    assert all(c.weight_bound == 0.1 and c.precision == "int8" for c in suite)
    weights = cases.random_state_dict(suite[-1])
    assert 0.099 < max(np.max(np.abs(w)) for w in weights.values()) <= 0.1
    x = cases.check_input(suite[0])  # N(0, 1)
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01

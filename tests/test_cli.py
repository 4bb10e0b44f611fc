"""The `fastrnn` command line: bench (CI's smoke run, at tiny sizes), info, run, exit codes and messages."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import cli

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = np.load(cli.DATA / "example_expected.npz")
TINY = ["bench", "--hidden-size", "8", "--input-size", "4", "--seq-len", "4", "--repeat", "1"]
# The bench tests but the smoke run time every engine in this process: a process per engine imports torch each.
TINY_HERE = [*TINY, "--in-process"]


def run_cli(*argv):
    """`python -m fastrnn ...` in a fresh process: (exit code, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "fastrnn", *argv], capture_output=True, text=True, env=env,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def one_line_error(stderr, command):
    lines = [line for line in stderr.splitlines() if not line.startswith("(no FILE given")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"fastrnn {command}: error: ")
    assert "Traceback" not in stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------- bench

def test_bench_smoke_with_every_installed_peer(tmp_path):
    """CI's smoke of `fastrnn bench`: tiny sizes, one round, every peer that is installed, JSON written."""
    path = tmp_path / "bench.json"
    code, out, err = run_cli(*TINY, "--json", str(path))
    assert code == 0, err
    assert "| LSTM I4 H8 B1 T4 " in out and "fastrnn us/call" in out and "method:" in out
    report = json.loads(path.read_text())
    assert set(report) == {"machine", "engines", "repeat", "rows"}
    machine = report["machine"]
    for key in ("cpu", "cores", "threads", "blas", "versions", "date", "method"):
        assert key in machine
    assert machine["versions"]["fastrnn"] == fastrnn.__version__
    assert machine["blas"] and {"internal_api", "version", "num_threads"} <= set(machine["blas"][0])
    assert "each engine in its own process" in machine["method"]
    (row,) = report["rows"]
    assert row["config"]["model"]["hidden_size"] == 8 and row["label"] == "LSTM I4 H8 B1 T4"
    assert report["engines"][0] == "fastrnn"
    mine = row["engines"]["fastrnn"]
    assert len(mine["samples_us_per_call"]) == 1
    assert mine["us_per_call_median"] > 0 and mine["us_per_step_median"] == pytest.approx(mine["us_per_call_median"] / 4)
    for peer in ("torch", "onnxruntime", "openvino"):
        entry = row["engines"][peer]
        assert ("unavailable" in entry) or entry["us_per_call_median"] > 0
    if "max_abs_diff_vs_torch" in mine:
        assert mine["max_abs_diff_vs_torch"] < 1e-5
        for entry in row["engines"].values():
            if "max_abs_diff_vs_torch" in entry:
                assert entry["max_abs_diff_vs_torch"] < 1e-4


@pytest.mark.parametrize("flags", [
    ["--kind", "gru", "--stream"],
    ["--kind", "rnn", "--layers", "2", "--bidirectional", "--batch", "3"],
    ["--proj-size", "3"],
    ["--dtype", "float64", "--threads", "1"],
])
def test_bench_configs(flags, tmp_path):
    path = tmp_path / "b.json"
    assert cli.main([*TINY_HERE, *flags, "--json", str(path)]) == 0
    (row,) = json.loads(path.read_text())["rows"]
    mine = row["engines"]["fastrnn"]
    assert mine["us_per_call_median"] > 0
    if "max_abs_diff_vs_torch" in mine:
        assert mine["max_abs_diff_vs_torch"] < (1e-10 if "float64" in flags else 1e-5)
    if "--proj-size" in flags:
        assert "projection" in row["engines"]["onnxruntime"]["unavailable"]


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
@pytest.mark.parametrize("stream", [False, True])
def test_bench_precision_builds_fastrnn_in_it(precision, stream, tmp_path):
    path = tmp_path / "b.json"
    flags = ["--stream"] if stream else []
    assert cli.main([*TINY_HERE, *flags, "--precision", precision, "--peers", "none", "--json", str(path)]) == 0
    (row,) = json.loads(path.read_text())["rows"]
    assert row["config"]["precision"] == precision and row["label"].endswith(f" {precision}")
    mine = row["engines"]["fastrnn"]
    assert mine["precision"] == precision and f"precision={precision!r}" in mine["note"]
    if "max_abs_diff_vs_torch" in mine:  # reported, not held to float32's tolerance; zero would mean float32 ran
        assert 0 < mine["max_abs_diff_vs_torch"] < 0.1


def test_bench_without_peers_and_stream_uses_module_stream(tmp_path, capsys):
    path = tmp_path / "b.json"
    assert cli.main([*TINY_HERE, "--stream", "--peers", "none", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["engines"] == ["fastrnn"]
    (row,) = report["rows"]
    assert set(row["engines"]) == {"fastrnn"}
    assert row["engines"]["fastrnn"]["us_per_step_median"] == row["engines"]["fastrnn"]["us_per_call_median"]
    if hasattr(fastrnn.LSTM(2, 2), "stream"):
        assert row["engines"]["fastrnn"]["stream_note"] == "module.stream(B)"
    assert "LSTM I4 H8 B1 stream" in capsys.readouterr().out


def test_bench_model_uses_the_bundled_example(tmp_path):
    path = tmp_path / "b.json"
    assert cli.main(["bench", "--model", "--seq-len", "3", "--repeat", "1", "--peers", "none", "--json", str(path)]) == 0
    (row,) = json.loads(path.read_text())["rows"]
    model = row["config"]["model"]
    assert (model["kind"], model["input_size"], model["hidden_size"], model["num_layers"]) == ("LSTM", 16, 32, 2)


def test_bench_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "b.png"
    assert cli.main([*TINY_HERE, "--peers", "none", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_suite_covers_the_issue_configs():
    from fastrnn.benchmark.cases import default_suite

    suite = default_suite()
    labels = [c.label for c in suite]
    assert len(set(labels)) == len(labels)
    models = [(c, c.model) for c in suite]
    assert any(c.stream and m.kind == "LSTM" and m.hidden_size == 256 for c, m in models)
    assert any(c.stream and m.kind == "LSTM" and m.hidden_size == 64 for c, m in models)
    assert any(c.stream and m.kind == "GRU" and m.hidden_size == 64 for c, m in models)
    for kind in ("LSTM", "GRU", "RNN"):
        for hidden in (64, 256, 1024):
            assert any(m.kind == kind and m.hidden_size == hidden and c.batch == 1 and c.seq_len == 100
                       and not c.stream for c, m in models)
    for kind in ("LSTM", "GRU"):
        assert any(c.batch == 64 and c.seq_len == 100 and m.kind == kind and m.hidden_size == 512 for c, m in models)
    assert any(m.num_layers == 2 and m.bidirectional and c.batch == 8 and c.seq_len == 200 for c, m in models)
    assert any(m.proj_size == 128 and m.hidden_size == 512 for c, m in models)


def test_bench_in_process_option(tmp_path):
    path = tmp_path / "b.json"
    assert cli.main([*TINY_HERE, "--peers", "none", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert "all engines in this process" in report["machine"]["method"]
    assert report["rows"][0]["engines"]["fastrnn"]["us_per_call_median"] > 0


@pytest.mark.parametrize("argv", [
    ["bench", "--kind", "lstmx"],
    ["bench", "--peers", "tensorflow"],
    ["bench", "--hidden-size", "0"],
    ["bench", "--repeat", "many"],
    ["bench", "--precision", "float16"],
    ["run", "--precision", "float64"],
    ["frobnicate"],
    [],
])
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert "usage: fastrnn" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["bench", "--kind", "gru", "--proj-size", "2"], "only lstm has a projection"),
    (["bench", "--hidden-size", "8", "--proj-size", "8"], "must be smaller"),
    (["bench", "--stream", "--bidirectional"], "bidirectional"),
    (["bench", "--model", "--hidden-size", "8"], "drop --hidden-size"),
    (["bench", "--model", "no/such/file.pt"], "no such file"),
    (["bench", "--precision", "int8", "--dtype", "float64"], "drop --dtype float64"),
    (["bench", "--precision", "float32", "--dtype", "float64"], "drop --dtype float64"),
])
def test_bench_bad_combinations_exit_1(argv, message, capsys):
    assert cli.main(argv) == 1
    assert message in one_line_error(capsys.readouterr().err, "bench")


# ---------------------------------------------------------------------------------------------- info

def test_info_on_the_bundled_example(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch.save zip" in out
    assert "encoder.lstm: LSTM(input_size=16, hidden_size=32, num_layers=2" in out
    assert "head.weight: (5, 32) float32" in out


def test_info_json_schema(capsys):
    assert cli.main(["info", str(cli.EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"file", "format", "checkpoint_entry", "num_keys", "rnns", "other_keys"}
    assert report["num_keys"] == 12
    (rnn,) = report["rnns"]
    assert rnn["prefix"] == "encoder.lstm" and rnn["dtypes"] == ["float32"]
    assert rnn["config"]["kind"] == "LSTM" and rnn["config"]["num_layers"] == 2
    assert rnn["parameters"] == 2 * 4 * 32 * (16 + 32 + 2) + 4 * 32 * (32 - 16)
    assert {o["key"] for o in report["other_keys"]} == {"encoder.frontend.weight", "encoder.frontend.bias",
                                                       "head.weight", "head.bias"}


def test_info_npz_with_two_rnns(tmp_path, capsys):
    gru = fastrnn.GRU(3, 5, bidirectional=True)
    rnn = fastrnn.RNN(4, 6, num_layers=2)
    arrays = {**{f"a.gru.{k}": v for k, v in gru.state_dict().items()},
              **{f"b.{k}": v for k, v in rnn.state_dict().items()}, "scale": np.ones(3)}
    path = tmp_path / "two.npz"
    np.savez(path, **arrays)
    assert cli.main(["info", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "npz"
    assert {r["prefix"]: r["config"]["kind"] for r in report["rnns"]} == {"a.gru": "GRU", "b": "RNN"}
    assert cli.main(["info", str(path), "--prefix", "b"]) == 0
    out = capsys.readouterr().out
    assert "b: RNN(input_size=4, hidden_size=6, num_layers=2" in out and "a.gru" not in out


def test_info_errors(tmp_path, capsys):
    assert cli.main(["info", str(tmp_path / "missing.pt")]) == 1
    assert "no such file" in one_line_error(capsys.readouterr().err, "info")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    assert cli.main(["info", str(junk)]) == 1
    one_line_error(capsys.readouterr().err, "info")
    assert cli.main(["info", "--prefix", "decoder"]) == 1
    assert "decoder" in one_line_error(capsys.readouterr().err, "info")


def test_debug_shows_the_traceback(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(cli.CLIError) as excinfo:
        cli.main(["info", str(junk), "--debug"])
    assert isinstance(excinfo.value.__cause__, fastrnn.LoadError)


# ---------------------------------------------------------------------------------------------- run

def test_run_the_bundled_example_matches_torch(tmp_path):
    out, states = tmp_path / "y.npy", tmp_path / "s.npz"
    assert cli.main(["run", "--output", str(out), "--state-out", str(states)]) == 0
    np.testing.assert_allclose(np.load(out), EXPECTED["output"], atol=2e-6)
    with np.load(states) as saved:
        assert set(saved.files) == {"h_n", "c_n"}
        np.testing.assert_allclose(saved["h_n"], EXPECTED["h_n"], atol=2e-6)
        np.testing.assert_allclose(saved["c_n"], EXPECTED["c_n"], atol=2e-6)


def test_run_batch_first_and_lengths(tmp_path):
    x = np.load(cli.EXAMPLE_INPUT)
    xb, lengths = tmp_path / "xb.npy", tmp_path / "l.npy"
    np.save(xb, x.transpose(1, 0, 2))
    np.save(lengths, np.array([20, 7]))
    out = tmp_path / "y.npy"
    assert cli.main(["run", str(cli.EXAMPLE), "--prefix", "encoder.lstm", "--input", str(xb), "--batch-first",
                     "--lengths", str(lengths), "--output", str(out)]) == 0
    y = np.load(out)
    assert y.shape == (2, 20, 32)
    np.testing.assert_allclose(y[0], EXPECTED["output"][:, 0], atol=2e-6)
    np.testing.assert_array_equal(y[1, 7:], 0)


@pytest.mark.parametrize("precision, budget", [("bfloat16", 1e-2), ("int8", 2e-2)])
def test_run_precision(precision, budget, tmp_path, capsys):
    out = tmp_path / "y.npy"
    assert cli.main(["run", "--precision", precision, "--output", str(out)]) == 0
    assert f"precision={precision!r}" in capsys.readouterr().out
    diff = np.max(np.abs(np.load(out) - EXPECTED["output"]))
    assert 0 < diff < budget


def test_run_errors(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 2, 7), np.float32))
    assert cli.main(["run", "--input", str(bad)]) == 1
    assert "input_size=16" in one_line_error(capsys.readouterr().err, "run")
    assert cli.main(["run", str(cli.EXAMPLE), "--input", str(tmp_path / "none.npy")]) == 1
    assert "no such file" in one_line_error(capsys.readouterr().err, "run")
    assert cli.main(["run", str(cli.EXAMPLE)]) == 1
    assert "--input is required" in one_line_error(capsys.readouterr().err, "run")
    lengths = tmp_path / "l.npy"
    np.save(lengths, np.array([30, 1]))
    assert cli.main(["run", "--lengths", str(lengths)]) == 1
    assert "lengths" in one_line_error(capsys.readouterr().err, "run")


def test_run_and_info_in_a_process_without_torch(tmp_path):
    """`fastrnn info` and `run` never import torch (nor the bench peers)."""
    script = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None; sys.modules['openvino'] = None\n"
        "from fastrnn.cli import main\n"
        f"assert main(['info']) == 0\nassert main(['run', '--output', {str(tmp_path / 'y.npy')!r}]) == 0\n"
        "assert main(['bench', '--hidden-size', '4', '--seq-len', '2', '--repeat', '1', '--in-process']) == 0\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "torch is not installed" in proc.stdout  # bench: a missing peer is a note, not an error
    assert "n/a (no torch)" in proc.stdout


def test_missing_file_through_the_console_entry_point():
    code, out, err = run_cli("run", "missing.pt", "--input", "x.npy")
    assert code == 1 and out == ""
    assert "missing.pt: no such file" in one_line_error(err, "run")

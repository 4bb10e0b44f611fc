"""fastrnn.load_state_dict against torch.load on the same files: containers, dtypes, shared-storage views,
crafted edge cases, and the refusals (hostile pickles, damaged files)."""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import fastrnn
from fastrnn import LoadError

from torchfile_fixtures import (Payload, StorageRef, TensorRef, crafted_pt, legacy_with, read_records, rezip,
                                write_zip)

torch = pytest.importorskip("torch")


def as_numpy(tensor):
    tensor = tensor.detach()
    return tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()


def assert_same(ours, theirs):
    """Our arrays equal torch's tensors exactly (bfloat16 -> float32 is exact), with the same names."""
    theirs = {k: v for k, v in theirs.items() if isinstance(v, torch.Tensor)}
    assert list(ours) == list(theirs)
    for name, tensor in theirs.items():
        expected = as_numpy(tensor)
        assert ours[name].dtype == expected.dtype, name
        assert ours[name].shape == expected.shape, name
        np.testing.assert_array_equal(ours[name], expected, err_msg=name)


def views_state_dict():
    base = torch.randn(6, 8)
    return OrderedDict([
        ("whole", base),
        ("row_slice", base[2:5]),            # offset into a shared storage
        ("transposed", base.t()),            # non-contiguous strides
        ("step_slice", base[::2, 1::3]),     # steps in both dimensions
        ("expanded", torch.randn(1, 3).expand(4, 3)),  # stride 0
        ("scalar", torch.tensor(3.5)),       # 0-d
        ("empty", torch.zeros(0, 5)),
        ("count", torch.tensor(7)),          # BatchNorm-style int64 buffer
        ("mask", torch.tensor([True, False])),
    ])


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_views_sharing_storage_match_torch(tmp_path, zipped):
    sd = views_state_dict()
    if zipped:  # no storage class: _rebuild_tensor_v3 on an UntypedStorage (torch cannot reload it from legacy)
        sd["u16"] = torch.tensor([1, 2, 65535], dtype=torch.uint16)
    path = tmp_path / "views.pt"
    torch.save(sd, path, _use_new_zipfile_serialization=zipped)
    ours = fastrnn.load_state_dict(path)
    assert_same(ours, torch.load(path))
    # every result is its own array: writing one never shows up in another key
    ours["whole"][:] = 0
    np.testing.assert_array_equal(ours["row_slice"], sd["row_slice"].numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_float_dtypes_match_torch(tmp_path, dtype, zipped):
    lstm = torch.nn.LSTM(5, 7, num_layers=2).to(getattr(torch, dtype))
    path = tmp_path / f"lstm_{dtype}.pt"
    torch.save(lstm.state_dict(), path, _use_new_zipfile_serialization=zipped)
    ours = fastrnn.load_state_dict(path)
    assert_same(ours, torch.load(path))
    assert ours["weight_ih_l0"].dtype == (np.float32 if dtype == "bfloat16" else np.dtype(dtype))


def test_parameters_and_metadata(tmp_path):
    """keep_vars=True pickles nn.Parameter (_rebuild_parameter); state_dict()._metadata is not an entry."""
    gru = torch.nn.GRU(3, 4)
    path = tmp_path / "params.pt"
    torch.save(gru.state_dict(keep_vars=True), path)
    assert_same(fastrnn.load_state_dict(path), gru.state_dict())


def test_pickle_protocol_4_and_deflated_records(tmp_path):
    sd = views_state_dict()
    path = tmp_path / "p4.pt"
    torch.save(sd, path, pickle_protocol=4)
    assert_same(fastrnn.load_state_dict(path), sd)
    deflated = rezip(path, tmp_path / "deflated.pt", compression=zipfile.ZIP_DEFLATED)
    assert_same(fastrnn.load_state_dict(deflated), sd)


def test_folder_name_is_not_fixed(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "my weights.pt"
    sd = {"w": torch.randn(3)}
    torch.save(sd, path)
    assert_same(fastrnn.load_state_dict(str(path)), sd)


def test_big_endian_records(tmp_path):
    """A file from a big-endian machine: byteorder record 'big', every element swapped by its own itemsize."""
    values = {"a": np.arange(6, dtype=np.float32).reshape(2, 3) / 7, "b": np.arange(3, dtype=np.float64) / 3,
              "c": np.array([1.5, -2.25], dtype=np.float16)}
    classes = {"a": "FloatStorage", "b": "DoubleStorage", "c": "HalfStorage"}
    obj = OrderedDict((k, TensorRef(StorageRef(classes[k], k, v.size), 0, v.shape, tuple(s // v.itemsize for s in v.strides)))
                      for k, v in values.items())
    path = crafted_pt(tmp_path / "big.pt", obj, {k: v.astype(v.dtype.newbyteorder(">")).tobytes()
                                                   for k, v in values.items()}, byteorder="big")
    expected = torch.load(path)
    ours = fastrnn.load_state_dict(path)
    assert_same(ours, expected)
    for name, value in values.items():
        np.testing.assert_array_equal(ours[name], value)


def test_crafted_views_match_torch(tmp_path):
    """Offsets, strides and stride-0 views that torch accepts, on one storage; torch.load is the oracle."""
    storage = StorageRef("FloatStorage", "0", 24)
    obj = {"tail": TensorRef(storage, 23, (1,), (1,)), "cols": TensorRef(storage, 1, (4, 3), (6, 2)),
           "bcast": TensorRef(storage, 5, (3, 2), (0, 1)), "empty_far": TensorRef(storage, 1000, (0, 4), (4, 1))}
    path = crafted_pt(tmp_path / "views.pt", obj, {"0": np.arange(24, dtype=np.float32).tobytes()})
    assert_same(fastrnn.load_state_dict(path), torch.load(path))


def test_legacy_view_metadata(tmp_path):
    """Old legacy files may address a sub-range (view_key, offset, numel) of a root storage."""
    import torch.serialization  # noqa: F401  (for pickling torch.FloatStorage as a global)

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, StorageRef):
                return ("storage", torch.FloatStorage, "root", "cpu", 10, ("view", 4, 5))
            return None

        def reducer_override(self, value):
            if isinstance(value, TensorRef):
                return torch._utils._rebuild_tensor_v2, (value.storage, 1, (2, 2), (2, 1), False, OrderedDict())
            return NotImplemented

    import io
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": TensorRef(StorageRef("FloatStorage", "root", 10), 0, (), ())})
    path = tmp_path / "legacy_view.pt"
    legacy_with(path, main_pickle=buffer.getvalue())
    data = path.read_bytes()[:-len(pickle.dumps([], protocol=2))]
    path.write_bytes(data + pickle.dumps(["root"], protocol=2) + struct.pack("<q", 10)
                     + np.arange(10, dtype=np.float32).tobytes())
    np.testing.assert_array_equal(fastrnn.load_state_dict(path)["w"], [[5, 6], [7, 8]])


# -- refusals ------------------------------------------------------------------------------------------------------
class Reduce:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile_pickles(marker):
    command = f"touch {marker}"
    yield "reduce os.system", pickle.dumps(Payload(command), protocol=2)
    yield "stack_global protocol 4", pickle.dumps(Payload(command), protocol=4)
    yield "protocol 0", pickle.dumps(Payload(command), protocol=0)
    yield "builtins.eval", pickle.dumps(Reduce(eval, f"__import__('os').system('{command}')"), protocol=2)
    yield "builtins.exec", pickle.dumps(Reduce(exec, f"open('{marker}', 'w')"), protocol=2)
    yield "INST opcode", f"(S'{command}'\nios\nsystem\n.".encode()
    yield "nested in a dict", pickle.dumps({"w": Payload(command)}, protocol=2)


def test_payload_is_live(tmp_path):
    """The hostile pickles below really run the command under a normal unpickler (so their refusal means something)."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(f"touch {marker}"), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("place", ["zip data.pkl", "legacy main", "legacy sys_info", "plain pickle"])
def test_hostile_pickles_are_refused(tmp_path, place):
    marker = tmp_path / "pwned"
    for label, payload in hostile_pickles(marker):
        path = tmp_path / "evil.pt"
        if place == "zip data.pkl":
            write_zip(path, {"data.pkl": payload, "version": b"3\n", "byteorder": b"little"})
        elif place == "legacy main":
            legacy_with(path, main_pickle=payload)
        elif place == "legacy sys_info":
            legacy_with(path, sys_info_pickle=payload)
        else:
            path.write_bytes(payload)
        with pytest.raises(LoadError) as info:
            fastrnn.load_state_dict(path)
        assert str(path) in str(info.value), label
        assert not marker.exists(), label


def test_forbidden_global_is_named(tmp_path):
    path = write_zip(tmp_path / "evil.pt", {"data.pkl": pickle.dumps(Payload("true"), protocol=2),
                                             "version": b"3\n"})
    with pytest.raises(LoadError, match=r"data\.pkl \(pickle byte \d+\): refusing forbidden global '(posix|nt)\.system'"):
        fastrnn.load_state_dict(path)


def test_whole_module_pickle_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.LSTM(2, 3), path)
    with pytest.raises(LoadError, match=r"forbidden global 'torch\.nn\.modules\.rnn\.LSTM'.*state_dict"):
        fastrnn.load_state_dict(path)


def test_torchscript_is_refused(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.GRU(2, 3)), path)
    with pytest.raises(LoadError, match="TorchScript"):
        fastrnn.load_state_dict(path)


@pytest.fixture
def small_pt(tmp_path):
    path = tmp_path / "small.pt"
    base = torch.randn(4, 5)
    torch.save(OrderedDict([("a", base), ("b", base[1:3]), ("c", torch.randn(3).double())]), path)
    return path


def damaged(tmp_path, small_pt):
    """(what, path, message pattern) for files torch also refuses."""
    records, folder = read_records(small_pt)
    key_a = "0"
    yield "truncated zip", _write(tmp_path / "t.pt", small_pt.read_bytes()[: small_pt.stat().st_size // 2]), "corrupt"
    yield "empty file", _write(tmp_path / "e.pt", b""), "empty"
    yield "missing storage", rezip(small_pt, tmp_path / "m.pt", drop=[f"data/{key_a}"]), r"missing storage record .*data/0"
    yield "missing data.pkl", rezip(small_pt, tmp_path / "p.pt", drop=["data.pkl"]), "missing record .*data.pkl"
    yield "missing version", rezip(small_pt, tmp_path / "v.pt", drop=["version"]), "version"
    yield "bad version", rezip(small_pt, tmp_path / "v11.pt", replace={"version": b"11\n"}), "version"
    yield "short storage", rezip(small_pt, tmp_path / "s.pt", replace={"data/0": records["data/0"][:-4]}), \
        r"data/0 holds 76 bytes but the pickle declares 20 elements"
    yield "long storage", rezip(small_pt, tmp_path / "l.pt", replace={"data/0": records["data/0"] + b"\0" * 4}), \
        "holds 84 bytes"
    yield "truncated data.pkl", rezip(small_pt, tmp_path / "tp.pt", replace={"data.pkl": records["data.pkl"][:-30]}), \
        "truncated"
    yield "two folders", _add_record(rezip(small_pt, tmp_path / "f.pt"), "other/x"), "one top-level folder"
    yield "bad byteorder", rezip(small_pt, tmp_path / "b.pt", replace={"byteorder": b"middle"}), "byteorder"
    yield "not a torch file", _write(tmp_path / "n.pt", b"hello world, this is text"), "not a torch.save"
    yield "tar", _write(tmp_path / "tar.pt", b"\0" * 257 + b"ustar" + b"\0" * 300), "tar archive"


def _write(path, data):
    path.write_bytes(data)
    return path


def _add_record(path, name):
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(name, b"")
    return path


def test_damaged_files_raise_load_error(tmp_path, small_pt):
    for what, path, pattern in damaged(tmp_path, small_pt):
        with pytest.raises(LoadError, match=pattern) as info:
            fastrnn.load_state_dict(path)
        assert str(path) in str(info.value), what


def test_crafted_bad_tensor_records(tmp_path):
    """Views that do not fit their storage, negative offsets, storage-class mismatches: refused before reading."""
    floats = np.arange(12, dtype=np.float32).tobytes()
    cases = {
        "past the end": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), 10, (2, 2), (2, 1))}, "reaches past"),
        "huge stride": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), 0, (2,), (2**62,))}, "reaches past"),
        "negative offset": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), -1, (2,), (1,))}, "offset"),
        "negative stride": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), 5, (2,), (-1,))}, "stride"),
        "size/stride rank": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), 0, (2, 2), (1,))}, "differ"),
        "conj metadata": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), 0, (2,), (1,), {"conj": True})},
                          "metadata"),
        "dtype clash": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), 0, (2,), (1,)),
                         "v": TensorRef(StorageRef("IntStorage", "0", 12), 0, (2,), (1,))}, "declared twice"),
        "path key": ({"w": TensorRef(StorageRef("FloatStorage", "../0", 12), 0, (2,), (1,))}, "invalid storage key"),
        "quantised": ({"w": TensorRef(StorageRef("QInt8Storage", "0", 48), 0, (2,), (1,))}, "QInt8Storage"),
        "expanded to 10**12": ({"w": TensorRef(StorageRef("FloatStorage", "0", 12), 0, (10**6, 10**6), (0, 0))},
                               "implausible"),
    }
    for what, (obj, pattern) in cases.items():
        path = crafted_pt(tmp_path / "bad.pt", obj, {"0": floats})
        with pytest.raises(LoadError, match=pattern):
            fastrnn.load_state_dict(path)


def test_non_storage_persistent_id_is_refused(tmp_path):
    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            return ("module", "os") if value == "x" else None

    import io
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": "x"})
    path = write_zip(tmp_path / "pid.pt", {"data.pkl": buffer.getvalue(), "version": b"3\n"})
    with pytest.raises(LoadError, match="only storage persistent ids"):
        fastrnn.load_state_dict(path)


def test_npz_with_objects_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, w=np.array([Payload("true")], dtype=object))
    with pytest.raises(LoadError, match="npz"):
        fastrnn.load_state_dict(path)


def test_corrupt_safetensors(tmp_path):
    from safetensors.numpy import save_file
    path = tmp_path / "w.safetensors"
    save_file({"w": np.ones((2, 3), np.float32)}, str(path))
    data = path.read_bytes()
    header = struct.unpack("<Q", data[:8])[0]
    _write(path, data[:-4])
    with pytest.raises(LoadError, match="safetensors"):
        fastrnn.load_state_dict(path)
    _write(path, data[:8] + data[8:8 + header].replace(b"[2,3]", b"[9,3]") + data[8 + header:])
    with pytest.raises(LoadError, match="safetensors"):
        fastrnn.load_state_dict(path)


# -- fuzz ----------------------------------------------------------------------------------------------------------
def _mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.integers(1, 4)):
        if not data:
            break
        kind = rng.integers(0, 5)
        pos = int(rng.integers(0, len(data)))
        if kind == 0:  # flip bits
            data[pos] ^= int(rng.integers(1, 256))
        elif kind == 1:  # truncate
            del data[pos:]
        elif kind == 2:  # insert random bytes
            data[pos:pos] = rng.bytes(int(rng.integers(1, 9)))
        elif kind == 3:  # delete a run
            del data[pos:pos + int(rng.integers(1, 9))]
        elif kind == 4:  # an extreme little-endian int (sizes, lengths, memo indices)
            data[pos:pos + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\0\0\0\x80", b"\xff\xff\xff\xff"])
    return bytes(data)


def _fuzz(tmp_path, seed, make_file, count):
    import signal
    rng = np.random.default_rng(seed)
    path = tmp_path / "fuzz.bin"

    def timeout(*_):
        raise AssertionError(f"fuzz seed {seed}: hang")

    old = signal.signal(signal.SIGALRM, timeout)
    outcomes = {"ok": 0, "LoadError": 0}
    try:
        for i in range(count):
            path.write_bytes(make_file(rng))
            signal.alarm(10)
            try:
                result = fastrnn.load_state_dict(path)
                assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in result.items())
                outcomes["ok"] += 1
            except LoadError:
                outcomes["LoadError"] += 1
            except Exception as exc:  # anything else is a bug in the loader
                raise AssertionError(f"fuzz seed {seed}, case {i}: {type(exc).__name__}: {exc} "
                                     f"(rerun with FASTRNN_FUZZ_SEED={seed})") from exc
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, old)
    return outcomes


@pytest.fixture
def fuzz_seed():
    seed = int(os.environ.get("FASTRNN_FUZZ_SEED") or np.random.SeedSequence().entropy % 2**32)
    print(f"fuzz seed {seed}")
    return seed


@pytest.mark.parametrize("target", ["zip bytes", "data.pkl", "legacy bytes", "safetensors", "npz"])
def test_fuzz_mutations_only_raise_load_error(tmp_path, fuzz_seed, target):
    gru = torch.nn.GRU(3, 2, bidirectional=True)
    sd = OrderedDict(gru.state_dict())
    sd["view"] = sd["weight_ih_l0"][1:4, ::2]
    sd["count"] = torch.tensor(5)
    source = tmp_path / "src.pt"
    if target == "legacy bytes":
        torch.save(sd, source, _use_new_zipfile_serialization=False)
    elif target == "safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, str(source))
    elif target == "npz":
        source = tmp_path / "src.npz"
        np.savez(source, **{k: v.numpy() for k, v in sd.items()})
    else:
        torch.save(sd, source)
    original = source.read_bytes()
    if target == "data.pkl":  # mutate the pickle itself and re-zip it, so the CRC check does not hide it
        records, folder = read_records(source)

        def make_file(rng):
            mutated = dict(records, **{"data.pkl": _mutate(records["data.pkl"], rng)})
            zip_path = write_zip(tmp_path / "rezipped.pt", mutated, folder)
            return zip_path.read_bytes()
    else:
        def make_file(rng):
            return _mutate(original, rng)

    outcomes = _fuzz(tmp_path, fuzz_seed, make_file, 150)
    assert outcomes["LoadError"] > 0, outcomes


def test_loader_never_imports_torch(tmp_path):
    """Loading in a process where `import torch` fails gives what torch gives."""
    lstm = torch.nn.LSTM(3, 4, bidirectional=True)
    path, out = tmp_path / "lstm.pt", tmp_path / "out.npz"
    torch.save({"model": lstm.state_dict(), "epoch": 3}, path)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, fastrnn\n"
        f"sd = fastrnn.load_state_dict({str(path)!r})\n"
        f"y, (h, c) = fastrnn.load({str(path)!r})(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "assert 'torch' not in sys.modules\n"
        f"np.savez({str(out)!r}, y=y, h=h, c=c, **sd)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__))))
    assert done.returncode == 0, done.stderr
    got = np.load(out)
    assert_same({k: got[k] for k in lstm.state_dict()}, lstm.state_dict())
    with torch.no_grad():
        y, (h, c) = lstm(torch.from_numpy(x))
    for name, expected in (("y", y), ("h", h), ("c", c)):
        np.testing.assert_allclose(got[name], expected.numpy(), rtol=1e-5, atol=2e-6, err_msg=name)


def test_quantized_torch_model_is_refused_with_the_way_forward(tmp_path):
    """A state_dict of torch's dynamically quantized LSTM holds packed parameters (torch.ScriptObject) only torch can
    rebuild: refused, never run, and the message says what to do instead."""
    torch = pytest.importorskip("torch")
    engines = [e for e in ("x86", "fbgemm", "onednn", "qnnpack") if e in torch.backends.quantized.supported_engines]
    if not engines:
        pytest.skip("this torch build has no quantized engine")
    torch.backends.quantized.engine = engines[0]
    quantized = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.LSTM(4, 6)), {torch.nn.LSTM},
                                                       dtype=torch.qint8)
    path = tmp_path / "quantized.pt"
    torch.save(quantized[0].state_dict(), path)
    with pytest.raises(LoadError, match=r"quantized torch model.*precision='int8'"):
        fastrnn.load(path, precision="int8")

"""Write the fuzzers' seed corpus: small valid files of every kind the readers accept (needs torch).

    python fuzz/make_corpus.py [OUT_DIR]      (default fuzz/corpus; one sub-folder per target)

zip and legacy: torch.save of RNN/LSTM/GRU (and cell) state_dicts, checkpoints (nested dicts, 'state_dict' /
'model' entries, keep_vars Parameters), float16/bfloat16/float32/float64/int/bool buffers, views (slices,
transposes, expanded, shared storages, offsets), uint16 (_rebuild_tensor_v3 on an UntypedStorage), pickle
protocol 4, deflated records, big-endian records, an old legacy storage view. pickle: the data.pkl of every zip
seed and the main pickle of every legacy seed. safetensors and npz: the same state_dicts, every dtype they hold.
Seeds are tiny (hidden sizes of 2 to 4) so that the fuzzer spends its time on structure, not on payload bytes.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import torch

nn = torch.nn


def modules():
    torch.manual_seed(0)
    return {
        "lstm": nn.LSTM(3, 2, num_layers=2, bidirectional=True),
        "lstm_proj": nn.LSTM(3, 4, proj_size=2),
        "gru": nn.GRU(2, 3, bias=False),
        "rnn": nn.RNN(2, 2, nonlinearity="relu"),
        "lstmcell": nn.LSTMCell(2, 3),
        "grucell": nn.GRUCell(3, 2),
        "rnncell": nn.RNNCell(2, 2, bias=False),
    }


def views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return OrderedDict([
        ("whole", base), ("rows", base[1:3]), ("t", base.t()), ("steps", base[::2, 1::3]),
        ("expanded", torch.ones(1, 3).expand(4, 3)), ("scalar", torch.tensor(1.5)), ("empty", torch.zeros(0, 3)),
        ("count", torch.tensor(7)), ("mask", torch.tensor([True, False])),
        ("i32", torch.tensor([1, -2], dtype=torch.int32)), ("u8", torch.tensor([3], dtype=torch.uint8)),
    ])


def state_dicts():
    """{name: state_dict} of tensors: every module, dtype and view the seeds cover."""
    mods = modules()
    out = {name: m.state_dict() for name, m in mods.items()}
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        out[f"lstm_{str(dtype)[6:]}"] = {k: v.to(dtype) for k, v in mods["lstm"].state_dict().items()}
    out["views"] = views()
    whole = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.GRU(2, 2))
    out["whole_model"] = whole.state_dict()
    return out


def torch_objects():
    """{name: object for torch.save}: the state_dicts plus checkpoints and Parameters."""
    sds = state_dicts()
    out = dict(sds)
    out["ckpt_state_dict"] = {"state_dict": sds["lstm"], "epoch": 3, "lr": 0.1, "note": "x", "flags": [True, None]}
    out["ckpt_model"] = {"model": sds["gru"], "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}}
    out["ckpt_nested"] = {"ema": {"rnn": sds["rnn"]}, "step": 10**12}
    out["keep_vars"] = modules()["gru"].state_dict(keep_vars=True)
    out["uint16"] = {"u16": torch.tensor([1, 2, 65535], dtype=torch.uint16)}
    return out


def saved(obj, **kwargs):
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def zip_records(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rezip(records, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in records.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def big_endian(data):
    """A float32-only torch zip as a big-endian machine writes it: byteorder 'big', every element swapped."""
    records = zip_records(data)
    for name, raw in records.items():
        if "/data/" in name and not name.endswith("serialization_id"):
            records[name] = np.frombuffer(raw, dtype="<f4").astype(">f4").tobytes()
        elif name.endswith("/byteorder"):
            records[name] = b"big"
    return rezip(records)


def legacy_view():
    """An old legacy file whose tensor addresses a sub-range ('view', 4, 5) of a root storage."""
    magic, version = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2)
    info = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                         "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2)

    class Ref:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, Ref):
                return "storage", torch.FloatStorage, "root", "cpu", 10, ("view", 4, 5)
            return None

        def reducer_override(self, value):
            if isinstance(value, torch.Tensor):
                return torch._utils._rebuild_tensor_v2, (Ref(), 1, (2, 2), (2, 1), False, OrderedDict())
            return NotImplemented

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": torch.zeros(1)})
    return (magic + version + info + buffer.getvalue() + pickle.dumps(["root"], protocol=2)
            + struct.pack("<q", 10) + np.arange(10, dtype=np.float32).tobytes())


def pickles_of_legacy(data):
    """The five pickles of a legacy stream (their bytes, split with pickletools: nothing is unpickled)."""
    stream, out = io.BytesIO(data), []
    for _ in range(5):
        start = stream.tell()
        for _op in pickletools.genops(stream):
            pass
        out.append(data[start:stream.tell()])
    return out


def main(out_dir):
    corpus = {kind: {} for kind in ("zip", "legacy", "pickle", "safetensors", "npz")}
    for name, obj in torch_objects().items():
        zipped = saved(obj)
        corpus["zip"][f"{name}.pt"] = zipped
        corpus["pickle"][f"{name}.pkl"] = next(v for k, v in zip_records(zipped).items() if k.endswith("/data.pkl"))
        if name != "uint16":  # torch's legacy writer cannot store dtypes without a storage class
            legacy = saved(obj, _use_new_zipfile_serialization=False)
            corpus["legacy"][f"{name}.pt"] = legacy
            corpus["pickle"][f"{name}_legacy.pkl"] = pickles_of_legacy(legacy)[3]
    lstm = state_dicts()["lstm"]
    corpus["zip"]["protocol4.pt"] = saved(views(), pickle_protocol=4)
    corpus["zip"]["deflated.pt"] = rezip(zip_records(saved(views())), zipfile.ZIP_DEFLATED)
    corpus["zip"]["big_endian.pt"] = big_endian(saved(lstm))
    corpus["legacy"]["old_view.pt"] = legacy_view()
    corpus["pickle"]["old_view.pkl"] = pickles_of_legacy(legacy_view())[3]
    for name, sd in state_dicts().items():
        if name == "lstm_bfloat16":  # numpy has no bfloat16: write the raw bits through torch's own writer
            from safetensors.torch import save
            corpus["safetensors"][f"{name}.safetensors"] = save({k: v.contiguous() for k, v in sd.items()})
            continue
        arrays = {k: np.ascontiguousarray(v.numpy()) for k, v in sd.items()}
        corpus["safetensors"][f"{name}.safetensors"] = _safetensors_bytes(arrays, metadata={"format": "pt"})
        corpus["npz"][f"{name}.npz"] = _npz_bytes(arrays, np.savez)
        corpus["npz"][f"{name}_compressed.npz"] = _npz_bytes(arrays, np.savez_compressed)
    for kind, files in corpus.items():
        folder = os.path.join(out_dir, kind)
        os.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as file:
                file.write(data)
        print(f"{folder}: {len(files)} seeds, {sum(map(len, files.values()))} bytes")


def _safetensors_bytes(arrays, metadata):
    from safetensors.numpy import save
    return save(arrays, metadata=metadata)


def _npz_bytes(arrays, writer):
    buffer = io.BytesIO()
    writer(buffer, **arrays)
    return buffer.getvalue()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))

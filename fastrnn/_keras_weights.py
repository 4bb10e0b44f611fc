"""Keras weights-only files, which hold no model config: Keras 2's save_weights and .hdf5 checkpoints (layer_names,
each layer's weight_names) and Keras 3's .weights.h5 (layers/<key>/[forward_layer|backward_layer/]cell/vars/<i>).

Each layer is told from its weights, as fastrnn.load infers a torch module from names and shapes: kernel (I, G*H) and
recurrent_kernel (H, G*H) give the kind (G = 4 LSTM, 3 GRU, 1 SimpleRNN) and sizes; the bias its presence, GRU's
reset_after ((2, 3H) rather than (3H,)) and the CuDNN layers (doubled: (8H,) CuDNNLSTM, (6H,) CuDNNGRU, converted
as Keras converts them); two sets of cell weights are a Bidirectional. What weights cannot tell takes Keras'
defaults: activations tanh and sigmoid, go_backwards False, merge_mode concat (see README "Keras files").
"""
from __future__ import annotations

from fastrnn._keras import _Unusable, by_weight_names, cell_vars, layer_rnn, weight_names
from fastrnn._modelfile import FoundRNN, opened
from fastrnn._torchfile import LoadError

CLASSES = {(4, False): "LSTM", (3, False): "GRU", (1, False): "SimpleRNN", (4, True): "CuDNNLSTM",
           (3, True): "CuDNNGRU"}


def open_legacy(path, h5, version):
    found = []
    for name in (n.decode("utf8") if isinstance(n, bytes) else str(n) for n in h5.attrs["layer_names"]):
        group = h5.get(name)
        if group is None:
            raise LoadError(f"{path}: layer {name!r} is listed in layer_names but has no group")
        names = [n.rsplit("/", 1)[-1].split(":")[0] for n in weight_names(group)]
        if names.count("recurrent_kernel") in (1, 2):
            found.append(_infer(name, by_weight_names(group, names.count("recurrent_kernel") == 2),
                                names.count("recurrent_kernel"), version))
    return opened(path, "keras weights h5", found, close=h5.close)


def open_keras3(path, h5):
    found = []
    _walk_keras3(h5, "", found)
    return opened(path, "keras weights h5", found, close=h5.close)


def _walk_keras3(group, path, found):
    for key, layer in group.get("layers", {}).items():
        name = layer["vars"].attrs.get("name", key) if "vars" in layer else key
        full = f"{path}.{name}" if path else str(name)
        if "layers" in layer:
            _walk_keras3(layer, full, found)
        elif "forward_layer" in layer and "backward_layer" in layer:
            cells = [layer["forward_layer"], layer["backward_layer"]]
            found.append(_infer(full, lambda d, cells=cells: cell_vars(cells[d]), 2, "3"))
        elif "cell" in layer:
            found.append(_infer(full, lambda d, layer=layer: cell_vars(layer), 1, "3"))


def _infer(name, tensors, directions, version):
    """A layer config as Keras would have written it, from the weights' shapes; then layer_rnn as for a model."""
    weights = tensors(0)
    recurrent, bias = weights.get("recurrent_kernel"), weights.get("bias")
    try:
        if recurrent is None or len(recurrent.shape) != 2 or recurrent.shape[0] == 0 \
                or recurrent.shape[1] % recurrent.shape[0]:
            raise _Unusable(f"recurrent_kernel {None if recurrent is None else tuple(recurrent.shape)} is not "
                            f"(units, gates * units)")
        H, G = int(recurrent.shape[0]), int(recurrent.shape[1] // recurrent.shape[0])
        cudnn = bias is not None and tuple(bias.shape) == (2 * G * H,) and G in (3, 4)
        cls = CLASSES.get((G, cudnn))
        if cls is None:
            raise _Unusable(f"{G} gates (recurrent_kernel {tuple(recurrent.shape)}): not an LSTM, GRU or SimpleRNN")
        cfg = {"units": H, "use_bias": bias is not None}
        if cls == "GRU":
            cfg["reset_after"] = bias is None or len(bias.shape) == 2  # Keras' default when there is no bias
        if directions == 2:
            layer = {"class_name": cls, "config": cfg}
            return layer_rnn(name, "Bidirectional", {"layer": layer, "merge_mode": "concat"}, tensors, version)
        return layer_rnn(name, cls, cfg, tensors, version)
    except _Unusable as exc:
        return FoundRNN(name, problem=f"weights-only layer: {exc}")

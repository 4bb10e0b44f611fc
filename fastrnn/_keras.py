"""Keras models: the LSTM, GRU, SimpleRNN (and CuDNNLSTM/CuDNNGRU) layers of a file, bare or in a Bidirectional, as
fastrnn configurations with torch-named weights. Read with h5py (pip install "fastrnn[keras]"); Keras is never
imported and nothing in the file is run (configurations are JSON, weights HDF5 datasets).

Files: Keras 3 `.keras` archives (config.json + model.weights.h5, nested models included), legacy `.h5` models
(model_config + model_weights, Keras 2 or 3; top-level layers), and weights-only files (Keras 3 `.weights.h5`, Keras 2
save_weights / `.hdf5` checkpoints), whose kind and sizes come from the weights (fastrnn._keras_weights).
Conversion: kernel (I, G*H) and recurrent_kernel (H, G*H) transposed; GRU gates [z, r, h] -> torch's [r, z, n] (LSTM
[i, f, c, o] is torch's order); a single bias -> bias_ih (bias_hh zeros); GRU reset_after=True's (2, 3H) bias ->
[bias_ih, bias_hh] (torch's GRU, linear_before_reset=True); reset_after=False -> linear_before_reset=False;
go_backwards -> reverse=True; batch_first=True (Keras 2's time_major=True: False).
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from fastrnn._modelfile import FoundRNN, opened, rnn_config
from fastrnn._torchfile import LoadError

KINDS = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN", "CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
TO_TORCH = {"RNN": (0,), "GRU": (1, 0, 2), "LSTM": (0, 1, 2, 3)}  # torch's k-th gate block is Keras' TO_TORCH[k]
MODELS = ("Functional", "Sequential", "Model")
MERGES = {"concat": None, None: None, "sum": "sum", "mul": "mul", "ave": "ave"}  # None: Keras' [forward, backward]
# Keras activation name -> fastrnn's (name, alpha, beta); hard_sigmoid depends on the Keras version (_activation).
ACTIVATIONS = {"tanh": ("tanh", 0.0, 0.0), "sigmoid": ("sigmoid", 0.0, 0.0), "relu": ("relu", 0.0, 0.0),
               "linear": ("identity", 0.0, 0.0), "softsign": ("softsign", 0.0, 0.0),
               "softplus": ("softplus", 0.0, 0.0), "elu": ("elu", 1.0, 0.0)}
KERAS3_ONLY = {"leaky_relu": ("leaky_relu", 0.2, 0.0)}  # Keras 3's default negative_slope


def _h5py():
    try:
        import h5py
    except ImportError:
        raise LoadError('reading Keras files needs the h5py package: pip install "fastrnn[keras]"') from None
    return h5py


def _h5(source, where):
    h5py = _h5py()
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise LoadError(f"{where}: unreadable HDF5 file ({exc})") from None


def open_keras_zip(path):
    """A Keras 3 .keras archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")  # h5py needs a seekable file: the archive may be deflated
    except KeyError:
        raise LoadError(f"{path}: a .keras archive without model.weights.h5 (fastrnn reads the h5 weights format)") \
            from None
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise LoadError(f"{path}: unreadable .keras archive ({type(exc).__name__}: {exc})") from None
    version = str(metadata.get("keras_version", "3")) if isinstance(metadata, dict) else "3"
    h5 = _h5(io.BytesIO(weights), path)
    return _from_config(path, "keras", config, _Keras3Scope(h5, path), version, h5.close)


def open_keras_h5(path):
    """A legacy .h5 model, or a weights-only file (Keras 3 .weights.h5, Keras 2 save_weights)."""
    h5 = _h5(path, path)
    try:
        attrs = h5.attrs
        version = _text(attrs.get("keras_version", "1"))
        if "model_config" in attrs:
            config = json.loads(_text(attrs["model_config"]))
            return _from_config(path, "keras h5", config, _LegacyScope(h5["model_weights"], path), version,
                                h5.close)
        from fastrnn import _keras_weights
        if "layer_names" in attrs:
            return _keras_weights.open_legacy(path, h5, version)
        if "layers" in h5:
            return _keras_weights.open_keras3(path, h5)
        raise LoadError(f"{path}: an HDF5 file that is neither a Keras model nor Keras weights (no model_config, "
                        f"layer_names or layers)")
    except BaseException:
        h5.close()
        raise


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _from_config(where, fmt, config, scope, version, close):
    if major(version) < 2:
        raise LoadError(f"{where}: written by Keras {version}; fastrnn reads Keras 2 and 3 files")
    found = []
    _walk(config, "", scope, version, found)
    return opened(where, fmt, found, close=close)


def _walk(config, path, scope, version, found):
    """Every RNN layer in a model config, nested models included, named by its layer name (nested: 'outer.inner')."""
    if not isinstance(config, dict) or config.get("class_name") not in MODELS:
        raise LoadError(f"{scope.where}: the file's configuration is not a Keras model (class_name "
                        f"{config.get('class_name') if isinstance(config, dict) else type(config).__name__!r})")
    layers = config.get("config", {}).get("layers", [])
    scope = scope.enter(layers)
    for layer in layers:
        cls, cfg = layer.get("class_name"), layer.get("config", {})
        name = cfg.get("name") or layer.get("name")
        full = f"{path}.{name}" if path else name
        if cls in MODELS:
            _walk(layer, full, scope.nested(name), version, found)
        elif cls in KINDS or (cls == "Bidirectional" and cfg.get("layer", {}).get("class_name") in KINDS):
            try:
                found.append(layer_rnn(full, cls, cfg, scope.layer(name, cls), version))
            except _Unusable as exc:
                found.append(FoundRNN(full, problem=f"{cls} layer: {exc}"))
        elif cls == "Bidirectional":
            inner = cfg.get("layer", {}).get("class_name")
            found.append(FoundRNN(full, problem=f"Bidirectional layer around a {inner}, which fastrnn does not run"))


def major(version):
    """3 for '3.15.1', 2 for '2.2.4-tf'."""
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0


class _Unusable(Exception):
    """Why a layer cannot be loaded (becomes FoundRNN.problem)."""


# -- one layer -------------------------------------------------------------------------------------------------------
def layer_rnn(name, cls, cfg, tensors, version, batch_first=True):
    """FoundRNN for a layer config: tensors(direction) -> {'kernel', 'recurrent_kernel'[, 'bias']: h5 dataset}."""
    merge_mode, cells = None, [(cls, cfg)]
    if cls == "Bidirectional":
        if cfg.get("merge_mode", "concat") not in MERGES:
            raise _Unusable(f"merge_mode {cfg.get('merge_mode')!r}, expected concat, sum, mul, ave or None")
        merge_mode = MERGES[cfg.get("merge_mode", "concat")]
        forward = cfg["layer"]
        backward = cfg.get("backward_layer") or forward
        cells = [(forward["class_name"], forward.get("config", {})),
                 (backward["class_name"], backward.get("config", {}))]
        if cells[0][1].get("go_backwards"):
            raise _Unusable("the wrapped layer has go_backwards=True, so both directions run backwards")
    kinds = {KINDS[c] for c, _ in cells}
    first = cells[0][1]
    shared = ("units", "use_bias", "reset_after", "time_major")
    if len(kinds) > 1 or any(c.get(k) != first.get(k) for _, c in cells for k in shared):
        raise _Unusable(f"its two directions differ ({cells[0][0]} {[first.get(k) for k in shared]} vs "
                        f"{cells[1][0]} {[cells[1][1].get(k) for k in shared]}); one fastrnn module shares them")
    kind = kinds.pop()
    reverse = cls != "Bidirectional" and bool(first.get("go_backwards"))
    cudnn = cells[0][0].startswith("CuDNN")  # always with biases, cuDNN's activations (Keras' defaults)
    H = first.get("units")
    bias = cudnn or first.get("use_bias", True)
    if not isinstance(H, int) or H < 1:
        raise _Unusable(f"units={H!r}")
    reset_after = kind == "GRU" and (cudnn or first.get("reset_after", True))  # Keras 2 configs always say it
    activations = tuple(_activation(c.get(key, default), version, key) for _, c in cells
                        for key, default in GATE_SLOTS[kind])
    found = FoundRNN(name, batch_first=batch_first and not first.get("time_major", False), merge_mode=merge_mode)
    G = GATES[kind]
    for d in range(len(cells)):
        found.params.update(_params(kind, tensors(d), H, G, d, bias, reset_after, cudnn, name))
    I = found.params["weight_ih_l0"][0][1]
    try:
        found.config = rnn_config(kind, activations, input_size=I, hidden_size=H,
                                  bidirectional=len(cells) == 2, bias=bool(bias), reverse=reverse,
                                  **({"linear_before_reset": bool(reset_after)} if kind == "GRU" else {}))
    except ValueError as exc:
        raise _Unusable(str(exc)) from None
    return found


# Keras' activation arguments per fastrnn slot (f: the gates, g: the candidate, h: an LSTM's cell output).
GATE_SLOTS = {"LSTM": (("recurrent_activation", "sigmoid"), ("activation", "tanh"), ("activation", "tanh")),
              "GRU": (("recurrent_activation", "sigmoid"), ("activation", "tanh")), "RNN": (("activation", "tanh"),)}


def _activation(value, version, key):
    if isinstance(value, dict):  # Keras 3 may serialize a built-in function as {'class_name': 'function', ...}
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    name = "linear" if value is None else value
    keras3 = major(version) >= 3
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6; Keras 2: clip(0.2 x + 0.5, 0, 1)
        return ("hard_sigmoid", 1.0 / 6.0, 0.5) if keras3 else ("hard_sigmoid", 0.2, 0.5)
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    if keras3 and name in KERAS3_ONLY:
        return KERAS3_ONLY[name]
    raise _Unusable(f"{key}={value!r} is not an activation fastrnn computes (Keras' tanh, sigmoid, hard_sigmoid, "
                    f"relu, linear, softsign, softplus, elu{', leaky_relu' if keras3 else ''})")


def _params(kind, tensors, H, G, d, bias, reset_after, cudnn, name):
    """torch-named (shape, read) for one direction from the Keras datasets, each checked before it is read."""
    sfx = "_l0" + ("_reverse" if d else "")
    kernel, recurrent = tensors.get("kernel"), tensors.get("recurrent_kernel")
    if kernel is None or recurrent is None:
        raise _Unusable(f"weights {sorted(tensors)} lack a kernel or recurrent_kernel")
    if len(kernel.shape) != 2 or kernel.shape[1] != G * H or tuple(recurrent.shape) != (H, G * H):
        raise _Unusable(f"kernel {tuple(kernel.shape)} and recurrent_kernel {tuple(recurrent.shape)}, expected "
                        f"(input_size, {G * H}) and ({H}, {G * H})")
    order = TO_TORCH[kind]

    def gates(rows):  # (G*H, ...) Keras blocks -> torch's
        return np.concatenate([rows[k * H:(k + 1) * H] for k in order])

    def cudnn_kernel(k, transform):  # Keras' own CuDNN conversion, gate by gate
        return np.hstack([transform(block) for block in np.hsplit(np.asarray(k[()]), G)])

    def read_kernel(k, input_kernel):
        if cudnn:
            matrix = cudnn_kernel(k, (lambda b: b.T.reshape(b.shape, order="F")) if input_kernel else (lambda b: b.T))
        else:
            matrix = np.asarray(k[()])
        return np.ascontiguousarray(gates(matrix.T))

    I = int(kernel.shape[0])
    params = {"weight_ih" + sfx: ((G * H, I), lambda: read_kernel(kernel, True)),
              "weight_hh" + sfx: ((G * H, H), lambda: read_kernel(recurrent, False))}
    if not bias:
        return params
    b = tensors.get("bias")
    expected = ((2 * G * H,) if cudnn else (2, G * H) if reset_after else (G * H,))
    if b is None or tuple(b.shape) != expected:
        raise _Unusable(f"bias {None if b is None else tuple(b.shape)}, expected {expected}")

    def read_bias(part):
        value = np.asarray(b[()], dtype=np.float64 if b.dtype == np.float64 else np.float32)
        if cudnn and kind == "LSTM":  # Keras sums CuDNNLSTM's input and recurrent biases
            value = value.reshape(2, -1).sum(axis=0)
        elif cudnn:  # CuDNNGRU's become GRU(reset_after=True)'s (2, 3H)
            value = value.reshape(2, -1)
        if value.ndim == 2:
            return gates(value[part])
        return gates(value) if part == 0 else np.zeros(G * H, value.dtype)

    params["bias_ih" + sfx] = ((G * H,), lambda: read_bias(0))
    params["bias_hh" + sfx] = ((G * H,), lambda: read_bias(1))
    return params


# -- where a layer's weights are -------------------------------------------------------------------------------------
def snake(name):
    """Keras 3's naming.to_snake_case: the weights file keys layers by their class name."""
    import re

    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class _Keras3Scope:
    """Keras 3's weights h5: each model's group has layers/<snake_case class name[_n]>/, an RNN layer's weights in
    [forward_layer|backward_layer/]cell/vars/<i>."""

    def __init__(self, group, where, keys=None):
        self.group, self.where, self.keys = group, where, keys or {}

    def enter(self, layers):
        keys, counts = {}, {}
        for layer in layers:  # the keys Keras gives the layers, in config order
            key = snake(layer.get("class_name", ""))
            counts[key] = counts.get(key, -1) + 1
            keys[layer.get("config", {}).get("name") or layer.get("name")] = key + (f"_{counts[key]}" if counts[key]
                                                                                   else "")
        return _Keras3Scope(self.group, self.where, keys)

    def _group(self, name):
        layers = self.group.get("layers", {})
        # Keras writes the layer's name on its vars group; the class-name key is the fallback
        by_name = {g["vars"].attrs.get("name"): g for g in layers.values() if "vars" in g}
        group = by_name.get(name) or layers.get(self.keys.get(name, ""))
        if group is None:
            raise _Unusable(f"no weights for layer {name!r} in model.weights.h5")
        return group

    def nested(self, name):
        try:
            return _Keras3Scope(self._group(name), self.where)
        except _Unusable as exc:
            raise LoadError(f"{self.where}: {exc}") from None

    def layer(self, name, cls):
        group = self._group(name)
        cells = [group[k] for k in ("forward_layer", "backward_layer")] if cls == "Bidirectional" else [group]
        return lambda d: cell_vars(cells[d])


def cell_vars(layer_group):
    """A Keras 3 RNN layer's variables in the order the cell creates them: kernel, recurrent_kernel, bias."""
    variables = layer_group.get("cell/vars", {})
    return dict(zip(("kernel", "recurrent_kernel", "bias"), (variables[str(i)] for i in range(len(variables)))))


class _LegacyScope:
    """model_weights/<layer>/ with the attribute weight_names ('lstm/lstm_cell/kernel:0', ...) in Keras' order."""

    def __init__(self, group, where, nested=None):
        self.group, self.where, self.nested_in = group, where, nested

    def enter(self, layers):
        return self

    def nested(self, name):
        return _LegacyScope(self.group, self.where, name)

    def layer(self, name, cls):
        if self.nested_in is not None:
            raise _Unusable(f"inside the nested model {self.nested_in!r} of a legacy .h5 file, which fastrnn does not "
                            f"take apart; save the model as .keras")
        if name not in self.group:
            raise _Unusable(f"no weights for layer {name!r} in model_weights")
        return by_weight_names(self.group[name], cls == "Bidirectional")


def weight_names(group):
    """Keras' weight_names attribute, which may be split into weight_names0, weight_names1, ... when long."""
    if "weight_names" in group.attrs:
        names = group.attrs["weight_names"]
    else:
        names = [n for i in range(len(group.attrs)) if f"weight_names{i}" in group.attrs
                 for n in group.attrs[f"weight_names{i}"]]
    return [_text(n) for n in names]


def by_weight_names(group, bidirectional):
    """tensors(direction) from a legacy layer group: forward's weights first, then backward's (Bidirectional)."""
    names = weight_names(group)
    halves = [names[:len(names) // 2], names[len(names) // 2:]] if bidirectional else [names]

    def tensors(d):
        return {n.rsplit("/", 1)[-1].split(":")[0]: group[n] for n in halves[d]}

    return tensors

"""ONNX models: the RNN, LSTM and GRU nodes of a graph, as fastrnn configurations with torch-named weights.

Read with the `onnx` package (pip install "fastrnn[onnx]"), which parses the protobuf and nothing more: no node is
ever run, and a tensor stored as external data is refused, never opened. Per node (opset 1 to 22):
- W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb] and P (D, 3*H) must be stored in the file (initializers or
  Constant nodes). W[d] -> weight_ih_l0{sfx}, R[d] -> weight_hh, Wb -> bias_ih, Rb -> bias_hh, P -> weight_p, ONNX's
  gate blocks (LSTM i, o, f, c; GRU z, r, h; P i, o, f) reordered to torch's (LSTM i, f, g, o; GRU r, z, n; P i, f, o).
- attributes: activations with activation_alpha/beta (consumed in order by the functions that take them, as ONNX
  Runtime does), clip, direction ('reverse' -> reverse=True), hidden_size, input_forget, layout (1 -> batch_first),
  linear_before_reset (GRU; ONNX's default 0 -> linear_before_reset=False).
- sequence_lens, initial_h, initial_c are run-time inputs: a call's `lengths` and `hx`. A constant one is accepted
  when it is all zeros (what exporters write for "no initial state") and refused otherwise.
torch.onnx.export writes a multi-layer module as a chain of nodes, each Y reshaped into the next X (Squeeze for one
direction; Transpose [0, 2, 1, 3] + Reshape [0, 0, -1] for two): such a chain loads as one module, named by its first
node, layer k being the k-th node.
"""
from __future__ import annotations

import numpy as np

from fastrnn import activations as _activations
from fastrnn._modelfile import FoundRNN, opened, rnn_config
from fastrnn._torchfile import LoadError

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
TO_TORCH = {"RNN": (0,), "GRU": (1, 0, 2), "LSTM": (0, 2, 3, 1)}  # torch's k-th gate block is ONNX's TO_TORCH[k]
PEEPHOLES_TO_TORCH = (0, 2, 1)
SLOTS = {"RNN": 1, "GRU": 2, "LSTM": 3}
DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}
# Which of activation_alpha / activation_beta each function consumes (ONNX Runtime's reading of the spec).
TAKES = {"affine": "ab", "leaky_relu": "a", "thresholded_relu": "a", "scaled_tanh": "ab", "hard_sigmoid": "ab",
         "elu": "a"}
ATTRIBUTES = {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
              "output_sequence"}  # output_sequence (opsets 1-6) only says which outputs are produced
KIND_ATTRIBUTES = {"LSTM": {"input_forget"}, "GRU": {"linear_before_reset"}, "RNN": set()}
# Shape-only ops through which a constant keeps being zeros (or not).
_SHAPE_OPS = ("Expand", "Tile", "Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze")


class _Unusable(Exception):
    """Why a node cannot be loaded (becomes FoundRNN.problem)."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise LoadError('reading ONNX files needs the onnx package: pip install "fastrnn[onnx]"') from None
    return onnx


def open_onnx(path):
    onnx = _onnx()
    try:
        model = onnx.load_model(path, format="protobuf", load_external_data=False)
    except Exception as exc:  # whatever the protobuf parser raises: the bytes are not a model
        raise LoadError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    graph = _Graph(onnx, model.graph, path)
    found, used = graph.rnns()
    return opened(path, "onnx", found, graph.other_tensors(used))


class _Graph:
    def __init__(self, onnx, graph, where):
        self.onnx, self.where, self.nodes = onnx, where, list(graph.node)
        self.initializers = {t.name: t for t in graph.initializer}
        # An initializer also listed as a graph input is a stored default (keep_initializers_as_inputs): stored.
        self.inputs = {i.name for i in graph.input} - set(self.initializers)
        self.producers, self.consumers = {}, {}
        for node in self.nodes:
            for name in node.output:
                self.producers.setdefault(name, node)
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    # -- stored tensors ------------------------------------------------------------------------------------------
    def stored(self, name):
        """The TensorProto stored under `name` (an initializer or a Constant node's value), or None."""
        if name in self.initializers:
            return self.initializers[name]
        node = self.producers.get(name)
        if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value" and attr.type == self.onnx.AttributeProto.TENSOR:
                    return attr.t
                if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
                    value = np.array(self.onnx.helper.get_attribute_value(attr))
                    return self.onnx.numpy_helper.from_array(value, name)
        return None

    def origin(self, name):
        if name in self.inputs:
            return "a graph input (supplied at run time)"
        node = self.producers.get(name)
        if node is not None:
            return f"computed by node {node.name!r} ({node.op_type})"
        return "neither stored in the file nor computed by a node"

    def array(self, tensor, what):
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL:
            raise LoadError(f"{self.where}: {what} is stored as external data, which fastrnn does not open")
        try:
            value = self.onnx.numpy_helper.to_array(tensor)
        except Exception as exc:  # a damaged tensor: sizes that disagree, an unknown data type...
            raise LoadError(f"{self.where}: {what}: unreadable tensor ({type(exc).__name__}: {exc})") from None
        if value.dtype not in (np.float32, np.float64) and value.dtype.kind not in "iub":
            value = value.astype(np.float32)  # float16, bfloat16 (ml_dtypes), float8: exact in float32
        return value

    def zeros(self, name, depth=0):
        """True: a constant of zeros; False: a constant that is not; None: a run-time value."""
        tensor = self.stored(name)
        if tensor is not None:
            return not np.any(self.array(tensor, repr(name)))
        node = self.producers.get(name)
        if node is None or depth > 16:
            return None
        if node.op_type == "ConstantOfShape":
            values = [self.array(a.t, repr(name)) for a in node.attribute if a.name == "value"]
            return not any(np.any(v) for v in values)
        if node.op_type in _SHAPE_OPS and node.input:
            return self.zeros(node.input[0], depth + 1)
        return None

    def ints(self, name):
        tensor = self.stored(name) if name else None
        return None if tensor is None else [int(v) for v in self.array(tensor, repr(name)).ravel()]

    # -- nodes -----------------------------------------------------------------------------------------------------
    def rnns(self):
        """(FoundRNN per node or chain, the names of the tensors they use)."""
        specs, found, used = {}, [], set()
        names = [n.name for n in self.nodes]
        for index, node in enumerate(self.nodes):
            if node.op_type in GATES and node.domain in ("", "ai.onnx"):
                unique = node.name and names.count(node.name) == 1
                name = node.name if unique else f"{node.op_type}_{index}"
                try:
                    specs[index] = self._spec(node, name, index)
                except _Unusable as exc:
                    found.append((index, FoundRNN(name, problem=f"{node.op_type} node: {exc}")))
        following = {}
        for index, spec in specs.items():
            nxt = self._next_layer(spec, specs)
            if nxt is not None:
                following[index] = nxt
        for index in specs:
            if index in following.values():
                continue  # a later layer of a chain
            chain = [specs[index]]
            while index in following:
                index = following[index]
                chain.append(specs[index])
            found.append((chain[0]["index"], self._found(chain)))
            used.update(tname for spec in chain for tname, _ in spec["tensors"].values())
        return [rnn for _, rnn in sorted(found, key=lambda pair: pair[0])], used

    def _spec(self, node, name, index):
        onnx, kind = self.onnx, node.op_type
        attrs = {}
        for attr in node.attribute:
            value = onnx.helper.get_attribute_value(attr)
            attrs[attr.name] = ([v.decode() if isinstance(v, bytes) else v for v in value] if isinstance(value, list)
                                else value.decode() if isinstance(value, bytes) else value)
        unknown = sorted(set(attrs) - ATTRIBUTES - KIND_ATTRIBUTES[kind])
        if unknown:
            raise _Unusable(f"attribute {unknown[0]!r} is not an ONNX {kind} attribute")
        direction = attrs.get("direction", "forward")
        if direction not in DIRECTIONS:
            raise _Unusable(f"direction {direction!r}, expected one of {', '.join(DIRECTIONS)}")
        D, G = DIRECTIONS[direction], GATES[kind]
        X, W, R, B, lens, h0, c0, P = (list(node.input) + [""] * 8)[:8]
        if len(node.input) > (8 if kind == "LSTM" else 6):
            raise _Unusable(f"{len(node.input)} inputs; an ONNX {kind} has at most {8 if kind == 'LSTM' else 6}")
        tensors = {}
        for label, tname in (("W", W), ("R", R), ("B", B), ("P", P)):
            if not tname:
                if label in "WR":
                    raise _Unusable(f"input {label} is missing")
                continue
            tensor = self.stored(tname)
            if tensor is None:
                raise _Unusable(f"{label} ({tname!r}) is {self.origin(tname)}; fastrnn reads weights stored in the "
                                f"file (initializers or Constant nodes)")
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise _Unusable(f"{label} ({tname!r}) is stored as external data, which fastrnn does not open; "
                                f"re-save the model with its weights inside the .onnx file")
            tensors[tname] = (label, tensor)
        dims = {label: tuple(int(d) for d in t.dims) for label, t in tensors.values()}
        w, r = dims["W"], dims["R"]
        H, I = (r[2], w[2]) if len(w) == 3 and len(r) == 3 else (0, 0)
        if H < 1 or I < 1 or w != (D, G * H, I) or r != (D, G * H, H):
            raise _Unusable(f"W has shape {w} and R {r}; a {direction} {kind} expects (num_directions={D}, {G} * "
                            f"hidden_size, input_size) and ({D}, {G} * hidden_size, hidden_size)")
        if attrs.get("hidden_size", H) != H:
            raise _Unusable(f"hidden_size={attrs['hidden_size']}, but R has shape {r}")
        for label, shape in (("B", (D, 2 * G * H)), ("P", (D, 3 * H))):
            if label in dims and dims[label] != shape:
                raise _Unusable(f"{label} has shape {dims[label]}, expected {shape}")
        layout = attrs.get("layout", 0)
        if layout not in (0, 1):
            raise _Unusable(f"layout={layout}, expected 0 or 1")
        clip = attrs.get("clip")
        if clip is not None and not clip > 0:
            raise _Unusable(f"clip={clip}, expected a threshold > 0")
        if lens and self.stored(lens) is not None:
            raise _Unusable(f"sequence_lens ({lens!r}) is a constant stored in the file; fastrnn takes the lengths "
                            f"per call (lengths=), so sequence_lens must be a run-time input")
        for label, sname in (("initial_h", h0), ("initial_c", c0)):
            if sname and self.zeros(sname) is False:
                raise _Unusable(f"{label} ({sname!r}) is a non-zero constant stored in the file; fastrnn takes the "
                                f"initial state per call (hx=), so {label} must be zeros or a run-time input")
        fields = dict(clip=clip, reverse=direction == "reverse")
        if kind == "LSTM":
            fields.update(peepholes="P" in dims, input_forget=bool(attrs.get("input_forget", 0)))
        if kind == "GRU":
            fields["linear_before_reset"] = bool(attrs.get("linear_before_reset", 0))
        return dict(node=node, name=name, index=index, kind=kind, D=D, H=H, I=I,
                    layout=layout, activations=self._activations(kind, attrs, D), fields=fields,
                    tensors={label: (tname, tensor) for tname, (label, tensor) in tensors.items()})

    def _activations(self, kind, attrs, D):
        names = attrs.get("activations")
        if names is None:
            return None
        if len(names) != SLOTS[kind] * D:
            raise _Unusable(f"{len(names)} activations; this {kind} has {SLOTS[kind] * D} ({SLOTS[kind]} per "
                            f"direction)")
        alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
        entries = []
        for given in names:
            try:
                name, alpha, beta = _activations.entry(given, "activations")
            except (ValueError, TypeError):
                raise _Unusable(f"activation {given!r} is not one fastrnn computes "
                                f"({', '.join(_activations.ACTIVATIONS)})") from None
            takes = TAKES.get(name, "")
            alpha = alphas.pop(0) if "a" in takes and alphas else alpha
            beta = betas.pop(0) if "b" in takes and betas else beta
            entries.append((name, float(alpha), float(beta)))
        return tuple(entries)

    # -- torch's chain of layers -----------------------------------------------------------------------------------
    def _next_layer(self, spec, specs):
        """The index of the node that takes this one's Y, reshaped as torch's exporter does, as its next layer."""
        node, D = spec["node"], spec["D"]
        y = node.output[0] if node.output else ""
        step = self._only_consumer(y)
        if step is None:
            return None
        if D == 2:
            perm = [list(a.ints) for a in step.attribute if a.name == "perm"]
            if step.op_type != "Transpose" or perm != [[0, 2, 1, 3]]:
                return None
            step = self._only_consumer(step.output[0])
            if step is None or step.op_type != "Reshape" or self.ints(step.input[1]) not in ([0, 0, -1],
                                                                                            [0, 0, D * spec["H"]]):
                return None
        else:
            axes = [list(a.ints) for a in step.attribute if a.name == "axes"] or [self.ints(step.input[1])
                                                                                   if len(step.input) > 1 else None]
            if step.op_type != "Squeeze" or axes != [[1]]:
                return None
        out = step.output[0]
        nxt = self._only_consumer(out)
        if nxt is None or nxt.input[0] != out:
            return None
        index = self.nodes.index(nxt)
        other = specs.get(index)
        same = ("kind", "D", "H", "activations", "fields")
        if other is None or spec["layout"] or other["layout"] or other["I"] != D * spec["H"] \
                or any(other[k] != spec[k] for k in same) or set(other["tensors"]) != set(spec["tensors"]):
            return None
        return index

    def _only_consumer(self, name):
        """The one node that uses `name`'s values (Shape nodes only read its shape: torch's exporter takes the batch
        size for the initial states from each layer's input); None when several do, since a model that uses an
        intermediate layer's output elsewhere needs the layers apart."""
        consumers = [n for n in self.consumers.get(name, []) if n.op_type != "Shape"] if name else []
        return consumers[0] if len(consumers) == 1 else None

    def _found(self, chain):
        first = chain[0]
        kind, D, H = first["kind"], first["D"], first["H"]
        try:
            config = rnn_config(kind, first["activations"], input_size=first["I"], hidden_size=H,
                                num_layers=len(chain), bidirectional=D == 2, bias="B" in first["tensors"],
                                **first["fields"])
        except ValueError as exc:
            return FoundRNN(first["name"], problem=f"{kind} node: {exc}")
        G, order = GATES[kind], TO_TORCH[kind]
        params = {}
        for layer, spec in enumerate(chain):
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                for base, label, part, rows, cols in (("weight_ih", "W", None, G * H, spec["I"]),
                                                      ("weight_hh", "R", None, G * H, H),
                                                      ("bias_ih", "B", 0, G * H, None),
                                                      ("bias_hh", "B", 1, G * H, None),
                                                      ("weight_p", "P", None, 3 * H, None)):
                    if label in spec["tensors"]:
                        blocks = PEEPHOLES_TO_TORCH if label == "P" else order
                        shape = (rows, cols) if cols else (rows,)
                        params[base + sfx] = (shape, self._reader(spec, label, d, part, blocks, H))
        return FoundRNN(first["name"], config, batch_first=first["layout"] == 1, params=params)

    def _reader(self, spec, label, d, part, blocks, H):
        tname, tensor = spec["tensors"][label]
        what = f"{spec['name']}: {label} ({tname!r})"

        def read():
            value = self.array(tensor, what)[d]
            if part is not None:  # B = [Wb, Rb]
                value = np.split(value, 2)[part]
            return np.concatenate([value[k * H:(k + 1) * H] for k in blocks])

        return read

    def other_tensors(self, used):
        """The initializers that are no RNN's weights, under their own names (a model's other layers)."""
        return {name: (tuple(int(d) for d in t.dims), lambda t=t, name=name: self.array(t, repr(name)))
                for name, t in self.initializers.items() if name not in used}

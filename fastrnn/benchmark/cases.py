"""What is timed: a Case is a model (fastrnn.config.RNNConfig) run a given way (batch, steps per call, streaming,
dtype, fastrnn's precision), with deterministic random weights and inputs, so every engine and every process sees the
same ones."""
from __future__ import annotations

import dataclasses

import numpy as np

from fastrnn.config import RNNConfig

CHECK_STREAM_STEPS = 8


@dataclasses.dataclass(frozen=True)
class Case:
    model: RNNConfig
    batch: int = 1
    seq_len: int = 100
    stream: bool = False          # single-step calls carrying state (seq_len is then only the check's length)
    dtype: str = "float32"
    precision: str | None = None  # fastrnn's weights: None is the dtype's, or 'bfloat16', 'int8' (peers keep theirs)
    weight_bound: float | None = None  # random weights U(-bound, bound); None: torch's init, bound 1/sqrt(hidden_size)
    group: str = ""               # what the row represents, for the table's reader

    @property
    def steps_per_call(self):
        return 1 if self.stream else self.seq_len

    @property
    def label(self):
        m = self.model
        parts = [m.kind if m.kind != "RNN" else f"RNN-{m.nonlinearity}", f"I{m.input_size}", f"H{m.hidden_size}"]
        if m.proj_size:
            parts.append(f"P{m.proj_size}")
        if m.num_layers > 1:
            parts.append(f"L{m.num_layers}")
        if m.bidirectional:
            parts.append("bi")
        parts.append(f"B{self.batch}")
        parts.append("stream" if self.stream else f"T{self.seq_len}")
        if self.dtype != "float32":
            parts.append(self.dtype)
        if self.precision not in (None, self.dtype):
            parts.append(self.precision)
        return " ".join(parts)

    def as_dict(self):
        return {**dataclasses.asdict(self), "model": self.model.as_dict()}

    @classmethod
    def from_dict(cls, data):
        return cls(**{**data, "model": RNNConfig(**data["model"])})


def case(kind, input_size, hidden_size, num_layers=1, bidirectional=False, proj_size=0, nonlinearity="tanh",
         **run):
    """A Case from the model's sizes and the run's keywords (batch, seq_len, stream, dtype, precision, weight_bound,
    group)."""
    model = RNNConfig(kind, False, input_size, hidden_size, num_layers, bidirectional, proj_size, True, nonlinearity)
    return Case(model, **run)


def default_suite(precision=None):
    """The cases `fastrnn bench` runs with no arguments: random weights, no file needed; fastrnn in `precision`."""
    streaming = "streaming: one step per call, state carried"
    suite = [case("LSTM", 256, 256, stream=True, group=streaming), case("LSTM", 64, 64, stream=True, group=streaming),
             case("GRU", 64, 64, stream=True, group=streaming)]
    for hidden in (64, 256, 1024):
        for kind in ("LSTM", "GRU", "RNN"):
            suite.append(case(kind, hidden, hidden, group="one sequence: B=1, T=100"))
    suite += [
        case("GRU", 512, 512, group="one sequence: B=1, T=100"),
        case("LSTM", 512, 512, batch=64, group="batched: B=64"),
        case("GRU", 512, 512, batch=64, group="batched: B=64"),
        case("LSTM", 128, 256, num_layers=2, bidirectional=True, batch=8, seq_len=200,
             group="2-layer bidirectional (speech encoder)"),
        case("LSTM", 512, 512, proj_size=128, group="LSTM with projection"),
    ]
    return [dataclasses.replace(c, precision=precision) for c in suite]


def precision_suite(precision=None):
    """The configs of the bfloat16 and int8 comparisons (issues 11 and 12: OpenVINO's default bf16, torch's dynamic
    int8), fastrnn in `precision`: weights U(-0.1, 0.1), inputs N(0, 1)."""
    run = dict(precision=precision, weight_bound=0.1)
    return [
        case("LSTM", 512, 512, batch=64, group="batched: B=64", **run),
        case("GRU", 512, 512, batch=64, group="batched: B=64", **run),
        case("LSTM", 128, 256, num_layers=2, bidirectional=True, batch=8, seq_len=200,
             group="2-layer bidirectional (speech encoder)", **run),
        case("LSTM", 1024, 1024, group="one sequence: B=1, T=100", **run),
        case("LSTM", 256, 256, group="one sequence: B=1, T=100", **run),
        case("LSTM", 256, 256, stream=True, group="streaming: one step per call, state carried", **run),
    ]


def random_state_dict(case, seed=0):
    """Random weights for the case's model, U(-bound, bound) as torch initialises them (or the case's weight_bound),
    as numpy arrays under torch's names."""
    from fastrnn._torch_names import param_shapes

    m = case.model
    shapes = param_shapes(m.kind, m.input_size, m.hidden_size, m.num_layers, m.bias, m.bidirectional, m.proj_size,
                          m.cell)
    rng = np.random.default_rng(seed)
    bound = case.weight_bound if case.weight_bound is not None else 1.0 / np.sqrt(m.hidden_size)
    return {name: rng.uniform(-bound, bound, size=shape).astype(case.dtype) for name, shape in shapes.items()}


def make_input(case, seed=1):
    """One call's input, (T, B, I) time-major (T = 1 when streaming)."""
    rng = np.random.default_rng(seed)
    T = 1 if case.stream else case.seq_len
    return rng.standard_normal((T, case.batch, case.model.input_size)).astype(case.dtype)


def check_input(case, seed=2):
    """The sequence every engine's output is compared on (streamed step by step for stream cases)."""
    rng = np.random.default_rng(seed)
    T = min(case.seq_len, CHECK_STREAM_STEPS) if case.stream else case.seq_len
    return rng.standard_normal((T, case.batch, case.model.input_size)).astype(case.dtype)

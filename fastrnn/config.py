"""What an RNN module is, as data (RNNConfig), and the one factory that turns it into a fastrnn module.

Every path that makes a module from a description goes through RNNConfig.build: fastrnn.load (a configuration
inferred from a file's names and shapes), fastrnn.from_torch (a live torch module), the command line and the
benchmarks. A module gives its own description back as `module.config`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fastrnn._kinds import check_nonlinearity, normalize


@dataclass(frozen=True)
class RNNConfig:
    """kind: 'RNN', 'LSTM' or 'GRU'; cell: one step (RNNCell, ...) rather than a sequence module; nonlinearity:
    an RNN's 'tanh' or 'relu' (weights cannot tell them apart, so a loaded RNN says 'tanh' unless told)."""

    kind: str
    cell: bool
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: int = 0
    bias: bool = True
    nonlinearity: str = "tanh"

    def __post_init__(self):
        object.__setattr__(self, "kind", normalize(self.kind))
        check_nonlinearity(self.nonlinearity)

    def __str__(self):
        if self.cell:
            return f"{self.kind}Cell(input_size={self.input_size}, hidden_size={self.hidden_size}, bias={self.bias})"
        proj = f", proj_size={self.proj_size}" if self.proj_size else ""
        return (f"{self.kind}(input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers="
                f"{self.num_layers}, bidirectional={self.bidirectional}{proj}, bias={self.bias})")

    @property
    def out_size(self):
        """Features per direction of the output and of h: proj_size, or hidden_size without a projection."""
        return self.proj_size or self.hidden_size

    def as_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def build(self, nonlinearity=None, batch_first=False, dtype=np.float32, dropout=0.0):
        """The fastrnn module this describes (random weights until load_state_dict). nonlinearity overrides the
        config's (RNN and RNNCell only); batch_first and dropout are calling conventions, not weights."""
        from fastrnn import cells, modules

        config = self
        if nonlinearity is not None:
            if self.kind != "RNN":
                raise ValueError(f"nonlinearity: only an RNN or RNNCell has one; the weights are those of a {self}")
            config = self.replace(nonlinearity=nonlinearity)
        rnn = {"nonlinearity": config.nonlinearity} if config.kind == "RNN" else {}
        if config.cell:
            if batch_first:
                raise ValueError(f"batch_first: does not apply to a cell ({config})")
            cls = getattr(cells, f"{config.kind}Cell")
            return cls(config.input_size, config.hidden_size, bias=config.bias, dtype=dtype, **rnn)
        if config.proj_size:
            rnn["proj_size"] = config.proj_size
        cls = getattr(modules, config.kind)
        return cls(config.input_size, config.hidden_size, num_layers=config.num_layers, bias=config.bias,
                   batch_first=batch_first, dropout=dropout, bidirectional=config.bidirectional, dtype=dtype, **rnn)

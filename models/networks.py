"""Building blocks shared by encoders, decoders and missing models.

Every part is written for one run: a dense layer holds one weight matrix and one bias.
Training several runs at once (replicas) is done by the inference code, which stacks the
parameters of whole programs (:mod:`notmiwae.inference.replicas`); no part needs to know.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class Dense(nn.Module):
    """y = x W^T + b, initialised like ``nn.Linear`` (W, b ~ U(-1/sqrt(in), 1/sqrt(in)))."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    @torch.no_grad()
    def glorot_(self) -> None:
        """Keras' default: W ~ U(-a, a), a = sqrt(6 / (n_in + n_out)) (Glorot uniform); b = 0."""
        n_out, n_in = self.weight.shape
        bound = math.sqrt(6.0 / (n_in + n_out))
        self.weight.uniform_(-bound, bound)
        self.bias.zero_()


def glorot_(module: nn.Module) -> nn.Module:
    """Re-initialise ``module`` as the paper's TensorFlow code is initialised: every part
    with a ``glorot_()`` method (dense layers, self-masking parameters) calls it, in
    ``module.modules()`` order; other parameters keep their initial values."""
    for part in module.modules():
        if hasattr(part, "glorot_"):
            part.glorot_()
    return module


def mlp(n_in: int, n_hidden: int, n_layers: int = 2) -> nn.Sequential:
    """``n_layers`` dense layers of ``n_hidden`` tanh units: the trunk of every network."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [Dense(n_in if i == 0 else n_hidden, n_hidden), nn.Tanh()]
    return nn.Sequential(*layers)

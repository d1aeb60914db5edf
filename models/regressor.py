"""The supervised part of the joint model: p_psi(y | x), a regressor on the complete x."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from .networks import Dense
from .parts import Regressor


class GaussianRegressor(Regressor):
    """p(y | x) = N(f(x), sigma^2): f an MLP with one hidden layer of ReLU units, sigma learned.

    Input x (..., D); the distribution has batch shape (..., 1), one y per row.
    """

    def __init__(self, n_features: int, hidden: int = 128) -> None:
        super().__init__()
        self.hidden = Dense(n_features, hidden)
        self.out = Dense(hidden, 1)
        self.raw_scale = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> dist.Distribution:
        loc = self.out(F.relu(self.hidden(x)))
        scale = F.softplus(self.raw_scale) + 1e-3
        return dist.Normal(loc, scale.expand(loc.shape))

"""The supervised part of the joint model: p_psi(y | x), a regressor on the complete x."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from .networks import Dense, per_replica, replica_parameter


class GaussianRegressor(nn.Module):
    """p(y | x) = N(f(x), sigma^2): f an MLP with one hidden layer of ReLU units, sigma learned.

    Input x (..., D); the distribution has batch shape (..., 1), one y per row.
    """

    def __init__(self, n_features: int, hidden: int = 128, replicas: int = 1) -> None:
        super().__init__()
        self.hidden = Dense(n_features, hidden, replicas)
        self.out = Dense(hidden, 1, replicas)
        self.raw_scale = replica_parameter((1,), replicas)

    def forward(self, x: torch.Tensor) -> dist.Distribution:
        loc = self.out(F.relu(self.hidden(x)))
        scale = F.softplus(per_replica(self.raw_scale, loc)) + 1e-3
        return dist.Normal(loc, scale.expand(loc.shape))

"""Amortized encoders q(z | x^o)."""

from __future__ import annotations

import pyro.distributions as dist
import torch

from .networks import Dense, mlp
from .parts import Encoder


class GaussianEncoder(Encoder):
    """q(z | x^o) = N(mu(x~), diag exp(logvar(x~))), x~ = x with missing entries set to 0.

    Two hidden layers of tanh units; the log-variance is clipped to [-10, 10].
    """

    def __init__(self, n_features: int, latent_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.trunk = mlp(n_features, hidden)
        self.loc = Dense(hidden, latent_dim)
        self.logvar = Dense(hidden, latent_dim)

    def forward(self, x_filled: torch.Tensor) -> dist.Distribution:
        h = self.trunk(x_filled)
        scale = torch.exp(0.5 * self.logvar(h).clamp(-10.0, 10.0))
        return dist.Normal(self.loc(h), scale).to_event(1)

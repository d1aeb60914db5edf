"""The latent mask variable of the masked not-MIWAE.

A second latent z_mask ~ N(0, I), with its own encoder q(z_mask | x^o), that acts on the
mask only: a network mu_m(z_mask) in R^D enters the missing model's logits, so that
p(s | x, z_mask) can express a per-row tendency to hide values that x alone does not.
"""

from __future__ import annotations

import torch
from torch import nn

from .encoders import GaussianEncoder
from .networks import Dense, mlp
from .parts import LatentMaskNetwork
from .priors import StandardNormalPrior


class LatentMask(LatentMaskNetwork):
    """p(z_mask) = N(0, I), q(z_mask | x^o) and mu_m(z_mask) (2 x 128 tanh, then linear)."""

    def __init__(self, n_features: int, latent_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.prior = StandardNormalPrior(latent_dim)
        self.encoder = GaussianEncoder(n_features, latent_dim, hidden)
        self.effect = nn.Sequential(mlp(latent_dim, hidden), Dense(hidden, n_features))

    def forward(self, z_mask: torch.Tensor) -> torch.Tensor:
        """mu_m(z_mask): the shift this row's z_mask gives to the missing model."""
        return self.effect(z_mask)

"""Latent priors p(z)."""

from __future__ import annotations

import pyro.distributions as dist
import torch

from .parts import Prior


class StandardNormalPrior(Prior):
    """p(z) = N(0, I_d)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        # Buffers, so that ``.to(device)`` and ``.double()`` move the prior too.
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def forward(self) -> dist.Distribution:
        return dist.Normal(self.loc, self.scale).to_event(1)

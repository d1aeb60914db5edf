"""The generative program: p(z) p(x | z) p(s | x), one plate around the data.

    z_i   ~ p(z)                                   per row i
    x_ij  ~ p(x_j | z_i)                           observed where s_ij = 1, latent where 0
    s_ij  ~ Bernoulli(sigmoid(logit_j(x_i)))      the missing process (absent for MIWAE)

MIWAE, not-MIWAE with any missing model and the PPCA-like variants are all this one
program with different parts plugged in.
"""

from __future__ import annotations

from contextlib import nullcontext

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from .guide import AmortizedGuide

FEATURE_DIM = -1  # columns
DATA_DIM = -2  # rows
PARTICLE_DIM = -3  # importance samples, added around the program by inference
REPLICA_DIM = -4  # independent runs trained together (only when replicas > 1)
MAX_PLATE_NESTING = 2


class NotMIWAE(nn.Module):
    """A not-MIWAE (or, with ``missingness=None``, a MIWAE) as a Pyro model/guide pair.

    ``model(x, mask)``: x is (N, D) with missing entries set to 0, mask is (N, D) bool,
    True where observed. ``guide`` is an :class:`AmortizedGuide` over the same program.

    With ``replicas=R > 1`` the parts hold R independent sets of weights, a "replicas"
    plate surrounds the program, and x and mask are (R, 1, N, D): R runs in one program.
    """

    def __init__(self, prior: nn.Module, decoder: nn.Module, encoder: nn.Module,
                 missingness: nn.Module | None = None, replicas: int = 1) -> None:
        super().__init__()
        if missingness is not None and not getattr(decoder, "has_rsample", True):
            raise ValueError(
                f"{type(decoder).__name__} cannot reparameterize x^m, which a non-ignorable "
                "missing model needs; use missingness=None (MIWAE) with it")
        self.prior = prior
        self.decoder = decoder
        self.encoder = encoder
        self.missingness = missingness
        self.replicas = replicas
        self.guide = AmortizedGuide(self.model, {"z": encoder})

    def model(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, d = x.shape[-2:]
        with self.replica_plate(), pyro.plate("data", n, dim=DATA_DIM):
            z = pyro.sample("z", self.prior())
            p_x = self.decoder(z.squeeze(DATA_DIM))
            with pyro.plate("features", d, dim=FEATURE_DIM):
                # Splits into x_observed (scored) and x_unobserved (latent), merged into x.
                x_full = pyro.sample("x", p_x, obs=x, obs_mask=mask)
                if self.missingness is not None:
                    pyro.sample("s", dist.Bernoulli(logits=self.missingness(x_full)),
                                obs=mask.to(x.dtype))
        return x_full

    def replica_plate(self):
        """R independent copies of the program; nothing at all for a single run."""
        if self.replicas == 1:
            return nullcontext()
        return pyro.plate("replicas", self.replicas, dim=REPLICA_DIM)

"""The generative program: p(z) p(x | z) p(s | x), one plate around the data.

    z_i      ~ p(z)                                 per row i
    z_mask_i ~ N(0, I)                              masked not-MIWAE only
    x_ij     ~ p(x_j | z_i)                         observed where s_ij = 1, latent where 0
    s_ij     ~ Bernoulli(sigmoid(logit_j(x_i [, mu_m(z_mask_i)])))   the missing process
    y_i      ~ p(y | x_i)                           joint supervision only

MIWAE (no missing process), not-MIWAE with any missing model, the PPCA-like variants,
the masked not-MIWAE and the jointly supervised model are all this one program with
different parts plugged in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from .guide import AmortizedGuide
from .parts import Decoder, Encoder, LatentMaskNetwork, MissingModel, Prior, Regressor

FEATURE_DIM = -1  # columns
DATA_DIM = -2  # rows
PARTICLE_DIM = -3  # importance samples, added around the program by inference
MAX_PLATE_NESTING = 2


class NotMIWAE(nn.Module):
    """A not-MIWAE (or, with ``missingness=None``, a MIWAE) as a Pyro model/guide pair.

    ``model(x, mask, y=None)``: x is (N, D) with missing entries set to 0, mask is (N, D)
    bool, True where observed; y (N, 1) the target of a jointly supervised model.
    ``guide`` is an :class:`AmortizedGuide` over the same program. The parts follow the
    contracts of :mod:`notmiwae.models.parts`; each is written for one run.

    ``model`` registers every network with Pyro's param store under ``name`` (as
    ``pyro.module`` does), so plain Pyro trains it::

        svi = SVI(program.model, program.guide, pyro.optim.Adam({"lr": 1e-3}),
                  RenyiELBO(alpha=0, num_particles=20, vectorize_particles=True))
    """

    def __init__(self, prior: Prior, decoder: Decoder, encoder: Encoder,
                 missingness: MissingModel | None = None,
                 latent_mask: LatentMaskNetwork | None = None,
                 regressor: Regressor | None = None, name: str = "notmiwae") -> None:
        super().__init__()
        if missingness is not None and not getattr(decoder, "has_rsample", True):
            raise ValueError(
                f"{type(decoder).__name__} cannot reparameterize x^m, which a non-ignorable "
                "missing model needs; use missingness=None (MIWAE) with it")
        if latent_mask is not None and missingness is None:
            raise ValueError("a latent mask variable needs a missing model to act on")
        self.prior = prior
        self.decoder = decoder
        self.encoder = encoder
        self.missingness = missingness
        self.latent_mask = latent_mask
        self.regressor = regressor
        self.name = name
        self.registers_params = True
        encoders = {"z": encoder}
        if latent_mask is not None:
            encoders["z_mask"] = latent_mask.encoder
        self.guide = AmortizedGuide(self.model, encoders)

    def model(self, x: torch.Tensor, mask: torch.Tensor,
              y: torch.Tensor | None = None) -> torch.Tensor:
        """p(z) [p(z_mask)] p(x | z) p(s | x [, z_mask]) [p(y | x)] for one batch of rows;
        returns x with the missing entries drawn from p(x^m | z)."""
        if self.registers_params:
            self.register_params()
        n, d = x.shape[-2:]
        with pyro.plate("data", n, dim=DATA_DIM):
            # Per-row latents have shape (..., N, 1, d_z): a singleton batch dim under the
            # feature plate (see models.guide); .squeeze(-2) drops it for the networks.
            z = pyro.sample("z", self.prior())
            shift = None
            if self.latent_mask is not None:  # z_mask acts on the mask only
                z_mask = pyro.sample("z_mask", self.latent_mask.prior())
                shift = self.latent_mask(z_mask.squeeze(-2))
            p_x = self.decoder(z.squeeze(-2))
            with pyro.plate("features", d, dim=FEATURE_DIM):
                # Splits into x_observed (scored) and x_unobserved (latent), merged into x.
                x_full = pyro.sample("x", p_x, obs=x, obs_mask=mask)
                if self.missingness is not None:
                    logits = (self.missingness(x_full) if shift is None
                              else self.missingness(x_full, shift))
                    pyro.sample("s", dist.Bernoulli(logits=logits), obs=mask.to(x.dtype))
            if self.regressor is not None:  # y (N, 1), or None to leave it latent
                pyro.sample("y", self.regressor(x_full), obs=y)
        return x_full

    def __getstate__(self) -> dict:
        """For pickle: first drops the weak reference that Pyro's param store gives each
        parameter it hands out (``p.unconstrained``, which pickle cannot write and the
        store sets again on the next access), as Pyro's own ``PyroModule`` does."""
        for param in self.parameters():
            param.__dict__.pop("unconstrained", None)
        return super().__getstate__()

    def register_params(self) -> None:
        """``pyro.module(self.name, self)``, except that a param-store entry of the same
        name left by another program is replaced by this program's own parameter."""
        store = pyro.get_param_store()
        for name, param in self.named_parameters():
            full = f"{self.name}$$${name}"
            if full in store and store.get_param(full) is not param:
                store[full] = param
            pyro.param(full, param)

    @contextmanager
    def unregistered(self) -> Iterator[NotMIWAE]:
        """Inside, ``model`` leaves Pyro's param store alone: for code that optimises
        ``self.parameters()`` itself (this package's training and imputation)."""
        before, self.registers_params = self.registers_params, False
        try:
            yield self
        finally:
            self.registers_params = before

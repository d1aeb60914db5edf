"""A hand-written PyTorch computation of the not-MIWAE bound: the independent check.

No Pyro: the formula of Ipsen et al. (2021), eq. (9), written out with torch.distributions
on given standard-normal noise, so that the same samples give the same value and gradient.

    z_k    = mu(x~) + sigma(x~) eps_k
    x^m_k  = drawn from p(x^m | z_k) with the noise eps_x (location-scale decoders)
    log w_k = log p(x^o | z_k) + log p(s | x^o, x^m_k) + log p(z_k) - log q(z_k | x^o)

and for the masked not-MIWAE (Section 3 of the project's reference), with a second
latent z_mask_k = mu_m(x~) + sigma_m(x~) eps_m,k:

    log w_k += log p(z_mask_k) - log q(z_mask_k | x^o),  p(s | x, mu_m(z_mask_k)) in place
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.distributions import Bernoulli, Normal

from notmiwae.models.program import NotMIWAE

from .replicas import replica_count, replica_map


def _latent(encoder, prior, x: torch.Tensor, eps: torch.Tensor):
    """z = mu + sigma eps from an encoder, and log p(z) - log q(z | x^o), with log p(z)
    from the program's prior (any prior: N(0, I), a learned mixture, ...)."""
    q = encoder(x).base_dist  # Normal(mu, sigma), shape (N, d)
    z = q.loc + q.scale * eps
    return z, prior().log_prob(z) - Normal(q.loc, q.scale).log_prob(z).sum(-1)


def reference_log_weights(program: NotMIWAE, x: torch.Tensor, mask: torch.Tensor,
                          eps_z: torch.Tensor, eps_x: torch.Tensor,
                          eps_mask: torch.Tensor | None = None,
                          y: torch.Tensor | None = None) -> torch.Tensor:
    """log w (K, N) for a Gaussian-family decoder, from noise eps_z (K,N,d), eps_x (K,N,D)
    and, for a masked not-MIWAE, eps_mask (K,N,d_mask); with the target y (N, 1) of a
    jointly supervised model, log p(y | x^o, x^m_k) is in the weights too."""
    z, log_w = _latent(program.encoder, program.prior, x, eps_z)
    p_x = program.decoder(z)
    loc, scale = p_x.loc, p_x.scale
    log_w = log_w + (Normal(loc, scale).log_prob(x) * mask).sum(-1)
    x_full = torch.where(mask, x, loc + scale * eps_x)
    if y is not None:
        p_y = program.regressor(x_full)
        log_w = log_w + Normal(p_y.loc, p_y.scale).log_prob(y).sum(-1)
    if program.missingness is not None:
        if program.latent_mask is None:
            logits = program.missingness(x_full)
        else:
            z_mask, log_ratio = _latent(program.latent_mask.encoder, program.latent_mask.prior,
                                        x, eps_mask)
            logits = program.missingness(x_full, program.latent_mask(z_mask))
            log_w = log_w + log_ratio
        log_ps = Bernoulli(logits=logits).log_prob(mask.to(x.dtype))
        log_w = log_w + log_ps.sum(-1)
    return log_w


def reference_step(program: NotMIWAE, optimizer: torch.optim.Optimizer, num_particles: int
                   ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A hand-written training step on the same networks: the floor for the benchmark.

    x, mask: (R, B, D), a minibatch per replica (R = 1 for a single program); returns
    the bound per replica (R,).
    """

    def log_w(single: NotMIWAE, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch = (num_particles, x.shape[-2])
        eps_z = torch.randn(*batch, _dim(single.encoder, x), dtype=x.dtype, device=x.device)
        eps_x = torch.randn(*batch, x.shape[-1], dtype=x.dtype, device=x.device)
        eps_mask = None if single.latent_mask is None else torch.randn(
            *batch, _dim(single.latent_mask.encoder, x), dtype=x.dtype, device=x.device)
        return reference_log_weights(single, x, mask, eps_z, eps_x, eps_mask)

    def step(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if replica_count(program) == 1:
            log_ws = log_w(program, x[0], mask[0]).unsqueeze(0)
        else:
            log_ws = replica_map(program, log_w, x, mask)
        bound = (torch.logsumexp(log_ws, -2) - math.log(num_particles)).mean(-1)
        optimizer.zero_grad(set_to_none=True)
        (-bound.sum()).backward()
        optimizer.step()
        return bound.detach()

    return step


def _dim(encoder, x: torch.Tensor) -> int:
    """The latent dimension an encoder proposes (its event shape)."""
    return encoder(x[:1]).event_shape[0]

"""A hand-written PyTorch computation of the not-MIWAE bound: the independent check.

No Pyro: the formula of Ipsen et al. (2021), eq. (9), written out with torch.distributions
on given standard-normal noise, so that the same samples give the same value and gradient.

    z_k    = mu(x~) + sigma(x~) eps_k
    x^m_k  = drawn from p(x^m | z_k) with the noise eps_x (location-scale decoders)
    log w_k = log p(x^o | z_k) + log p(s | x^o, x^m_k) + log p(z_k) - log q(z_k | x^o)
"""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Normal


def reference_log_weights(program, x: torch.Tensor, mask: torch.Tensor,
                          eps_z: torch.Tensor, eps_x: torch.Tensor) -> torch.Tensor:
    """log w (K, N) for a Gaussian-family decoder, from noise eps_z (K,N,d), eps_x (K,N,D)."""
    q = program.encoder(x).base_dist  # Normal(mu, sigma), shape (N, d)
    z = q.loc + q.scale * eps_z
    log_q = Normal(q.loc, q.scale).log_prob(z).sum(-1)
    log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
    p_x = program.decoder(z)
    loc, scale = p_x.loc, p_x.scale
    log_px_obs = (Normal(loc, scale).log_prob(x) * mask).sum(-1)
    log_w = log_px_obs + log_prior - log_q
    if program.missingness is not None:
        x_full = torch.where(mask, x, loc + scale * eps_x)
        log_ps = Bernoulli(logits=program.missingness(x_full)).log_prob(mask.to(x.dtype))
        log_w = log_w + log_ps.sum(-1)
    return log_w

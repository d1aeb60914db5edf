"""Observation models p(x | z): each maps z (..., d) to a distribution with batch shape (..., D)."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from .networks import Dense, mlp
from .parts import Decoder


class GaussianDecoder(Decoder):
    """p(x_j | z) = N(mu_j(z), sigma_j(z)^2): mean head linear, scale head softplus."""

    has_rsample = True

    def __init__(self, latent_dim: int, n_features: int, hidden: int = 128,
                 min_scale: float = 1e-3) -> None:
        super().__init__()
        self.trunk = mlp(latent_dim, hidden)
        self.loc = Dense(hidden, n_features)
        self.scale = Dense(hidden, n_features)
        self.min_scale = min_scale

    def forward(self, z: torch.Tensor) -> dist.Distribution:
        h = self.trunk(z)
        return dist.Normal(self.loc(h), self.scale_of(h))

    def scale_of(self, h: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.scale(h)) + self.min_scale


class StudentTDecoder(GaussianDecoder):
    """p(x_j | z) = t_nu(mu_j(z), sigma_j(z)), nu_j(z) = 3 + softplus(.) (finite variance):
    the Gaussian decoder with one more head."""

    def __init__(self, latent_dim: int, n_features: int, hidden: int = 128,
                 min_scale: float = 1e-3) -> None:
        super().__init__(latent_dim, n_features, hidden, min_scale)
        self.df = Dense(hidden, n_features)

    def forward(self, z: torch.Tensor) -> dist.Distribution:
        h = self.trunk(z)
        return dist.StudentT(3.0 + F.softplus(self.df(h)), self.loc(h), self.scale_of(h))


class BernoulliDecoder(Decoder):
    """p(x_j | z) = Bernoulli(sigmoid(f_j(z))), for binary features."""

    has_rsample = False

    def __init__(self, latent_dim: int, n_features: int, hidden: int = 128) -> None:
        super().__init__()
        self.trunk = mlp(latent_dim, hidden)
        self.logits = Dense(hidden, n_features)

    def forward(self, z: torch.Tensor) -> dist.Distribution:
        return dist.Bernoulli(logits=self.logits(self.trunk(z)))


class FreeScaleDecoder(Decoder):
    """p(x | z) = N(mean(z), diag(sigma_1^2, ..., sigma_D^2)) with sigma free of z:
    sigma = softplus(raw) + min_scale, one for all features or (``per_feature``) one per
    feature. A subclass gives the mean network (``mean``)."""

    has_rsample = True

    def __init__(self, n_features: int, min_scale: float = 1e-3,
                 per_feature: bool = False) -> None:
        super().__init__()
        self.raw_scale = nn.Parameter(torch.zeros(n_features if per_feature else 1))
        self.min_scale = min_scale

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> dist.Distribution:
        loc = self.mean(z)
        return dist.Normal(loc, (F.softplus(self.raw_scale) + self.min_scale).expand(loc.shape))


class SharedScaleGaussianDecoder(FreeScaleDecoder):
    """The Gaussian decoder's mean network mu(z) with the PPCA-like decoder's noise:
    N(mu(z), sigma^2 I), or (``per_feature=True``) one sigma per feature."""

    def __init__(self, latent_dim: int, n_features: int, hidden: int = 128,
                 min_scale: float = 1e-3, per_feature: bool = False) -> None:
        super().__init__(n_features, min_scale, per_feature)
        self.trunk = mlp(latent_dim, hidden)
        self.loc = Dense(hidden, n_features)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.loc(self.trunk(z))


class LinearGaussianDecoder(FreeScaleDecoder):
    """The "PPCA-like" decoder: p(x | z) = N(W z + b, sigma^2 I), one sigma for all features;
    with ``per_feature=True`` the factor-analysis decoder N(W z + b, diag(sigma_1^2, ...,
    sigma_D^2)), one sigma per feature (still free of z)."""

    def __init__(self, latent_dim: int, n_features: int, min_scale: float = 1e-3,
                 per_feature: bool = False) -> None:
        super().__init__(n_features, min_scale, per_feature)
        self.loc = Dense(latent_dim, n_features)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.loc(z)

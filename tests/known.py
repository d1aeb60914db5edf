"""Programs whose imputations are known exactly, and those exact answers.

A linear-Gaussian decoder with a one-dimensional latent, x = w z + b + sigma eps,
z ~ N(0, 1), fixed by hand:

* ignorable missingness: x ~ N(b, w w^T + sigma^2 I), so p(x^m | x^o) is the Gaussian
  conditional, written down in closed form (:func:`gaussian_conditional`);
* self-masking-known missingness, P(s_j = 1 | x_j) = sigmoid(-a_j (x_j - c_j)) with
  a_j = softplus(W_j): for a row with one missing feature the posterior of (z, x^m) given
  x^o and s is two-dimensional, and its moments are computed by quadrature on a grid
  (:func:`self_masking_posterior`).

The encoder is set to a fixed proposal q(z | x^o) = N(Q_LOC, Q_SD^2), which is not the
prior: the weights must carry p(z) / q(z | x^o) for the answers to come out right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from notmiwae.models import ModelConfig, build_model
from tests.parts import inverse_softplus, normal_log_pdf, put, sigmoid, softplus

Q_LOC, Q_SD = 0.2, 1.3


@dataclass(frozen=True)
class Linear1D:
    """x_j = w_j z + b_j + sigma eps_j; optional self-masking-known (W_j, c_j)."""

    w: tuple
    b: tuple
    sigma: float
    mask_weight: tuple | None = None  # W_j: slope a_j = softplus(W_j)
    mask_bias: tuple | None = None  # c_j

    @property
    def d(self) -> int:
        return len(self.w)

    @property
    def slope(self) -> np.ndarray:
        return softplus(np.asarray(self.mask_weight, dtype=float))

    def config(self) -> ModelConfig:
        return ModelConfig(n_features=self.d, latent_dim=1, hidden=2,
                           decoder="linear-gaussian",
                           missing="ignorable" if self.mask_weight is None
                           else "selfmasking_known")

    def set_weights(self, program) -> None:
        """Write this model's parameters, and the fixed proposal, into ``program``."""
        put(program.decoder.loc.weight, np.asarray(self.w, dtype=float)[:, None])
        put(program.decoder.loc.bias, self.b)
        put(program.decoder.raw_scale, [inverse_softplus(self.sigma - 1e-3)])
        if self.mask_weight is not None:
            put(program.missingness.weight, self.mask_weight)
            put(program.missingness.bias, self.mask_bias)
        encoder = program.encoder
        put(encoder.loc.weight, np.zeros((1, 2)))
        put(encoder.loc.bias, [Q_LOC])
        put(encoder.logvar.weight, np.zeros((1, 2)))
        put(encoder.logvar.bias, [2 * np.log(Q_SD)])

    def program(self, dtype=torch.float64):
        program = build_model(self.config()).to(dtype)
        self.set_weights(program)
        return program.eval()


def gaussian_conditional(model: Linear1D, x: np.ndarray, observed: np.ndarray):
    """Mean and covariance of p(x^m | x^o) under ignorable missingness, for one row."""
    w, b = np.asarray(model.w, dtype=float), np.asarray(model.b, dtype=float)
    cov = np.outer(w, w) + model.sigma ** 2 * np.eye(model.d)
    o, m = observed, ~observed
    gain = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
    mean = b[m] + gain @ (x[o] - b[o])
    return mean, cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]


def latent_posterior(model: Linear1D, x: np.ndarray, observed: np.ndarray):
    """Mean and variance of p(z | x^o) under ignorable missingness (a Gaussian)."""
    w, b = np.asarray(model.w, dtype=float), np.asarray(model.b, dtype=float)
    precision = 1 + (w[observed] ** 2).sum() / model.sigma ** 2
    mean = (w[observed] * (x[observed] - b[observed])).sum() / model.sigma ** 2 / precision
    return mean, 1 / precision


@dataclass(frozen=True)
class Moments:
    x_mean: float  # E[x_m | x^o, s]: the "sample" estimator's limit, the mean of MI draws
    decoder_mean: float  # E[w_m z + b_m | x^o, s]: the "mean" estimator's limit
    x_sd: float  # sd(x_m | x^o, s): the spread of MI draws
    z_grid: np.ndarray
    z_density: np.ndarray  # p(z | x^o, s) on z_grid (sums to 1)


def self_masking_posterior(model: Linear1D, x: np.ndarray, observed: np.ndarray,
                           n: int = 1201) -> Moments:
    """The posterior of (z, x_m) given x^o and s for a row with one missing feature m,
    by quadrature on an n x n grid."""
    (m,) = np.flatnonzero(~observed)
    w, b = np.asarray(model.w, dtype=float), np.asarray(model.b, dtype=float)
    a, c = model.slope, np.asarray(model.mask_bias, dtype=float)
    z = np.linspace(-8, 8, n)[:, None]
    xm = np.linspace(-10, 10, n)[None, :]
    log_f = normal_log_pdf(z, 0, 1) + normal_log_pdf(xm, w[m] * z + b[m], model.sigma) \
        + np.log(sigmoid(a[m] * (xm - c[m])))  # P(s_m = 0 | x_m)
    for j in np.flatnonzero(observed):  # p(x_j | z); P(s_j = 1 | x_j) is a constant here
        log_f = log_f + normal_log_pdf(x[j], w[j] * z + b[j], model.sigma)
    f = np.exp(log_f - log_f.max())
    f /= f.sum()
    x_mean = (f * xm).sum()
    return Moments(x_mean=float(x_mean),
                   decoder_mean=float((f * (w[m] * z + b[m])).sum()),
                   x_sd=float(np.sqrt((f * (xm - x_mean) ** 2).sum())),
                   z_grid=z[:, 0], z_density=f.sum(1))


def replicated_missing_rate(model: Linear1D, z_grid: np.ndarray, z_density: np.ndarray,
                            j: int) -> float:
    """P(s_j = 0) for x_j ~ N(w_j z + b_j, sigma^2), z ~ the given posterior (replication:
    a fresh x from p(x | z), then a fresh s from the missing model)."""
    x = np.linspace(-10, 10, 2001)[None, :]
    p_x = np.exp(normal_log_pdf(x, model.w[j] * z_grid[:, None] + model.b[j], model.sigma))
    p_x /= p_x.sum(1, keepdims=True)
    hidden = (p_x * sigmoid(model.slope[j] * (x - model.mask_bias[j]))).sum(1)
    return float((z_density * hidden).sum())

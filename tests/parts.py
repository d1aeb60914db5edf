"""Helpers for tests that set a part's weights by hand and compare with numpy formulas.

Parameters are written with ``copy_(value.reshape(p.shape))`` and read with
``.reshape(...)``, so the tests hold whatever leading dimensions a part keeps internally
(a dense layer's weight is (n_out, n_in) for a single run, whatever else it carries).
"""

from __future__ import annotations

import numpy as np
import torch


def put(param: torch.Tensor, value) -> None:
    """Write ``value`` (any array-like with the right number of entries) into ``param``."""
    value = torch.as_tensor(np.asarray(value, dtype=float), dtype=param.dtype)
    with torch.no_grad():
        param.copy_(value.reshape(param.shape))


def read(param: torch.Tensor, *shape: int) -> np.ndarray:
    """A parameter as a float64 numpy array of the single-run ``shape``."""
    return param.detach().double().reshape(shape).numpy()


def set_dense(layer, weight, bias) -> None:
    """A dense layer y = x W^T + b with W (n_out, n_in) and b (n_out,)."""
    put(layer.weight, weight)
    put(layer.bias, bias)


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ np.asarray(weight).T + np.asarray(bias)


def softplus(a):
    return np.logaddexp(0.0, a)


def inverse_softplus(y: float) -> float:
    return float(np.log(np.expm1(y)))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-np.asarray(a)))


def normal_log_pdf(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


def random_dense(layer, n_in: int, n_out: int, rng: np.random.Generator, scale: float = 0.7):
    """Draw W (n_out, n_in), b (n_out,) from N(0, scale^2), write them, and return them."""
    weight = rng.normal(scale=scale, size=(n_out, n_in))
    bias = rng.normal(scale=scale, size=n_out)
    set_dense(layer, weight, bias)
    return weight, bias


def random_trunk(trunk, n_in: int, hidden: int, rng: np.random.Generator):
    """The two tanh layers of every network's trunk: returns h(x) as a numpy function."""
    w1, b1 = random_dense(trunk[0], n_in, hidden, rng)
    w2, b2 = random_dense(trunk[2], hidden, hidden, rng)
    return lambda x: np.tanh(dense(np.tanh(dense(x, w1, b1)), w2, b2))

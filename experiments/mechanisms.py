"""Missingness mechanisms used in the experiments. Masks are bool, True = observed."""

from __future__ import annotations

import numpy as np


def standardise(x: np.ndarray) -> np.ndarray:
    """Every column to mean 0 and standard deviation 1 (population sd, ddof=0)."""
    sd = x.std(axis=0)
    if np.any(sd == 0):
        columns = np.flatnonzero(sd == 0).tolist()
        raise ValueError(f"constant column(s) {columns}: cannot standardise")
    return (x - x.mean(axis=0)) / sd


def paper_mnar(x: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """The paper's self-masking MNAR: in the first floor(D/2) columns, every value above
    the column mean + ``offset`` standard deviations goes missing; the rest stay observed."""
    mean, sd = x.mean(axis=0), x.std(axis=0)
    mask = np.ones(x.shape, dtype=bool)
    half = x.shape[1] // 2
    mask[:, :half] = x[:, :half] <= mean[:half] + offset * sd[:half]
    return mask


def mcar(shape: tuple[int, int], rate: float, seed: int = 0) -> np.ndarray:
    """Missing completely at random: each entry missing independently with prob ``rate``."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    return np.random.default_rng(seed).random(shape) >= rate

"""Rubin's rules: pool an estimate and its variance over m multiply-imputed data sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pooled:
    estimate: float  # Q_bar = mean of the m estimates
    variance: float  # T = U_bar + (1 + 1/m) B
    within: float  # U_bar = mean of the m variances
    between: float  # B = sample variance of the m estimates
    df: float  # Rubin's (1987) degrees of freedom, (m - 1) (1 + U_bar / ((1 + 1/m) B))^2


def rubin_pool(estimates: Sequence[float], variances: Sequence[float]) -> Pooled:
    """Combine per-imputation estimates Q_l and their variances U_l (l = 1..m, m >= 2)."""
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.shape != u.shape or q.ndim != 1 or len(q) < 2:
        raise ValueError("need m >= 2 estimates and as many variances")
    m = len(q)
    within, between = u.mean(), q.var(ddof=1)
    total = within + (1 + 1 / m) * between
    df = np.inf if between == 0 else (m - 1) * (1 + within / ((1 + 1 / m) * between)) ** 2
    return Pooled(float(q.mean()), float(total), float(within), float(between), float(df))

"""How well multiple imputations describe the values they stand for.

Given m imputations of each missing entry (draws d_1..d_m) and its true value y:

- the central interval of level a is [Q((1 - a) / 2), Q((1 + a) / 2)], Q the empirical
  quantile of the draws (linear interpolation between order statistics, NumPy's default);
  its coverage is the share of entries whose y lies in it (ends included), its width
  Q((1 + a) / 2) - Q((1 - a) / 2);
- the CRPS of the draws' empirical distribution F_m,
      CRPS(F_m, y) = integral (F_m(t) - 1{t >= y})^2 dt
                   = (1/m) sum_i |d_i - y| - (1 / (2 m^2)) sum_i sum_j |d_i - d_j|,
  a proper score in y's units (lower is better; for one draw it is the absolute error);
- the pooled estimate of a column's mean by Rubin's rules (``inference.pooling``): per
  imputed data set the column mean and its squared standard error s^2 / n, pooled, with
  the t interval of Rubin's degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from notmiwae.inference.pooling import rubin_pool

LEVELS = (0.5, 0.9, 0.95)


def central_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central interval of ``level`` of each entry's draws: draws (m, n) -> (lo, hi),
    each (n,)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    lo, hi = np.quantile(np.asarray(draws, dtype=float), [(1 - level) / 2, (1 + level) / 2],
                         axis=0)
    return lo, hi


def interval_scores(draws: np.ndarray, truth: np.ndarray,
                    levels: Sequence[float] = LEVELS) -> list[dict]:
    """Per level: the coverage of ``truth`` (n,) by the central intervals of ``draws``
    (m, n), and their mean width."""
    truth = np.asarray(truth, dtype=float)
    out = []
    for level in levels:
        lo, hi = central_interval(draws, level)
        out.append({"nominal": float(level),
                    "coverage": float(np.mean((lo <= truth) & (truth <= hi))),
                    "width": float(np.mean(hi - lo))})
    return out


def crps(draws: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS of each entry's empirical distribution of draws (m, n) at ``truth`` (n,):
    (1/m) sum_i |d_i - y| - (1/(2 m^2)) sum_ij |d_i - d_j|, the pair sum from the sorted
    draws, sum_ij |d_i - d_j| = 2 sum_k (2k - m - 1) d_(k) (k = 1..m)."""
    d = np.sort(np.asarray(draws, dtype=float), axis=0)
    m = d.shape[0]
    spread = 2 * np.tensordot(2 * np.arange(1, m + 1) - m - 1, d, axes=1)
    return np.abs(d - np.asarray(truth, dtype=float)).mean(axis=0) - spread / (2 * m**2)


def pooled_column_means(completed: np.ndarray, level: float = 0.95) -> list[dict]:
    """Rubin's pooled estimate of each column's mean from m completed data sets (m, N, D):
    per column its estimate, standard error sqrt(T), degrees of freedom and the t interval
    of ``level``."""
    completed = np.asarray(completed, dtype=float)
    _, n, _ = completed.shape
    means = completed.mean(axis=1)  # (m, D)
    variances = completed.var(axis=1, ddof=1) / n  # squared standard errors of the means
    out = []
    for j in range(completed.shape[2]):
        pooled = rubin_pool(means[:, j], variances[:, j])
        half = stats.t.ppf((1 + level) / 2, pooled.df) * np.sqrt(pooled.variance)
        out.append({"column": j, "estimate": pooled.estimate,
                    "se": float(np.sqrt(pooled.variance)), "df": pooled.df,
                    "lo": pooled.estimate - half, "hi": pooled.estimate + half})
    return out

"""Imputation error."""

from __future__ import annotations

import numpy as np


def rmse_missing(x_true: np.ndarray, x_imputed: np.ndarray, mask: np.ndarray) -> float:
    """sqrt(mean over missing entries of (x_imputed - x_true)^2); mask True = observed."""
    missing = ~np.asarray(mask, dtype=bool)
    if not missing.any():
        raise ValueError("no missing entries: RMSE over missing entries is undefined")
    err = np.asarray(x_imputed)[missing] - np.asarray(x_true)[missing]
    return float(np.sqrt(np.mean(err**2)))


def signed_error_missing(x_true: np.ndarray, x_imputed: np.ndarray,
                         mask: np.ndarray) -> np.ndarray:
    """Per column, mean over its missing entries of (x_imputed - x_true): > 0 where the
    imputations lie above the true values on average; NaN for a column with none missing."""
    missing = ~np.asarray(mask, dtype=bool)
    err = np.where(missing, np.asarray(x_imputed) - np.asarray(x_true), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return err.sum(axis=0) / missing.sum(axis=0)

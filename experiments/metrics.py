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


def mask_accuracy(program, x: np.ndarray, mask: np.ndarray, incomplete_only: bool = False
                  ) -> float:
    """The share of entries where the learned missing model, given the complete data,
    predicts the true mask: s_hat_ij = [P(s_ij = 1 | x_i) >= 0.5] = [logit_j(x_i) >= 0]
    (the paper's Table A1), over all columns, or with ``incomplete_only`` over the columns
    with a missing entry (under the paper's mechanism, the first floor(D/2)). NaN for a
    program without a missing model (MIWAE, PPCA) or whose mask also depends on a latent
    mask variable (masked not-MIWAE)."""
    import torch  # the metrics above need numpy only

    if program.missingness is None or program.latent_mask is not None:
        return float("nan")
    param = next(program.missingness.parameters())
    with torch.no_grad():
        logits = program.missingness(torch.as_tensor(x, dtype=param.dtype,
                                                     device=param.device))
    right = (logits >= 0).cpu().numpy() == np.asarray(mask, dtype=bool)
    if incomplete_only:
        right = right[:, ~np.asarray(mask, dtype=bool).all(axis=0)]
    return float(np.mean(right)) if right.size else float("nan")
